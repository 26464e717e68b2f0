"""Likely label errors: photos whose out-of-fold prediction disagrees with their folder (confident learning).

As cleanlab's ``find_label_issues`` does, every photo is judged by models that never saw it: the photos are
split into folds per class, and each fold is predicted by models fitted on the others. Two models, averaged:
a softmax regression on the backbone's features (standardised), and the votes of each photo's 10 nearest
neighbours (cosine on centred features), which a handful of wrong labels cannot sway. A photo is an issue
when another class than its folder's is likelier *relative to each class's own threshold* (cleanlab's
per-class thresholds: :func:`class_thresholds`); issues are ranked by self-confidence (the probability of the
folder's class), lowest first: ``score`` is one minus it.
"""

from __future__ import annotations

import numpy as np

from ..models.similarity import nearest, unit_rows

FOLDS = 5
NEIGHBOURS = 10
L2, STEPS, RATE = 1e-2, 150, 1.0  # softmax regression: gradient descent on standardised features, RATE at most


def out_of_fold(features, labels, num_classes: int, seed: int = 0) -> np.ndarray:
    """``(N, C)`` probabilities of each photo from models that were not fitted on it."""
    labels = np.asarray(labels, int)
    x = unit_rows(features)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    folds = _folds(labels, num_classes, seed)
    regression = np.zeros((len(labels), num_classes), np.float32)
    for k in range(FOLDS):
        held = folds == k
        if held.all() or not held.any():
            continue
        weights, bias = _fit_softmax(x[~held], labels[~held], num_classes)
        regression[held] = _softmax(x[held] @ weights + bias)
    return (regression + neighbour_votes(features, labels, num_classes)) / 2


def neighbour_votes(features, labels, num_classes: int, k: int = NEIGHBOURS) -> np.ndarray:
    """Share of each photo's ``k`` nearest other photos in each class (smoothed: never exactly 0 or 1)."""
    rows = unit_rows(features, np.mean(features, axis=0))
    _, index = nearest(rows, rows, k=k, exclude_self=True)
    votes = np.stack([(np.asarray(labels)[index] == c).mean(axis=1) for c in range(num_classes)], axis=1)
    return (votes + 0.01) / (1 + 0.01 * num_classes)


def rank(probs, labels, demoted=()) -> list:
    """``[(index, suggested class, score)]`` of the photos whose predicted class is not their label, most
    suspicious first; ``demoted`` photos (off-topic: no class fits them) go last."""
    labels = np.asarray(labels, int)
    self_confidence = probs[np.arange(len(labels)), labels]
    suggested = (probs / class_thresholds(probs, labels)).argmax(axis=1)
    order = [int(i) for i in np.argsort(self_confidence, kind="stable") if suggested[i] != labels[i]]
    demoted = set(demoted)
    order = [i for i in order if i not in demoted] + [i for i in order if i in demoted]
    return [(i, int(suggested[i]), round(float(1 - self_confidence[i]), 4)) for i in order]


def class_thresholds(probs, labels) -> np.ndarray:
    """Each class's mean probability over the photos labelled with it (cleanlab's per-class threshold).

    A photo's classes are compared by probability over threshold, not by probability: a class with few photos
    is predicted less confidently everywhere (of its photos' 10 neighbours, few can be of it), so plain
    argmax would call its own photos the big class's, and the models fitted on the big class would call many
    of the big class's photos the small one's (123 pets, 5 of them cats: 35 false issues, now 6). On balanced
    classes the thresholds are alike and the rule is argmax."""
    num_classes = probs.shape[1]
    means = [probs[labels == c, c].mean() if (labels == c).any() else 1.0 for c in range(num_classes)]
    return np.maximum(np.asarray(means, np.float64), 1e-6)


def _folds(labels, num_classes: int, seed: int) -> np.ndarray:
    """Stratified: each class's photos dealt round the folds in a seeded order."""
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(labels), int)
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        rng.shuffle(members)
        folds[members] = np.arange(len(members)) % FOLDS
    return folds


def _fit_softmax(x, labels, num_classes: int) -> tuple:
    weights = np.zeros((x.shape[1], num_classes), np.float32)
    # Starting from the classes' frequencies: the small steps below move the bias slowly, and from zero a class
    # of 5 photos beside 150 would start (and stay) as likely as the other
    counts = np.bincount(labels, minlength=num_classes) + 1.0
    bias = np.log(counts / counts.sum()).astype(np.float32)
    target = np.eye(num_classes, dtype=np.float32)[labels]
    rate = _step_size(x)
    for _ in range(STEPS):
        gradient = (_softmax(x @ weights + bias) - target) / len(x)
        weights -= rate * (x.T @ gradient + L2 * weights)
        bias -= rate * gradient.sum(axis=0)
    return weights, bias


def _step_size(x) -> float:
    """A gradient step that cannot overshoot: 1 / the loss's curvature bound (softmax cross-entropy's Hessian is
    at most half of ``x'x / n``, its largest eigenvalue found by power iteration). A fixed step oscillated
    without converging when there are fewer photos than features (a small dataset), where that bound is large."""
    v = np.random.default_rng(0).standard_normal(x.shape[1]).astype(np.float32)
    largest = 1.0
    for _ in range(20):
        v = x.T @ (x @ v) / len(x)
        largest = float(np.linalg.norm(v)) or 1.0
        v /= largest
    return min(RATE, 1.0 / (0.5 * largest + L2))


def _softmax(z) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)

"""Likely label errors: photos whose out-of-fold prediction disagrees with their folder (confident learning).

As cleanlab's ``find_label_issues`` does, every photo is judged by models that never saw it: the photos are
split into folds per class, and each fold is predicted by models fitted on the others. Two models, averaged:
a softmax regression on the backbone's features (standardised), and the votes of each photo's 10 nearest
neighbours (cosine on centred features), which a handful of wrong labels cannot sway. A photo is an issue
when the averaged prediction's most likely class is not its folder's; issues are ranked by self-confidence
(the probability of the folder's class), lowest first: ``score`` is one minus it.
"""

from __future__ import annotations

import numpy as np

from ..models.similarity import nearest, unit_rows

FOLDS = 5
NEIGHBOURS = 10
L2, STEPS, RATE = 1e-2, 150, 1.0  # softmax regression: plain gradient descent on standardised features


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
    suggested = probs.argmax(axis=1)
    order = [int(i) for i in np.argsort(self_confidence, kind="stable") if suggested[i] != labels[i]]
    demoted = set(demoted)
    order = [i for i in order if i not in demoted] + [i for i in order if i in demoted]
    return [(i, int(suggested[i]), round(float(1 - self_confidence[i]), 4)) for i in order]


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
    bias = np.zeros(num_classes, np.float32)
    target = np.eye(num_classes, dtype=np.float32)[labels]
    for _ in range(STEPS):
        gradient = (_softmax(x @ weights + bias) - target) / len(x)
        weights -= RATE * (x.T @ gradient + L2 * weights)
        bias -= RATE * gradient.sum(axis=0)
    return weights, bias


def _softmax(z) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)

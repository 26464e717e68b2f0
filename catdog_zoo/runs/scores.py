"""Scores of predictions against labels: accuracy, cross-entropy, and precision/recall/F1 for every class."""

from __future__ import annotations

import numpy as np


def cross_entropy(probs, labels) -> float:
    """Mean negative log-probability of the true class (probabilities clipped at 1e-7, as Keras does)."""
    labels = np.asarray(labels, int)
    return float(-np.log(np.clip(np.asarray(probs)[np.arange(len(labels)), labels], 1e-7, 1.0)).mean())


# What a score that cannot be computed is shown as: a precision of 0% would say "always wrong" of a class the
# model never answered (a run stuck at the majority class), which is not what happened.
UNDEFINED = {"precision": "undefined (never predicted)", "recall": "undefined (no images)",
             "f1": "undefined (never predicted, no images)"}


def per_class(labels, predicted, class_names) -> dict:
    """``{class: {"precision", "recall", "f1", "support"}}``; a score without a denominator is None (precision of a
    class never predicted, recall of a class without images: :data:`UNDEFINED` says them in words)."""
    labels, predicted = np.asarray(labels, int), np.asarray(predicted, int)
    out = {}
    for index, name in enumerate(class_names):
        hits = int(((predicted == index) & (labels == index)).sum())
        said, real = int((predicted == index).sum()), int((labels == index).sum())

        def ratio(part, whole):
            return round(part / whole, 4) if whole else None
        # F1 as 2TP / (2TP + FP + FN): the harmonic mean of precision and recall where both exist, 0 where
        # either is 0 or undefined with the other defined (sklearn's convention), undefined only without both
        out[name] = {"precision": ratio(hits, said), "recall": ratio(hits, real), "f1": ratio(2 * hits, said + real),
                     "support": real}
    return out


def score_text(scores: dict, key: str, spec: str = ".4f") -> str:
    """One score of :func:`per_class` for people: formatted with ``spec``, or why it is undefined."""
    value = scores.get(key)
    return UNDEFINED[key] if value is None else format(value, spec)

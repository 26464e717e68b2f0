"""Scores of predictions against labels: accuracy, cross-entropy, and precision/recall/F1 for every class."""

from __future__ import annotations

import numpy as np


def cross_entropy(probs, labels) -> float:
    """Mean negative log-probability of the true class (probabilities clipped at 1e-7, as Keras does)."""
    labels = np.asarray(labels, int)
    return float(-np.log(np.clip(np.asarray(probs)[np.arange(len(labels)), labels], 1e-7, 1.0)).mean())


def per_class(labels, predicted, class_names) -> dict:
    """``{class: {"precision", "recall", "f1", "support"}}``; a class never predicted has precision 0."""
    labels, predicted = np.asarray(labels, int), np.asarray(predicted, int)
    out = {}
    for index, name in enumerate(class_names):
        hits = int(((predicted == index) & (labels == index)).sum())
        said, real = int((predicted == index).sum()), int((labels == index).sum())
        precision = hits / said if said else 0.0
        recall = hits / real if real else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                     "support": real}
    return out

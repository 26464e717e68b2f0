"""How far a model's probabilities can be trusted: calibration error, temperature scaling, PR and ROC curves.

Pure NumPy on plain arrays (logits, probabilities, integer labels), so it runs without TensorFlow and every
result is JSON-ready for ``metrics.json``. Logits follow the package's convention: one column means a binary
model (probability of the second class = sigmoid), several mean softmax.
"""

from __future__ import annotations

import math

import numpy as np

from .scores import cross_entropy

# Temperatures searched: wide enough for a head that is 20x over- or under-confident, and bounded so a
# perfectly separable validation split (whose likelihood keeps improving as T -> 0) still gets an answer.
T_RANGE = (0.05, 20.0)
CURVE_POINTS = 200  # per PR or ROC curve kept in metrics.json: enough for a smooth figure, a few kB a class
CURVE_BUDGET = 20_000  # points of one kind of curve over all classes (1,000 classes: 20 points each)


# ----- probabilities --------------------------------------------------------------------------------------

def _logit_matrix(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return logits.reshape(-1, 1) if logits.ndim == 1 else logits


def scaled_probabilities(logits, temperature: float = 1.0) -> np.ndarray:
    """``(N, C)`` probabilities of ``logits / temperature``: two columns for a one-logit model (as
    :func:`catdog_zoo.models.heads.probabilities` gives, which this layer cannot import without Keras)."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    z = _logit_matrix(logits) / temperature
    if z.shape[1] == 1:
        # log(1 + e^x) through logaddexp: no overflow for logits of +-1000, and both columns keep full precision
        return np.stack([np.exp(-np.logaddexp(0.0, z[:, 0])), np.exp(-np.logaddexp(0.0, -z[:, 0]))], axis=1)
    shifted = np.exp(z - z.max(axis=1, keepdims=True))  # the largest term is exp(0): no overflow
    return shifted / shifted.sum(axis=1, keepdims=True)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under ``logits / temperature``, computed in log space
    (exact even where a probability underflows to 0, which the clipped :func:`.scores.cross_entropy` is not)."""
    z = logits / temperature
    if z.shape[1] == 1:
        sign = np.where(labels == 1, -1.0, 1.0)  # -log sigmoid(z) = softplus(-z); -log(1 - sigmoid(z)) = softplus(z)
        return float(np.logaddexp(0.0, sign * z[:, 0]).mean())
    top = z.max(axis=1)
    log_norm = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
    return float((log_norm - z[np.arange(len(z)), labels]).mean())


# ----- temperature scaling --------------------------------------------------------------------------------

def _golden_section(f, low: float, high: float, tolerance: float = 1e-6) -> float:
    """The minimum of a unimodal ``f`` on ``[low, high]``."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tolerance:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2


def fit_temperature(logits, labels) -> float:
    """The temperature ``T`` that minimises the negative log-likelihood of ``labels`` under ``logits / T``
    (Guo et al. 2017), searched in ``T_RANGE``; 1.0 when there is too little data or nothing to gain.

    ``logits``: ``(N, 1)`` (or ``(N,)``) for a binary model, ``(N, C)`` for softmax; fit it on the
    validation split, never on the split it is judged on.
    """
    logits, labels = _logit_matrix(logits), np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(logits) != len(labels):
        raise ValueError(f"{len(logits)} rows of logits but {len(labels)} labels")
    classes = max(logits.shape[1], 2)
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must be class indices below {classes}")
    if len(labels) < 2 or not np.isfinite(logits).all():
        return 1.0  # one example says nothing about a scale; inf/nan logits no temperature can mend

    def nll(log_t):
        return _nll(logits, labels, math.exp(log_t))

    # The NLL is convex in 1/T, hence unimodal in log T: a coarse grid finds the right bracket even where
    # the curve is nearly flat, and golden section refines inside it.
    grid = np.linspace(math.log(T_RANGE[0]), math.log(T_RANGE[1]), 61)
    best = int(np.argmin([nll(x) for x in grid]))
    log_t = _golden_section(nll, grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)])
    if not nll(log_t) < _nll(logits, labels, 1.0) - 1e-9:
        return 1.0
    return math.exp(log_t)


# ----- calibration error ----------------------------------------------------------------------------------

def _top_label(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """Each row's confidence (its largest probability) and whether that class is the label."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 1:  # a column of second-class probabilities
        probs = np.stack([1.0 - probs, probs], axis=1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} rows of probabilities but {len(labels)} labels")
    if not len(labels):
        return np.zeros(0), np.zeros(0, bool)
    return probs.max(axis=1), probs.argmax(axis=1) == labels


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin ``i`` holds confidences in ``(i/bins, (i+1)/bins]`` (the first one also 0), as in Guo et al."""
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability(probs, labels, bins: int = 15) -> list[dict]:
    """``[{"lower", "upper", "count", "confidence", "accuracy"}]`` for every non-empty equal-width bin of
    top-label confidence: the mean confidence and the accuracy of the predictions in it."""
    confidence, correct = _top_label(probs, labels)
    index = _bin_index(confidence, bins)
    out = []
    for i in np.unique(index):
        members = index == i
        i = int(i)
        out.append({"lower": round(i / bins, 4), "upper": round((i + 1) / bins, 4), "count": int(members.sum()),
                    "confidence": float(confidence[members].mean()), "accuracy": float(correct[members].mean())})
    return out


def expected_calibration_error(probs, labels, bins: int = 15) -> float | None:
    """Top-label ECE: the count-weighted mean gap between accuracy and mean confidence over equal-width bins
    (0 is perfectly calibrated); None without examples."""
    table = reliability(probs, labels, bins)
    total = sum(b["count"] for b in table)
    if not total:
        return None
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in table))


def _rounded_bins(table: list[dict]) -> list[dict]:
    return [{**b, "confidence": round(b["confidence"], 4), "accuracy": round(b["accuracy"], 4)} for b in table]


def _maybe_round(value, digits: int = 4):
    return None if value is None else round(float(value), digits) + 0.0  # + 0.0: -0.0 becomes 0.0


def calibration_summary(val_logits, val_labels, held_logits, held_labels, bins: int = 15) -> dict:
    """Temperature scaling fitted on validation logits and judged on the held-out split:
    ``{"temperature", "ece_before", "ece_after", "bins_before", "bins_after", "nll_before", "nll_after"}``
    (plain floats, ints and lists; ECE and NLL None when the held-out split is empty)."""
    temperature = fit_temperature(val_logits, val_labels)
    labels = np.asarray(held_labels, dtype=np.int64).reshape(-1)
    out = {"temperature": round(temperature, 4)}
    for when, t in (("before", 1.0), ("after", temperature)):
        probs = scaled_probabilities(held_logits, t) if len(labels) else np.zeros((0, 2))
        out[f"ece_{when}"] = _maybe_round(expected_calibration_error(probs, labels, bins))
        out[f"bins_{when}"] = _rounded_bins(reliability(probs, labels, bins))
        # the clipped cross-entropy every other loss in metrics.json is, so the numbers compare
        out[f"nll_{when}"] = _maybe_round(cross_entropy(probs, labels)) if len(labels) else None
    return out


# ----- precision-recall and ROC curves --------------------------------------------------------------------

def _counts_by_threshold(scores: np.ndarray, positive: np.ndarray):
    """Distinct thresholds, highest first, and the true and false positives when predicting positive at
    ``score >= threshold``."""
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # ties move together
    true_pos = np.cumsum(positive)[last_of_each]
    return scores[last_of_each], true_pos, (last_of_each + 1) - true_pos


def _thin(count: int, limit: int = CURVE_POINTS) -> np.ndarray:
    """At most ``limit`` indices spread evenly over ``range(count)``, first and last kept."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(np.int64))


def _points(thresholds, **series) -> dict:
    keep = _thin(len(thresholds))
    out = {name: [round(float(v), 4) for v in np.asarray(values)[keep]] for name, values in series.items()}
    # None is "predict nothing" (the ROC curve's origin): above every score, and JSON has no infinity
    out["thresholds"] = [None if not np.isfinite(t) else round(float(t), 6) for t in np.asarray(thresholds)[keep]]
    return out


def _roc(thresholds, tp, fp, positives: int, negatives: int):
    if not positives or not negatives:
        return {"fpr": [], "tpr": [], "thresholds": []}, None
    fpr, tpr = np.r_[0.0, fp / negatives], np.r_[0.0, tp / positives]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids: ties count half, as Mann-Whitney
    return _points(np.r_[np.inf, thresholds], fpr=fpr, tpr=tpr), auc


def _pr(thresholds, tp, fp, positives: int):
    if not positives:
        return {"precision": [], "recall": [], "thresholds": []}, None
    precision, recall = tp / (tp + fp), tp / positives
    average = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))  # step sum, not interpolated (as sklearn)
    return _points(thresholds, precision=precision, recall=recall), average


def _operating_point(predicted: np.ndarray, positive: np.ndarray) -> dict:
    """Where the model's own decision (argmax) sits on this class's curves."""
    tp, fp = int((predicted & positive).sum()), int((predicted & ~positive).sum())
    positives, negatives = int(positive.sum()), int((~positive).sum())
    return {"precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / positives, 4) if positives else None,
            "tpr": round(tp / positives, 4) if positives else None,
            "fpr": round(fp / negatives, 4) if negatives else None}


def _class_curves(scores: np.ndarray, positive: np.ndarray, predicted: np.ndarray) -> dict:
    positives, negatives = int(positive.sum()), int((~positive).sum())
    thresholds, tp, fp = _counts_by_threshold(scores, positive) if len(scores) else (np.zeros(0),) * 3
    roc, auc = _roc(thresholds, tp, fp, positives, negatives)
    pr, average = _pr(thresholds, tp, fp, positives)
    return {"positives": positives, "negatives": negatives, "roc_auc": _maybe_round(auc),
            "average_precision": _maybe_round(average), "roc": roc, "pr": pr,
            "operating_point": _operating_point(predicted, positive)}


def curves(probs, labels, class_names) -> dict:
    """One-vs-rest curves per class (positive: that class; score: its probability):
    ``{class: {"positives", "negatives", "roc_auc", "average_precision", "roc": {"fpr", "tpr", "thresholds"},
    "pr": {"precision", "recall", "thresholds"}, "operating_point": {"precision", "recall", "fpr", "tpr"}}}``.

    A point is the classifier "positive when score >= threshold" (a ROC threshold of None: nothing positive);
    each curve keeps at most ``CURVE_POINTS`` points, the AUC and average precision come from all of them.
    A class without positives (or negatives) has empty curves and None where a rate would divide by zero.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.size == 0:
        probs = np.zeros((0, len(class_names)))
    if probs.shape != (len(labels), len(class_names)):
        raise ValueError(f"probabilities of shape {probs.shape} for {len(labels)} labels "
                         f"and {len(class_names)} classes")
    predicted = probs.argmax(axis=1) if len(labels) else np.zeros(0, np.int64)
    found = {name: _class_curves(probs[:, i], labels == i, predicted == i) for i, name in enumerate(class_names)}
    limit = max(10, min(CURVE_POINTS, CURVE_BUDGET // max(1, len(class_names))))
    if limit < CURVE_POINTS:  # many classes: fewer points each, so metrics.json stays small enough to read back
        for c in found.values():
            for kind in ("roc", "pr"):
                keep = _thin(len(c[kind]["thresholds"]), limit)
                c[kind] = {k: [v[i] for i in keep] for k, v in c[kind].items()}
    return found

"""Calibration (ECE, temperature scaling) and PR/ROC curves on synthetic data with known answers; their figures."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from catdog_zoo.reports import plots
from catdog_zoo.runs import calibration as cal


def _draw(probs, rng):
    """A label per row, drawn from that row's probabilities: the model is calibrated by construction."""
    cumulative = np.cumsum(probs, axis=1)
    return (rng.random((len(probs), 1)) > cumulative).sum(axis=1).clip(0, probs.shape[1] - 1)


def _nll(logits, labels, t):
    probs = cal.scaled_probabilities(logits, t)
    return float(-np.log(probs[np.arange(len(labels)), labels]).mean())


def test_the_module_does_not_load_tensorflow():
    code = "import sys, catdog_zoo.runs.calibration; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]


# ----- expected calibration error -------------------------------------------------------------------------

def test_calibrated_probabilities_have_an_ece_near_zero():
    rng = np.random.default_rng(0)
    probs = cal.scaled_probabilities(rng.normal(0, 2, (20000, 3)))
    assert cal.expected_calibration_error(probs, _draw(probs, rng)) < 0.02


def test_always_99_percent_sure_and_70_percent_right_has_an_ece_of_029():
    labels = np.r_[np.zeros(70, int), np.ones(30, int)]
    probs = np.tile([0.99, 0.01], (100, 1))  # always says class 0
    assert cal.expected_calibration_error(probs, labels) == pytest.approx(0.29, abs=1e-9)
    [only] = cal.reliability(probs, labels)
    assert only["count"] == 100 and only["accuracy"] == pytest.approx(0.7)
    assert only["lower"] < 0.99 <= only["upper"] and only["confidence"] == pytest.approx(0.99)


def test_ece_weighs_each_bin_by_its_share_of_the_examples():
    # 10 at confidence 0.95, all right (gap 0.05); 30 at 0.55, 12 right (gap 0.15): 0.125, not the mean 0.1
    probs = np.r_[np.tile([0.95, 0.05], (10, 1)), np.tile([0.55, 0.45], (30, 1))]
    labels = np.r_[np.zeros(10, int), np.zeros(12, int), np.ones(18, int)]
    expected = 10 / 40 * 0.05 + 30 / 40 * 0.15
    assert cal.expected_calibration_error(probs, labels, bins=10) == pytest.approx(expected)
    assert [b["count"] for b in cal.reliability(probs, labels, bins=10)] == [30, 10]  # low bins first


def test_empty_input_has_no_ece_and_no_bins():
    assert cal.expected_calibration_error(np.zeros((0, 2)), []) is None
    assert cal.reliability(np.zeros((0, 3)), []) == []


# ----- temperature scaling --------------------------------------------------------------------------------

@pytest.mark.parametrize("classes, true_t", [(1, 2.5), (1, 0.4), (3, 3.0), (3, 0.5)])
def test_fit_temperature_recovers_a_known_temperature_and_lowers_nll(classes, true_t):
    rng = np.random.default_rng(classes)
    z_true = rng.normal(0, 2, (6000, classes))
    labels = _draw(cal.scaled_probabilities(z_true), rng)  # calibrated at T = 1 ...
    logits = z_true * true_t  # ... so these need T = true_t
    fitted = cal.fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.1)
    assert _nll(logits, labels, fitted) < _nll(logits, labels, 1.0)


def test_fit_temperature_takes_one_dimensional_binary_logits():
    rng = np.random.default_rng(7)
    z = rng.normal(0, 2, 4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)
    assert cal.fit_temperature(z * 2, labels) == pytest.approx(cal.fit_temperature(z[:, None] * 2, labels))


def test_fit_temperature_keeps_1_without_data_or_gain():
    assert cal.fit_temperature(np.array([[3.0]]), [1]) == 1.0  # one example
    assert cal.fit_temperature(np.zeros((50, 3)), np.arange(50) % 3) == 1.0  # no temperature changes anything
    assert cal.fit_temperature(np.array([[np.inf], [1.0]]), [1, 0]) == 1.0


def test_fit_temperature_stays_in_range_on_separable_data():
    logits = np.array([[5.0], [-5.0]] * 20)
    labels = np.array([1, 0] * 20)
    t = cal.fit_temperature(logits, labels)
    assert cal.T_RANGE[0] <= t < 0.1  # sharper is always better here: the lower bound, not a runaway


def test_fit_temperature_refuses_labels_that_are_not_classes():
    with pytest.raises(ValueError, match="class indices"):
        cal.fit_temperature(np.zeros((4, 1)), [0, 1, 2, 1])
    with pytest.raises(ValueError, match="labels"):
        cal.fit_temperature(np.zeros((4, 3)), [0, 1])


def test_scaled_probabilities_sum_to_one_and_stay_finite_for_huge_logits():
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # not even a warning (underflow to 0 is fine)
        binary = cal.scaled_probabilities(np.array([[1000.0], [-1000.0], [0.0], [3.0]]), 0.5)
        multi = cal.scaled_probabilities(np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0]]), 0.05)
    for probs in (binary, multi):
        assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1.0)
    assert binary.shape == (4, 2) and binary[0].tolist() == [0.0, 1.0] and binary[1].tolist() == [1.0, 0.0]
    assert binary[3, 1] == pytest.approx(1 / (1 + math.exp(-6)))
    assert multi[0].argmax() == 0 and multi[1].argmax() == 2
    with pytest.raises(ValueError):
        cal.scaled_probabilities(binary, 0.0)


def test_calibration_summary_fits_on_validation_and_judges_the_held_out_split():
    rng = np.random.default_rng(3)
    z_val, z_held = rng.normal(0, 2, (3000, 1)), rng.normal(0, 2, (2000, 1))
    y_val, y_held = (_draw(cal.scaled_probabilities(z), rng) for z in (z_val, z_held))
    summary = cal.calibration_summary(z_val * 3, y_val, z_held * 3, y_held)
    assert set(summary) == {"temperature", "ece_before", "ece_after", "bins_before", "bins_after",
                            "nll_before", "nll_after"}
    assert summary["temperature"] == pytest.approx(3.0, rel=0.1)
    assert summary["ece_after"] < summary["ece_before"] and summary["nll_after"] < summary["nll_before"]
    assert sum(b["count"] for b in summary["bins_after"]) == 2000
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary  # plain JSON, nothing numpy
    empty = cal.calibration_summary(z_val, y_val, np.zeros((0, 1)), [])
    assert empty["ece_before"] is None and empty["nll_after"] is None and empty["bins_after"] == []


# ----- PR and ROC curves ----------------------------------------------------------------------------------

def _rank_auc(scores, positive):
    """AUC the slow way: the chance a positive outscores a negative, ties half."""
    pos, neg = scores[positive][:, None], scores[~positive][None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def test_a_perfect_classifier_has_auc_and_average_precision_1():
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    probs = np.stack([1 - labels * 0.8 - 0.1, labels * 0.8 + 0.1], axis=1)
    result = cal.curves(probs, labels, ["cats", "dogs"])
    for name in ("cats", "dogs"):
        assert result[name]["roc_auc"] == 1.0 and result[name]["average_precision"] == 1.0
        assert result[name]["operating_point"] == {"precision": 1.0, "recall": 1.0, "tpr": 1.0, "fpr": 0.0}
    roc = result["dogs"]["roc"]
    assert roc["thresholds"][0] is None and (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0)
    assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)


def test_random_scores_have_auc_near_half_and_match_the_rank_definition():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 5000)
    probs = rng.dirichlet(np.ones(3), 5000).round(2)  # rounded: many ties between scores
    result = cal.curves(probs, labels, ["a", "b", "c"])
    for i, name in enumerate("abc"):
        assert result[name]["roc_auc"] == pytest.approx(0.5, abs=0.03)
        assert result[name]["roc_auc"] == pytest.approx(_rank_auc(probs[:, i], labels == i), abs=1e-4)
        assert result[name]["average_precision"] == pytest.approx((labels == i).mean(), abs=0.03)


def test_average_precision_is_the_step_sum_of_precision_over_recall():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([1, 0, 1, 0, 1])
    result = cal.curves(np.stack([1 - scores, scores], axis=1), labels, ["n", "p"])["p"]
    # positives at ranks 1, 3, 5: precision there 1, 2/3, 3/5, each recall step 1/3
    assert result["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3, abs=1e-4)
    assert result["pr"]["recall"] == [0.3333, 0.3333, 0.6667, 0.6667, 1.0]


def test_curves_are_thinned_to_at_most_200_points_with_both_ends_kept():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 3000)
    probs = cal.scaled_probabilities(rng.normal(0, 1, (3000, 1)) + (labels[:, None] - 0.5))
    result = cal.curves(probs, labels, ["x", "y"])["y"]
    for curve in (result["roc"], result["pr"]):
        lengths = {len(v) for v in curve.values()}
        assert len(lengths) == 1 and 100 < lengths.pop() <= cal.CURVE_POINTS
    assert result["roc"]["fpr"][-1] == 1.0 and result["pr"]["recall"][-1] == 1.0
    assert result["roc_auc"] == pytest.approx(_rank_auc(probs[:, 1], labels == 1), abs=1e-4)  # from every point


def test_a_class_without_positives_or_negatives_gets_none_not_a_crash():
    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    result = cal.curves(probs, [0, 0, 1], ["a", "b", "c"])
    c = result["c"]
    assert c["positives"] == 0 and c["roc_auc"] is None and c["average_precision"] is None
    assert c["roc"]["fpr"] == [] and c["pr"]["recall"] == [] and c["operating_point"]["recall"] is None
    only = cal.curves(np.array([[0.2, 0.8], [0.4, 0.6]]), [1, 1], ["a", "b"])["b"]  # no negatives
    assert only["roc_auc"] is None and only["average_precision"] == 1.0
    json.dumps(result, allow_nan=False)


def test_curves_refuse_probabilities_that_do_not_match_the_classes():
    with pytest.raises(ValueError, match="classes"):
        cal.curves(np.zeros((3, 2)), [0, 1, 0], ["a", "b", "c"])


# ----- figures --------------------------------------------------------------------------------------------

def _png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def _fixture(names, n=400, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(names), n)
    logits = rng.normal(0, 1, (n, len(names))) + 2 * np.eye(len(names))[labels]
    return logits, labels


def test_reliability_diagram_writes_a_png(tmp_path):
    logits, labels = _fixture(["a", "b", "c"])
    summary = cal.calibration_summary(logits * 3, labels, logits * 3, labels)
    out = plots.reliability_diagram(summary["bins_before"], summary["bins_after"], tmp_path / "rel.png",
                                    title="$\\cmd$ cats run")
    assert _png(out)
    assert _png(plots.reliability_diagram([], [], tmp_path / "empty.png"))


@pytest.mark.parametrize("names, thresholds", [(["$\\cmd$ cats", "dogs $"], None),
                                               (["$\\cmd$ cats", "dogs $"], 0.8),
                                               (["a$b$", "$x", "c"], None)])
def test_pr_roc_curves_write_a_png_whatever_the_class_names(tmp_path, names, thresholds):
    logits, labels = _fixture(names)
    if len(names) == 2:
        logits = logits[:, 1:] - logits[:, :1]  # one logit, as a binary model has
    result = cal.curves(cal.scaled_probabilities(logits), labels, names)
    assert _png(plots.pr_roc_curves(result, tmp_path / "curves.png", thresholds=thresholds))


def test_pr_roc_curves_draw_a_class_without_positives(tmp_path):
    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    assert _png(plots.pr_roc_curves(cal.curves(probs, [0, 0, 1, 1], ["a", "b", "c"]), tmp_path / "c.png"))


def test_a_threshold_moves_the_operating_point_along_the_curve():
    scores = np.linspace(0.01, 0.99, 99)
    labels = (scores > 0.3).astype(int)
    result = cal.curves(np.stack([1 - scores, scores], axis=1), labels, ["cats", "dogs"])
    default = plots._operating_points(result, None)
    strict = plots._operating_points(result, 0.9)
    assert default["dogs"][1] == (0.0, pytest.approx(49 / 69, abs=1e-4))  # (fpr, tpr) at 0.5
    assert strict["dogs"][1][1] == pytest.approx(10 / 69, abs=1e-4)  # scores >= 0.9: 10 of 69 positives
    assert strict["cats"][0][0] == 1.0  # every cat is below 0.9: all found
    with pytest.raises(ValueError, match="two classes"):
        plots._operating_points({"a": {}, "b": {}, "c": {}}, 0.5)

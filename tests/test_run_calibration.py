"""Every finished run records and shows its calibration (ECE, temperature, PR/ROC curves), and its errors
figure explains the worst errors with Grad-CAM heatmaps (plain images where a model cannot be explained)."""

import base64
import io
import json
import math
import re
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from PIL import Image

import catdog_zoo
from catdog_zoo.models.heads import probabilities
from catdog_zoo.reports import run_report
from catdog_zoo.runs import calibration as cal
from catdog_zoo.runs.record import RunRecord
from catdog_zoo.training import finish

CALIBRATION_KEYS = ["temperature", "ece_before", "ece_after", "nll_before", "nll_after", "bins_before",
                    "bins_after", "split", "curves"]


def png_size(path):
    assert path.stat().st_size > 1000, path
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_a_finished_runs_record_holds_its_calibration(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    order = list(metrics)
    assert order.index("calibration") == order.index("per_class") + 1
    c = metrics["calibration"]
    assert list(c) == CALIBRATION_KEYS and c["split"] == "test"
    assert math.isfinite(c["temperature"]) and c["temperature"] > 0
    for key in ("ece_before", "ece_after"):
        assert c[key] is None or 0 <= c[key] <= 1, (key, c[key])
    test_size = metrics["split_sizes"]["test"]
    for when in ("before", "after"):
        assert sum(b["count"] for b in c[f"bins_{when}"]) == test_size
        ece = sum(b["count"] / test_size * abs(b["accuracy"] - b["confidence"]) for b in c[f"bins_{when}"])
        assert ece == pytest.approx(c[f"ece_{when}"], abs=2e-4)  # the ECE is the one of the recorded bins
    # the unscaled NLL is the test loss Keras measured (both clip probabilities at 1e-7)
    assert c["nll_before"] == pytest.approx(metrics["test_loss"], abs=2e-3)
    assert list(c["curves"]) == metrics["class_names"]
    for name, curve in c["curves"].items():
        scores = metrics["per_class"][name]
        assert curve["positives"] == scores["support"]
        assert curve["positives"] + curve["negatives"] == test_size
        assert 0 <= curve["roc_auc"] <= 1 and 0 <= curve["average_precision"] <= 1
        assert len(curve["roc"]["fpr"]) == len(curve["roc"]["tpr"]) == len(curve["roc"]["thresholds"]) >= 2
        assert len(curve["pr"]["precision"]) == len(curve["pr"]["recall"]) >= 1
        assert curve["operating_point"]["recall"] == pytest.approx(scores["recall"], abs=1e-3)


def test_the_report_shows_calibration_and_the_two_figures(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for name in ("calibration.png", "pr_roc.png"):
        width, height = png_size(tiny_run / name)
        assert width > 300 and height > 300, name
    page = (tiny_run / "report.html").read_text()
    section = page[page.index("<h2>Calibration (test)</h2>"):]
    c = metrics["calibration"]
    assert f"temperature-scaled by T={c['temperature']:.3g}, fitted on validation" in section
    assert f"ECE on the test split {c['ece_before']:.3f} &rarr; {c['ece_after']:.3f}" in section
    for alt in ("calibration.png", "pr_roc.png"):
        data = re.search(rf'alt="{re.escape(alt)}" src="data:image/png;base64,([^"]+)"', section).group(1)
        assert Image.open(io.BytesIO(base64.b64decode(data))).format == "PNG"
    assert "<th>ROC AUC</th><th>AP</th>" in section
    for name, curve in c["curves"].items():
        assert f"<td>{name}</td><td>{curve['roc_auc']:.3f}</td><td>{curve['average_precision']:.3f}</td>" in section
    assert "--threshold t</code> predicts dogs when its probability is &gt;= t" in section


def test_calibration_is_fitted_on_validation_and_judged_on_the_held_out_split():
    rng = np.random.default_rng(0)
    labels = {"validation": rng.integers(0, 2, 300), "test": rng.integers(0, 2, 200)}
    # over-confident logits (3x) on validation; the held-out split differs, so a mix-up would show
    logits = {"validation": 3 * (labels["validation"] * 2 - 1 + rng.normal(0, 1.5, 300))[:, None],
              "test": (labels["test"] * 2 - 1 + rng.normal(0, 1, 200))[:, None]}
    runner = SimpleNamespace(labels=lambda name: labels[name], splits=SimpleNamespace(class_names=["cats", "dogs"]))
    result = finish._calibration(runner, lambda name: logits[name], "test")
    assert list(result) == CALIBRATION_KEYS and result["split"] == "test"
    assert result["temperature"] == pytest.approx(cal.fit_temperature(logits["validation"], labels["validation"]),
                                                  abs=1e-4)
    assert result["temperature"] > 1.5  # the 3x over-confidence is seen
    expected = cal.curves(probabilities(logits["test"]), labels["test"], ["cats", "dogs"])
    assert result["curves"] == expected
    assert result["ece_before"] == pytest.approx(
        cal.expected_calibration_error(probabilities(logits["test"]), labels["test"]), abs=1e-4)
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def _chain_cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((24, 24, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)], name="chain")


def _skip_cnn():
    inputs = keras.Input((24, 24, 3))
    a = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same")(a)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a, b]))
    return keras.Model(inputs, keras.layers.Dense(1)(x), name="skip")


def test_errors_are_explained_with_grad_cam_or_shown_plain(capsys):
    images = [np.random.default_rng(i).integers(0, 255, (24, 24, 3)).astype(np.uint8) for i in range(3)]
    pictures, how = run_report.explained(images, np.array([1, 0, 1]), _chain_cnn())
    assert how.startswith("Grad-CAM heatmaps of the predicted class") and "24x24 feature map" in how
    assert "layer 'last_conv'" in how
    assert len(pictures) == 3 and all(p.shape == (24, 24, 3) and p.dtype == np.uint8 for p in pictures)
    assert not any(np.array_equal(p, i) for p, i in zip(pictures, images))  # coloured by a heatmap
    assert capsys.readouterr().err == ""
    plain, how = run_report.explained(images, np.array([1, 0, 1]), _skip_cnn())
    assert all(p is i for p, i in zip(plain, images)) and len(plain) == 3
    assert how.startswith("plain images: no Grad-CAM heatmaps") and "not a chain" in how
    warning = capsys.readouterr().err.splitlines()
    assert len(warning) == 1 and warning[0].startswith("Warning: no heatmaps on errors.png")
    assert run_report.explained(images, np.array([1, 0, 1]), None) == (images, "")


def test_a_run_whose_calibration_and_heatmaps_fail_still_finishes(tiny_data, tmp_path, monkeypatch, capfd):
    from catdog_zoo.models import gradcam

    def broken(*args, **kwargs):
        raise ValueError("bad logits")

    def not_a_chain(model, *args, **kwargs):
        raise ValueError(f"{model.name}'s top-level layers are not a chain")
    monkeypatch.setattr(finish, "calibration_summary", broken)
    monkeypatch.setattr(gradcam, "feature_map", not_a_chain)
    run_dir = tmp_path / "run"
    catdog_zoo.train("dropout_heavy", data=str(tiny_data), epochs=1, image_size=40, batch_size=8,
                     learning_rate=0.3, run_dir=str(run_dir), quiet=True, test_fraction=0.5)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["calibration"] is None and metrics["confusion_matrix"]["worst_errors"]
    err = capfd.readouterr().err
    assert "Warning: could not measure calibration: ValueError: bad logits" in err
    assert err.count("Warning: no heatmaps on errors.png, plain images instead") == 1
    assert png_size(run_dir / "errors.png")[0] > 200 and not (run_dir / "calibration.png").exists()
    page = (run_dir / "report.html").read_text()
    assert "plain images: no Grad-CAM heatmaps for this model" in page
    assert "Calibration was not measured for this run." in page
    assert RunRecord.from_dict(metrics).calibration is None

"""Open-set answers ("unknown"), explanations and calibration as predict, evaluate and exports give them.

A tiny plugin model with a fixed random convolutional "pretrained" backbone stands in for MobileNetV2: the
two classes are colours (tests/imagefactory.py), and photos of other colours are what is neither class.
"""

import csv
import json

import numpy as np
import pytest
from conftest import cli_run
from frozen_plugin import trained_run
from PIL import Image

import catdog_zoo
from catdog_zoo.errors import ZooError
from catdog_zoo.runs import rejection




@pytest.fixture(scope="module")
def open_run(module_site, tmp_path_factory):
    """One run for the module's tests, which read it (a test that damages it works on a copy)."""
    return trained_run(module_site, tmp_path_factory.mktemp("open"), "frozen_open")


def test_the_operating_point_is_set_from_validation_and_recorded(open_run):
    run_dir, data, _ = open_run
    facts = json.loads((run_dir / "metrics.json").read_text())["rejection"]
    assert facts["available"] and facts["calibrated_on"] == "validation" and facts["bank_size"] == 60
    assert facts["validation_rejected"] <= 0.05 and 0 < facts["threshold"] < 2
    assert (run_dir / "novelty.npy").is_file()
    assert f"ood_score above {facts['threshold']:.3f}" in (run_dir / "report.html").read_text()


def test_predict_answers_unknown_for_what_is_neither_class(open_run, tmp_path):
    run_dir, data, strangers = open_run
    known = catdog_zoo.predict(run_dir, [data / "validation"])
    others = catdog_zoo.predict(run_dir, [strangers])
    assert sum(r["rejected"] for r in known) <= 2  # at most 5% of photos like the validation split
    assert all(r["rejected"] and r["label"] == "unknown" for r in others)
    assert min(r["ood_score"] for r in others) > max(r["ood_score"] for r in known)
    for r in others:  # the classes' probabilities are still given
        assert set(r["probabilities"]) == {"cats", "dogs"} and r["probability"] == max(r["probabilities"].values())
    # --no-reject: always one of the classes, no score
    plain = json.loads(cli_run("predict", run_dir, strangers, "--no-reject", "--json").stdout)
    assert all(not r["rejected"] and r["ood_score"] is None and r["label"] in ("cats", "dogs") for r in plain)
    out = tmp_path / "p.csv"
    printed = cli_run("predict", run_dir, strangers, "--out", out).stdout.splitlines()
    for line, r in zip(printed, others):  # the probability shown is the likeliest class's: that class is named
        likeliest = max(r["probabilities"], key=r["probabilities"].get)
        assert line.startswith(f"unknown (else {likeliest})\t{r['probability']:.4f}\t"), line
    rows = list(csv.DictReader(out.open()))
    assert {r["label"] for r in rows} == {"unknown"} and {r["rejected"] for r in rows} == {"true"}
    assert all(float(r["ood_score"]) > json.loads((run_dir / "metrics.json").read_text())["rejection"]["threshold"]
               for r in rows)


def test_evaluate_reports_accuracy_with_and_without_rejection(open_run):
    run_dir, data, _ = open_run
    result = json.loads(cli_run("evaluate", run_dir, "--split", "validation", "--json").stdout)
    r = result["rejection"]
    assert r["available"] and 0 <= r["rejected_fraction"] <= 0.05
    assert r["accepted_accuracy"] is not None and result["accuracy"] is not None
    text = cli_run("evaluate", run_dir).stdout
    assert "rejection:" in text and "answered 'unknown'" in text
    off = json.loads(cli_run("evaluate", run_dir, "--no-reject", "--json").stdout)["rejection"]
    assert off == {"available": False, "why": "turned off (--no-reject)"}


def test_a_model_without_a_pretrained_backbone_says_why_once(tiny_run, tiny_data):
    result = cli_run("predict", tiny_run, tiny_data / "validation", "--json")
    notes = [line for line in result.stderr.splitlines() if "no 'unknown' answers" in line] \
        if hasattr(result, "stderr") else []
    predictions = json.loads(result.stdout)
    assert all(r["rejected"] is False and r["ood_score"] is None for r in predictions)
    assert len(notes) == 1 and "no pretrained backbone" in notes[0]
    facts = json.loads((tiny_run / "metrics.json").read_text())["rejection"]
    assert facts["available"] is False and "pretrained backbone" in facts["why"]


@pytest.mark.parametrize("damage", ["truncated", "wrong width", "pickle", "symlink", "huge header"])
def test_a_damaged_novelty_file_is_one_clear_error(open_run, damage, tmp_path):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(open_run[0], run_dir)
    data = open_run[1]
    path = run_dir / "novelty.npy"
    good = np.load(path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "wrong width":
        np.save(path, good[:, :-1])
    elif damage == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif damage == "symlink":
        elsewhere = tmp_path / "elsewhere.npy"
        np.save(elsewhere, good)
        path.unlink()
        path.symlink_to(elsewhere)
    else:
        np.save(path, np.zeros((2, good.shape[1]), np.float16))
        data_bytes = bytearray(path.read_bytes())
        header = data_bytes[:128].decode("latin1").replace("(2,", "(9999999,")
        path.write_bytes(header.encode("latin1")[:128] + bytes(data_bytes[128:]))
    with pytest.raises(ZooError, match="novelty.npy"):
        catdog_zoo.predict(run_dir, [data / "validation" / "cats"])
    result = cli_run("predict", run_dir, data / "validation" / "cats", ok=False)
    assert result.exit_code == 1 and "novelty.npy" in result.output and "Traceback" not in result.output


def test_novelty_round_trip_and_threshold_quantile():
    rng = np.random.default_rng(0)
    spread = np.r_[np.ones(8), np.full(8, 0.05)]  # the photos vary in 8 directions of 16
    train, val = rng.normal(size=(300, 16)) * spread, rng.normal(size=(200, 16)) * spread
    novelty, facts = rejection.fit(train, val)
    scores = novelty.scores(val)
    assert facts["threshold"] == pytest.approx(np.quantile(scores, rejection.QUANTILE, method="higher"), abs=1e-3)
    assert (scores > novelty.threshold).mean() <= 1 - rejection.QUANTILE + 1e-9
    far = rng.normal(size=(20, 16)) * spread[::-1]  # varying in the other 8: unlike every training photo
    assert novelty.rejected(far)[1].mean() >= 0.9


def test_the_photo_that_sets_the_threshold_stays_accepted_as_recorded():
    """With few validation photos the threshold is the highest one's score: recorded to 6 decimals, it must
    still accept that photo (rounding it down rejected 1 of 13 validation photos that report.html counted as
    accepted)."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        val = rng.normal(size=(13, 16))
        novelty, facts = rejection.fit(rng.normal(size=(60, 16)), val)
        recorded = rejection.Novelty(novelty.centre, novelty.bank, json.loads(json.dumps(facts))["threshold"])
        assert not recorded.rejected(val)[1].any() and facts["validation_rejected"] == 0
        assert facts["validation_images"] == 13


def test_explain_writes_a_picture_and_a_grid_per_image(open_run, tmp_path):
    run_dir, data, strangers = open_run
    out = tmp_path / "why"
    results = json.loads(cli_run("predict", run_dir, data / "validation" / "cats", "--explain", out, "--json").stdout)
    assert len(results) == 20 and len(list(out.glob("*.png"))) == 20
    for r in results:
        grid = np.asarray(r["heatmap"])
        assert grid.ndim == 2 and grid.shape == (14, 14) and 0 <= grid.min() and grid.max() <= 1
        with Image.open(r["explanation"]) as picture:
            assert picture.size == (32, 32)
    again = cli_run("predict", run_dir, data / "validation" / "cats", "--explain", out, ok=False)
    assert again.exit_code == 1 and "already holds" in again.output  # nothing replaced
    into_run = cli_run("predict", run_dir, data / "validation" / "cats", "--explain", run_dir, ok=False)
    assert into_run.exit_code == 1 and "run directory" in into_run.output


def test_predictions_are_temperature_scaled(open_run):
    run_dir, data, _ = open_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    temperature = metrics["calibration"]["temperature"]
    model = catdog_zoo.load_model(run_dir / "model.keras")
    from catdog_zoo.data.pixels import decode_file
    path = sorted((data / "validation" / "dogs").iterdir())[0]
    logit = float(np.asarray(model(decode_file(str(path), (32, 32))[None].astype("float32")))[0, 0])
    (r,) = catdog_zoo.predict(run_dir, [path])
    assert r["probabilities"]["dogs"] == pytest.approx(1 / (1 + np.exp(-logit / temperature)), abs=1e-5)


def test_saved_model_answers_unknown_as_predict_does(open_run, tmp_path):
    import tensorflow as tf

    run_dir, data, strangers = open_run
    report = json.loads(cli_run("export", run_dir, "--format", "saved_model", "--json").stdout)
    assert "ood_score, rejected" in report["output"]
    loaded = tf.saved_model.load(report["path"])
    files = sorted((data / "validation" / "cats").iterdir())[:3] + sorted((strangers / "green").iterdir())[:3]
    answers = loaded.signatures["serve_image_bytes"](image_bytes=tf.constant([f.read_bytes() for f in files]))
    expected = catdog_zoo.predict(run_dir, files)
    assert [n.decode() for n in answers["class_name"].numpy()] == [r["label"] for r in expected]
    assert answers["rejected"].numpy().tolist() == [r["rejected"] for r in expected]
    np.testing.assert_allclose(answers["ood_score"].numpy(), [r["ood_score"] for r in expected], atol=1e-3)
    np.testing.assert_allclose(answers["probabilities"].numpy()[:, 1], [r["probabilities"]["dogs"] for r in expected],
                               atol=1e-4)

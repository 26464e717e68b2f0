"""Reports, leaderboards, the zoo sweep, predictions to CSV and exports, on tiny generated images."""

import base64
import csv
import io
import json
import re
import time

import numpy as np
import pytest
import yaml
from conftest import cli_run
from PIL import Image

import catdog_zoo
from catdog_zoo.reports.run_report import confident_errors, confusion
from catdog_zoo.training import finish
from catdog_zoo.util.progress import Progress

TINY = ["--epochs", 2, "--image-size", 40, "--batch-size", 8]


def png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


# -- the run report ---------------------------------------------------------------------------

def test_confusion_counts_and_confident_errors_order():
    labels = [0, 0, 1, 1, 1]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.95, 0.05], [0.6, 0.4]])
    assert confusion(labels, probs.argmax(1), 2).tolist() == [[1, 1], [2, 1]]
    # wrong: item 1 (p=0.8 for class 1), item 3 (p=0.95 for class 0), item 4 (p=0.6): most confident first
    assert confident_errors(labels, probs) == [3, 1, 4]
    assert confident_errors(labels, probs, limit=1) == [3]
    assert confident_errors([0, 1], np.array([[0.9, 0.1], [0.1, 0.9]])) == []


def test_every_run_has_figures_and_a_self_contained_report(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for name in ("learning_curves.png", "confusion_matrix.png", "errors.png", "calibration.png", "pr_roc.png"):
        width, height = png_size(tiny_run / name)
        assert width > 200 and height > 150, name
    cm = metrics["confusion_matrix"]
    assert cm["split"] == "test" and cm["class_names"] == metrics["class_names"]
    matrix = np.array(cm["matrix"])
    assert matrix.sum() == metrics["split_sizes"]["test"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["test_accuracy"])
    page = (tiny_run / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 5  # the five figures, inline
    for data in images:
        assert Image.open(io.BytesIO(base64.b64decode(data))).format == "PNG"
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from disk or network
    assert f"{metrics['val_accuracy']:.1%}" in page and "baseline" in page
    assert "learning_rate" in page and metrics["versions"]["tensorflow"] in page


def test_report_of_a_run_with_errors_names_the_worst_ones(tiny_data, tmp_path):
    # One epoch at a high learning rate: a model that still gets some test images wrong.
    run_dir = tmp_path / "run"
    catdog_zoo.train("dropout_heavy", data=str(tiny_data), epochs=1, image_size=40, batch_size=8,
                     learning_rate=0.3, run_dir=str(run_dir), quiet=True, test_fraction=0.5)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    cm = metrics["confusion_matrix"]
    wrong = int(np.sum(cm["matrix"]) - np.trace(cm["matrix"]))
    assert len(cm["worst_errors"]) == min(wrong, 12)
    probabilities = [e["probability"] for e in cm["worst_errors"]]
    assert probabilities == sorted(probabilities, reverse=True)
    losses = [e["loss"] for e in cm["worst_errors"]]
    assert losses == sorted(losses, reverse=True)  # top losses first, as fastai's plot_top_losses
    for e in cm["worst_errors"]:
        assert e["true"] != e["predicted"] and f"/{e['true']}/" in e["path"]
        if e["probability"] < 0.999:  # rounded to 4 digits: 1.0 would say nothing about the loss
            assert e["loss"] == pytest.approx(-np.log(1 - e["probability"]), rel=0.05)  # two classes
    page = (run_dir / "report.html").read_text()
    assert "epochs, " in page and "feature_cache=" not in page  # stages in words, not raw keys
    # the worst errors under Grad-CAM heatmaps of the class predicted, the method named on the page
    width, height = png_size(run_dir / "errors.png")
    assert width > 200 and height > 150 and (run_dir / "errors.png").stat().st_size > 1000
    assert re.search(r"Grad-CAM heatmaps of the predicted class, from the \d+x\d+ feature map output by layer "
                     r"&#x27;[^&]+&#x27;", page)
    assert metrics["calibration"]["split"] == "test" and metrics["calibration"]["temperature"] > 0


def test_tensorboard_logs_go_into_the_run_dir(tiny_data, tmp_path):
    run_dir = tmp_path / "run"
    cli_run("train", "baseline", "--data", tiny_data, *TINY, "--run-dir", run_dir, "--tensorboard", "-q")
    events = list((run_dir / "tensorboard" / "head").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} == {"train", "validation"}
    assert all(p.stat().st_size > 0 for p in events)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["tensorboard"] is True


def test_progress_lines_and_quiet(tmp_path):
    out = io.StringIO()
    with Progress("decoding train", 3, stream=out) as bar:
        bar.advance(2)
        bar.advance(1)
    assert re.fullmatch(r"decoding train: 3/3 images in \d+\.\ds(, \d+/s)?\n", out.getvalue())
    silent = io.StringIO()
    with Progress("decoding", 3, enabled=False, stream=silent) as bar:
        bar.advance(3)
    assert silent.getvalue() == ""


def test_progress_on_a_terminal_draws_a_bar_then_leaves_one_line():
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    screen = Terminal()
    with Progress("extracting", 40, stream=screen) as bar:
        for _ in range(4):
            bar.advance(10)
            time.sleep(0.15)  # rich redraws ten times a second
    drawn = screen.getvalue()
    assert "extracting" in drawn and "/40" in drawn and "━" in drawn  # the live bar
    assert re.search(r"extracting: 40/40 images in \d+\.\ds, \d+/s\n$", drawn)


def test_train_reports_decoding_progress_unless_quiet(tmp_path, monkeypatch):
    from imagefactory import make_image_folder
    data = make_image_folder(tmp_path / "fresh", n_train=6, n_val=4, size=36)  # not decoded before
    result = cli_run("train", "baseline", "--data", data, *TINY, "--run-dir", tmp_path / "loud")
    assert re.search(r"decoding train: 12/12 images in", result.output)
    monkeypatch.setenv("CATDOG_ZOO_CACHE", str(tmp_path / "other-cache"))  # decode again, quietly
    quiet = cli_run("train", "baseline", "--data", data, *TINY, "--run-dir", tmp_path / "quiet", "-q")
    assert quiet.stdout == f"Run saved to {tmp_path / 'quiet'}\n"  # no progress, only where the run went
    assert "decoding" not in quiet.stderr and "too few" in quiet.stderr  # warnings are not progress


# -- compare ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_runs(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for model in ("baseline", "dropout"):
        catdog_zoo.train(model, data=str(tiny_data), epochs=2, image_size=40, batch_size=8,
                         run_dir=str(root / "sweep" / model), quiet=True)
    return root


def test_compare_ranks_runs_by_validation_accuracy(two_runs, tmp_path):
    rows = json.loads(cli_run("compare", "--runs-dir", two_runs, "--json").stdout)  # warnings go to stderr
    assert {r["model"] for r in rows} == {"baseline", "dropout"}
    assert [r["rank"] for r in rows] == [1, 2]
    keys = [(r["val_accuracy"], r["test_accuracy"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    for r in rows:
        m = json.loads((two_runs / "sweep" / r["model"] / "metrics.json").read_text())
        assert r["val_accuracy"] == m["val_accuracy"] and r["params"] == m["num_params"]
        assert r["overfit_gap"] == pytest.approx(m["train_accuracy"] - m["val_accuracy"], abs=1e-4)
        assert r["train_seconds"] == m["train_seconds"] and r["run"].endswith(r["model"])
    plot = tmp_path / "curves.png"
    markdown = cli_run("compare", two_runs / "sweep" / "dropout", two_runs / "sweep" / "baseline", "--markdown",
                       "--plot", plot).output
    lines = markdown.strip().splitlines()
    assert lines[0].startswith("| # | model | val acc (95% CI) | test acc (95% CI) | train-val gap |")
    assert len([line for line in lines if line.startswith("| 1 |") or line.startswith("| 2 |")]) == 2
    assert png_size(plot)[0] > 300


def test_compare_errors_and_unfinished_runs(two_runs, tmp_path, tiny_run):
    unfinished = two_runs / "unfinished"
    unfinished.mkdir(exist_ok=True)
    (unfinished / "config.yaml").write_text("model: baseline\n")
    result = cli_run("compare", "--runs-dir", two_runs, ok=False)
    assert result.exit_code == 0 and "unfinished; left out" in result.output
    bad = cli_run("compare", unfinished, ok=False)
    assert bad.exit_code == 1 and f"{unfinished} is not a finished run" in bad.output
    empty = cli_run("compare", "--runs-dir", tmp_path, ok=False)
    assert empty.exit_code == 1 and "no finished runs found" in empty.output


# -- the zoo sweep ----------------------------------------------------------------------------

def test_zoo_trains_matching_models_then_keeps_them(tiny_data, tmp_path):
    runs = tmp_path / "zoo"
    first = cli_run("zoo", "dropout*", "--epochs", 1, "--data", tiny_data, "--runs-dir", runs, "-q")
    assert "dropout: training into" in first.output and "dropout_heavy: training into" in first.output
    board = first.stdout.split("\n\n")[-1]  # the table; warnings (tiny splits) go to stderr
    assert board.splitlines()[0].split()[:3] == ["#", "model", "val"]
    assert {line.split()[1] for line in board.strip().splitlines()[1:]} == {"dropout", "dropout_heavy"}
    stamps = {m: (runs / m / "model.keras").stat().st_mtime_ns for m in ("dropout", "dropout_heavy")}
    again = json.loads(cli_run("zoo", "dropout*", "--epochs", 1, "--data", tiny_data, "--runs-dir", runs,
                               "--json").stdout)
    assert {r["model"] for r in again} == {"dropout", "dropout_heavy"}
    assert {m: (runs / m / "model.keras").stat().st_mtime_ns for m in stamps} == stamps  # not retrained
    other = cli_run("zoo", "dropout", "--epochs", 3, "--data", tiny_data, "--runs-dir", runs, ok=False)
    assert other.exit_code == 1 and "made with epochs=1, not 3; choose another --runs-dir" in other.output


def test_zoo_resumes_an_interrupted_model_and_goes_on_after_a_failure(tiny_data, tmp_path, monkeypatch):
    runs = tmp_path / "zoo"
    real_save = finish.save_model

    def no_space(model, path):
        raise catdog_zoo.ZooError("cannot write model.keras: no space left on the device")
    monkeypatch.setattr(finish, "save_model", no_space)
    stopped = cli_run("zoo", "baseline", "--epochs", 2, "--data", tiny_data, "--runs-dir", runs, "-q", ok=False)
    assert stopped.exit_code == 1 and "baseline: failed: cannot write model.keras" in stopped.output
    assert (runs / "baseline" / "checkpoints").is_dir() and not (runs / "baseline" / "metrics.json").exists()
    monkeypatch.setattr(finish, "save_model", real_save)
    (runs / "dropout").mkdir()
    (runs / "dropout" / "notes.txt").write_text("mine")  # a folder the sweep must not touch
    result = cli_run("zoo", "[bd][ar][so]*", "--epochs", 2, "--data", tiny_data, "--runs-dir", runs, "-q", ok=False)
    assert "baseline: resuming" in result.output
    assert "dropout: failed: run directory" in result.output and (runs / "dropout" / "notes.txt").read_text() == "mine"
    assert result.exit_code == 1
    metrics = json.loads((runs / "baseline" / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and len((runs / "baseline" / "history.csv").read_text().splitlines()) == 3


# -- predict --out, --threshold -------------------------------------------------------------

def test_predict_writes_csv_with_probabilities(tiny_run, tiny_data, tmp_path):
    out = tmp_path / "preds" / "p.csv"
    cli_run("predict", tiny_run, tiny_data / "validation", "--out", out)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and list(rows[0]) == ["path", "label", "probability", "p_cats", "p_dogs", "rejected",
                                                 "ood_score"]
    for r in rows:
        assert r["rejected"] == "false" and r["ood_score"] == ""  # a scratch CNN cannot reject
        p = {"cats": float(r["p_cats"]), "dogs": float(r["p_dogs"])}
        assert p["cats"] + p["dogs"] == pytest.approx(1, abs=1e-5)
        assert r["label"] == max(p, key=p.get) and float(r["probability"]) == pytest.approx(max(p.values()), abs=1e-6)


def test_threshold_moves_the_decision(tiny_data, tmp_path):
    # A barely trained model, so its probabilities spread out instead of sitting at 0 and 1.
    soft = catdog_zoo.train("baseline", data=str(tiny_data), epochs=1, image_size=40, batch_size=8,
                            learning_rate=1e-6, run_dir=str(tmp_path / "soft"), quiet=True).run_dir
    folder = [tiny_data / "validation"]
    dogs = sorted({r["probabilities"]["dogs"] for r in catdog_zoo.predict(soft, folder)})
    everything = catdog_zoo.predict(soft, folder, threshold=0.0)
    assert {r["label"] for r in everything} == {"dogs"}
    assert all(r["probability"] == r["probabilities"]["dogs"] for r in everything)
    assert len(dogs) > 2
    dogs_per_image = [r["probabilities"]["dogs"] for r in everything]
    for low, high in zip(dogs, dogs[1:]):  # every cut between two neighbouring probabilities
        threshold = (low + high) / 2
        labelled = catdog_zoo.predict(soft, folder, threshold=threshold)
        assert [r["label"] == "dogs" for r in labelled] == [r["probabilities"]["dogs"] >= threshold
                                                            for r in labelled]
        assert sum(r["label"] == "dogs" for r in labelled) == sum(p >= threshold for p in dogs_per_image)
    bad = cli_run("predict", soft, tiny_data / "validation", "--threshold", 2, ok=False)
    assert bad.exit_code == 2 and "--threshold" in bad.output


# -- export -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def augmenting_run(tiny_data, tmp_path_factory):
    """A model with Random* layers: an export must leave them out (TFLite has no such ops)."""
    run_dir = tmp_path_factory.mktemp("aug") / "run"
    catdog_zoo.train("preprocess", data=str(tiny_data), epochs=1, image_size=40, batch_size=8,
                     run_dir=str(run_dir), quiet=True)
    return run_dir


def test_tflite_export_matches_the_keras_model(augmenting_run, tmp_path):
    out = tmp_path / "model.tflite"
    report = json.loads(cli_run("export", augmenting_run, "--format", "tflite", "--out", out, "--json").output)
    assert report["parity_ok"] and report["max_probability_difference"] < 1e-3 and report["quantize"] == "none"
    assert report["parity_split"] == "test" and report["parity_images"] == 4 and report["same_label_fraction"] == 1
    assert report["accuracy_export"] == report["accuracy_keras"] and report["size_bytes"] == out.stat().st_size
    assert json.loads((tmp_path / "model.tflite.export.json").read_text()) == report
    assert (tmp_path / "model.tflite.labels.txt").read_text() == "cats\ndogs\n"
    again = cli_run("export", augmenting_run, "--format", "tflite", "--out", out, ok=False)
    assert again.exit_code == 1 and "exists; pass --overwrite" in again.output
    cli_run("export", augmenting_run, "--format", "tflite", "--out", out, "--overwrite")
    assert not list(tmp_path.glob(".*"))  # no staging leftovers


def test_saved_model_goes_into_numbered_versions_as_tf_serving_expects(augmenting_run, tmp_path):
    base = tmp_path / "serving" / "catdog"
    first = json.loads(cli_run("export", augmenting_run, "--format", "saved_model", "--out", base, "--json").output)
    assert first["path"] == str(base / "1") and first["parity_ok"] and (base / "1" / "saved_model.pb").is_file()
    assert (base / "1" / "labels.txt").read_text() == "cats\ndogs\n"
    second = json.loads(cli_run("export", augmenting_run, "--format", "saved_model", "--out", base, "--json").output)
    assert second["path"] == str(base / "2")  # a new version beside the old one: TF Serving moves to it
    taken = cli_run("export", augmenting_run, "--format", "saved_model", "--out", base, "--version", 1, ok=False)
    assert taken.exit_code == 1 and "exists; pass --overwrite" in taken.output
    cli_run("export", augmenting_run, "--format", "saved_model", "--out", base, "--version", 1, "--overwrite")
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) == [
        "1", "1.export.json", "2", "2.export.json"]
    wrong = cli_run("export", augmenting_run, "--format", "tflite", "--version", 3, ok=False)
    assert wrong.exit_code == 2 and "--version applies to --format saved_model only" in wrong.output


def test_serving_signatures_give_probabilities_and_class_names_from_pixels_or_encoded_files(tiny_run, tiny_data,
                                                                                             tmp_path):
    """What TF Serving calls: ``serving_default`` on pixels and ``serve_image_bytes`` on the files' bytes give
    model.keras' probabilities for the images as training decodes them."""
    import tensorflow as tf

    from catdog_zoo import load_model
    from catdog_zoo.data.pixels import decode_file
    from catdog_zoo.models.heads import probabilities
    cli_run("export", tiny_run, "--format", "saved_model", "--out", tmp_path / "m")
    served = tf.saved_model.load(str(tmp_path / "m" / "1"))
    assert {"serving_default", "serve_image_bytes", "serve"} <= set(served.signatures)
    files = sorted((tiny_data / "validation").rglob("*.jpg"))[::4]
    pixels = np.stack([decode_file(str(f), (40, 40)) for f in files]).astype("float32")
    expected = probabilities(load_model(tiny_run).predict_on_batch(pixels))
    by_pixels = served.signatures["serving_default"](images=tf.constant(pixels))
    by_bytes = served.signatures["serve_image_bytes"](image_bytes=tf.constant([f.read_bytes() for f in files]))
    for answer in (by_pixels, by_bytes):
        np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-5)
        assert [n.decode() for n in answer["class_name"].numpy()] == [["cats", "dogs"][i] for i in
                                                                       expected.argmax(1)]
        assert list(answer["class_index"].numpy()) == list(expected.argmax(1))
    from test_trust import png_bomb
    bomb = png_bomb(tmp_path / "bomb.png", 23000, 23000).read_bytes()  # 1.6 GB of pixels from a few KB
    with pytest.raises(tf.errors.InvalidArgumentError, match="more pixels than the limit"):
        served.signatures["serve_image_bytes"](image_bytes=tf.constant([bomb]))


@pytest.mark.parametrize("quantize", ["dynamic", "float16", "int8"])
def test_quantized_tflite_exports_are_smaller_and_judged_by_accuracy(tiny_run, tmp_path, quantize):
    float_report = json.loads(cli_run("export", tiny_run, "--format", "tflite", "--out", tmp_path / "f.tflite",
                                      "--json").output)
    result = cli_run("export", tiny_run, "--format", "tflite", "--quantize", quantize, "--out", tmp_path / "q.tflite")
    report = json.loads((tmp_path / "q.tflite.export.json").read_text())
    assert report["quantize"] == quantize and report["parity_ok"] is None  # meant to differ a little
    assert report["size_bytes"] < float_report["size_bytes"] * (0.6 if quantize == "float16" else 0.35)
    assert report["same_label_fraction"] >= 0.75 and abs(report["accuracy_export"] - report["accuracy_keras"]) <= 0.25
    assert f"accuracy on 4 test images: export {report['accuracy_export']:.2%}, model.keras" in result.output
    images = np.random.default_rng(1).uniform(0, 255, (2, 40, 40, 3)).astype("float32")
    from catdog_zoo.runs.export import runner
    logits = runner(tmp_path / "q.tflite", "tflite")(images)
    assert logits.shape == runner(tmp_path / "f.tflite", "tflite")(images).shape and np.isfinite(logits).all()
    bad = cli_run("export", tiny_run, "--format", "saved_model", "--quantize", quantize, ok=False)
    assert bad.exit_code == 2 and "--quantize applies to --format tflite only" in bad.output


def test_exported_tflite_runs_on_new_images(augmenting_run, tmp_path):
    from catdog_zoo import load_model
    from catdog_zoo.runs.export import runner
    cli_run("export", augmenting_run, "--format", "tflite", "--out", tmp_path / "m.tflite")
    images = np.random.default_rng(1).uniform(0, 255, (3, 40, 40, 3)).astype("float32")
    expected = load_model(augmenting_run).predict_on_batch(images)
    np.testing.assert_allclose(runner(tmp_path / "m.tflite", "tflite")(images), expected, atol=1e-4)


# -- augment-preview --------------------------------------------------------------------------

def test_augment_preview_uses_the_models_own_layers(tiny_data, tmp_path):
    from catdog_zoo.models.augment import augmentation_layers
    from catdog_zoo.plugins import get_zoo
    layers = augmentation_layers(get_zoo().models.get("preprocess").build(2, (40, 40), weights=None))
    assert [type(layer).__name__ for layer in layers] == ["RandomFlip", "RandomRotation"]
    assert layers[1].get_config()["factor"] in (0.4, (-0.4, 0.4), [-0.4, 0.4])
    out = tmp_path / "aug.png"
    result = cli_run("augment-preview", "augmentation", "--data", tiny_data, "--out", out, "--copies", 3)
    assert "1 original + 3 augmented copies" in result.output
    width, height = png_size(out)
    assert width > height > 100
    none = cli_run("augment-preview", "baseline", "--data", tiny_data, "--out", tmp_path / "x.png", ok=False)
    assert none.exit_code == 1 and "model 'baseline' has no augmentation layers" in none.output
    assert not (tmp_path / "x.png").exists()


def test_outputs_that_cannot_be_written_are_one_line_errors(tiny_run, tiny_data, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    for args in (["predict", tiny_run, tiny_data / "validation", "--out", blocked / "p.csv"],
                 ["compare", tiny_run, "--plot", blocked / "c.png"],
                 ["augment-preview", "augmentation", "--data", tiny_data, "--out", blocked / "a.png"]):
        result = cli_run(*args, ok=False)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.splitlines()[-1].startswith(f"Error: cannot write {blocked}/"), result.output
    assert blocked.read_text() == "not a folder"
    folder = cli_run("predict", tiny_run, tiny_data / "validation", "--out", tmp_path, ok=False)
    assert folder.exit_code == 2 and "is a directory" in folder.output


def test_three_classes_report_predict_and_export(tmp_path):
    from imagefactory import make_image_folder
    data = make_image_folder(tmp_path / "three", classes=("ants", "bees", "wasps"), n_train=8, n_val=6, size=36)
    run_dir = tmp_path / "run"
    metrics = catdog_zoo.train("augmentation", data=str(data), epochs=2, image_size=36, batch_size=8,
                               run_dir=str(run_dir), quiet=True, test_fraction=0.5).metrics
    matrix = np.array(metrics["confusion_matrix"]["matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == metrics["split_sizes"]["test"] == 9
    assert png_size(run_dir / "confusion_matrix.png")[0] > 200 and (run_dir / "report.html").stat().st_size > 10_000
    curves = metrics["calibration"]["curves"]
    assert list(curves) == ["ants", "bees", "wasps"] and png_size(run_dir / "pr_roc.png")[0] > 300
    assert sum(c["positives"] for c in curves.values()) == 9 and metrics["calibration"]["temperature"] > 0
    assert "predict --threshold</code> applies to two-class models only" in (run_dir / "report.html").read_text()
    results = catdog_zoo.predict(run_dir, [data / "validation"])
    assert {r["label"] for r in results} <= {"ants", "bees", "wasps"}
    assert all(sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-4) for r in results)
    bad = cli_run("predict", run_dir, data / "validation", "--threshold", 0.5, ok=False)
    assert bad.exit_code == 1 and "--threshold applies to two-class models" in bad.output
    report = json.loads(cli_run("export", run_dir, "--format", "tflite", "--json").output)
    assert report["parity_ok"] and report["class_names"] == ["ants", "bees", "wasps"]


def test_compare_shows_the_data_and_warns_about_what_makes_numbers_incomparable(tiny_run, tmp_path):
    import shutil
    collapsed = tmp_path / "collapsed"
    shutil.copytree(tiny_run, collapsed)
    metrics = json.loads((collapsed / "metrics.json").read_text())
    assert metrics["data_fingerprint"] and metrics["majority_baseline"] == 0.5
    metrics.update(val_accuracy=0.5, data_fingerprint="0" * 16)  # a model stuck on one class, other images
    (collapsed / "metrics.json").write_text(json.dumps(metrics))
    result = cli_run("compare", tiny_run, collapsed)
    assert "data val/test" in result.output and "(at baseline)" in result.output
    sizes = metrics["split_sizes"]
    assert f"{metrics['data_fingerprint'][:8]} {sizes['validation']}/{sizes['test']}" in result.output
    assert "2 different sets of images" in result.output
    assert "collapsed: validation accuracy 50.00% is at or below the majority-class baseline 50.00%" in result.output
    assert f"the validation and test splits have {sizes['validation']} and {sizes['test']} images" in result.output
    assert result.output.count("the validation and test splits have") == 1  # said once for both runs
    assert f"{tiny_run.name}, collapsed: the validation and test splits" in result.output
    rows = json.loads(cli_run("compare", tiny_run, collapsed, "--json", ok=False).stdout)
    assert [r["at_baseline"] for r in rows] == [False, True]


def test_a_run_no_better_than_the_commonest_class_is_told_at_train_and_in_its_report(tmp_path):
    """Both classes drawn alike (nothing to learn), most photos dogs: no model beats always answering "dogs",
    and the run must say so, not leave its accuracy to be read as skill."""
    from imagefactory import write_images
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for split, cats, dogs in (("train", 4, 12), ("validation", 2, 10)):
        write_images(data / split / "cats", 1, cats, 32, rng)  # label 1's colour for both classes
        write_images(data / split / "dogs", 1, dogs, 32, rng)
    result = cli_run("train", "baseline", "--data", data, "--epochs", 1, "--image-size", 32, "--learning-rate", "1e-9",
                     "--run-dir", tmp_path / "run", "-q")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["majority_baseline"] >= 0.75 and metrics["val_accuracy"] <= metrics["majority_baseline"]
    assert f"is at or below the majority-class baseline {metrics['majority_baseline']:.2%}" in result.output
    assert "At the baseline: validation accuracy" in (tmp_path / "run" / "report.html").read_text()


# -- lr-find ----------------------------------------------------------------------------------

def test_lr_find_sweeps_the_rate_plots_the_loss_and_suggests_a_rate(tiny_data, tmp_path):
    out = tmp_path / "lr.png"
    found = json.loads(cli_run("lr-find", "baseline", "--data", tiny_data, "--image-size", 40, "--batch-size", 8,
                               "--steps", 30, "--start", 1e-5, "--end", 1e3, "--out", out, "--json").stdout)
    rates = found["rates"]
    assert found["stage"] == "the whole model, on images" and found["plot"] == str(out) and png_size(out)[0] > 300
    assert rates[0] == pytest.approx(1e-5) and all(b > a for a, b in zip(rates, rates[1:]))
    assert len(found["losses"]) == len(rates) <= 30
    # A rate of 1000 destroys a from-scratch CNN: the sweep ends on a diverging loss, before the last step
    # or at it, and the suggestion lies before it (tests/test_lr_find.py: the rules themselves).
    assert max(found["smoothed"][-3:]) > min(found["smoothed"])
    assert found["suggested"] is None or found["suggested"] < rates[-1]
    assert not list(tmp_path.glob("*.keras")) and len(list(tmp_path.iterdir())) == 1  # only the plot
    bad = cli_run("lr-find", "baseline", "--start", 1, "--end", 0.1, ok=False)
    assert bad.exit_code == 2 and "--start 1 must be below --end 0.1" in bad.output

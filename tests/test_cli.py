"""Every CLI command end to end on tiny generated images."""

import csv
import json

import pytest
from conftest import cli_run
import yaml
from PIL import Image



run = cli_run


def test_help_teaches_the_workflow():
    out = run("--help").output
    for command in ("models", "plugins", "info", "data", "train", "evaluate", "predict", "compare", "zoo", "export",
                    "augment-preview"):
        assert command in out
    assert "catdog-zoo data stats" in out
    assert "--weights" in run("train", "--help").output


def test_models_table_json_and_pattern():
    table = run("models", "--no-params").output
    assert "mobilenet_v2" in table and "catdog-zoo-dropout" in table
    listed = json.loads(run("models", "drop*", "--json").output)
    assert [m["name"] for m in listed] == ["dropout", "dropout_heavy"]
    assert listed[0]["plugin"] == "catdog-zoo-dropout" and listed[0]["summary"]
    assert listed[0]["params"] == 5_337_250 and "dropout" in listed[0]["tags"]
    assert run("models", "nothing*").output == "No models match.\n"


def test_plugins_text_lists_models_and_hooks():
    out = run("plugins").output
    assert "mobilenet_v2 (catdog-zoo-mobilenet-v2 0.1.0) [ok]" in out
    assert "hooks: register_models" in out and "datasets: cats_and_dogs_filtered" in out


def test_info_shows_spec_and_layer_summary():
    out = run("info", "preprocess").output
    assert "plugin:          catdog-zoo-preprocess" in out and "learning_rate=0.001" in out
    assert "flops:           213.0M per image at 160x160" in out
    assert "rescaling" in out.lower() and "5,337,250" in out
    spec = json.loads(run("info", "mobilenet_v2", "--json").output)
    assert spec["pretrained"] == "imagenet" and spec["defaults"]["image_size"] == [224, 224]


def test_unknown_model_is_one_line_exit_2():
    result = run("info", "mobilenet", ok=False)
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "unknown model 'mobilenet'" in result.output


def test_data_stats(tiny_data):
    stats = json.loads(run("data", "stats", "--data", tiny_data, "--json").output)
    assert stats["counts"]["train"] == {"cats": 16, "dogs": 16}
    assert stats["totals"] == {"train": 32, "validation": 16, "test": 4}
    assert stats["majority_baseline"] == 0.5
    text = run("data", "stats", "--data", tiny_data).output
    assert "majority-class baseline (validation accuracy to beat): 50.0%" in text


def test_data_stats_missing_folder(tmp_path):
    result = run("data", "stats", "--data", tmp_path / "nope", ok=False)
    assert result.exit_code == 2 and "data folder not found" in result.output and "nope" in result.output


def test_data_show_writes_a_grid_png(tiny_data, tmp_path):
    out = tmp_path / "grid.png"
    assert "2 rows x 3 images" in run("data", "show", "--data", tiny_data, "--out", out).output
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width > img.height  # 3 columns, 2 rows
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_train_writes_a_complete_run_dir(tiny_data, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 2\nbatch_size: 8\nlearning_rate: 1e-3\n")
    run_dir = tmp_path / "run"
    out = run("train", "dropout", "--data", tiny_data, "--config", config, "--image-size", 40, "--epochs", 3,
              "--seed", 5, "--run-dir", run_dir).output
    assert "Done in" in out
    assert sorted(p.name for p in run_dir.iterdir()) == ["calibration.png", "config.yaml", "confusion_matrix.png",
                                                         "errors.png", "history.csv", "learning_curves.png",
                                                         "metrics.json", "model.keras", "pr_roc.png", "report.html"]
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (cfg["epochs"], cfg["batch_size"], cfg["seed"], cfg["image_size"]) == (3, 8, 5, [40, 40])
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and {"loss", "val_accuracy"} <= set(rows[0])
    m = json.loads((run_dir / "metrics.json").read_text())
    for key in ("model", "seed", "epochs", "val_accuracy", "val_loss", "test_accuracy", "train_seconds",
                "num_params", "versions"):
        assert m[key] is not None, key
    assert m["model"] == "dropout" and m["epochs"] == 3 and m["versions"]["keras"].startswith("3.")
    assert abs(float(rows[-1]["val_accuracy"]) - m["val_accuracy"]) < 1e-4


def test_train_refuses_a_non_empty_run_dir_and_bad_flags(tiny_data, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run("train", "baseline", "--data", tiny_data, "--run-dir", tmp_path, ok=False)
    assert result.exit_code == 2 and "not empty" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    result = run("train", "baseline", "--data", tiny_data, "--epochs", 0, "--run-dir", tmp_path / "r", ok=False)
    assert result.exit_code == 2 and "epochs must be >= 1" in result.output and not (tmp_path / "r").exists()
    result = run("train", "baseline", "--weights", tmp_path / "w.h5", "--data", tiny_data, ok=False)
    assert result.exit_code == 2 and "no pretrained weights" in result.output


def test_evaluate_matches_the_recorded_metrics(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    val = json.loads(run("evaluate", tiny_run, "--json").output)
    assert val["accuracy"] == pytest.approx(metrics["val_accuracy"], abs=1e-6)
    assert val["loss"] == pytest.approx(metrics["val_loss"], rel=1e-4)
    test = json.loads(run("evaluate", tiny_run, "--split", "test", "--json").output)
    assert test["num_images"] == 4 and test["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)


def test_evaluate_errors(tmp_path, tiny_run):
    result = run("evaluate", tmp_path, ok=False)
    assert result.exit_code == 1 and "not a finished run" in result.output
    other = tmp_path / "other"
    from imagefactory import make_image_folder
    make_image_folder(other, classes=("ants", "bees"), n_train=2, n_val=2, size=16)
    result = run("evaluate", tiny_run, "--data", other, ok=False)
    assert "has no class folder 'cats'" in result.output and "the run's classes: cats, dogs" in result.output


def test_predict_folder_recursively_and_files(tiny_run, tiny_data):
    results = json.loads(run("predict", tiny_run, tiny_data / "validation", "--json").stdout)
    assert len(results) == 20
    assert {tuple(sorted(r)) for r in results} == {("label", "ood_score", "path", "probabilities", "probability",
                                                    "rejected")}
    assert all(0.5 <= r["probability"] <= 1.0 for r in results)
    # The colour-coded classes are learnt in a few epochs: most labels match their folder.
    right = sum(r["label"] in r["path"].split("/")[-2] for r in results)
    assert right >= 16
    one = tiny_data / "validation" / "cats" / "img_000.jpg"
    text = run("predict", tiny_run, one).stdout
    assert text.endswith(f"{one}\n") and text.split("\t")[0] in ("cats", "dogs")


def test_predict_errors(tiny_run, tmp_path):
    result = run("predict", tiny_run, tmp_path / "missing.jpg", ok=False)
    assert result.exit_code == 1 and "no such file or folder" in result.output
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    result = run("predict", tiny_run, bad, ok=False)
    assert result.exit_code == 1 and "not an image" in result.output and "bad.jpg" in result.output


def test_same_seed_gives_same_run(tiny_data, tmp_path):
    def train(seed, name):
        run("train", "baseline", "--data", tiny_data, "--epochs", 2, "--image-size", 32, "--batch-size", 8,
            "--seed", seed, "--run-dir", tmp_path / name, "-q")
        return (tmp_path / name / "history.csv").read_text()
    first = train(3, "a")
    assert train(3, "b") == first
    assert train(4, "c") != first


def test_predict_refuses_a_second_run_directory_among_its_images(tiny_run, tmp_path):
    result = run("predict", tiny_run, tiny_run, ok=False)
    assert result.exit_code == 1 and f"{tiny_run} is a run directory, not images" in result.output


def test_a_runs_own_config_repeats_the_run_without_naming_the_model(tiny_run, tmp_path):
    again = tmp_path / "again"
    run("train", "--config", tiny_run / "config.yaml", "--run-dir", again, "-q")
    first, second = (json.loads((d / "metrics.json").read_text()) for d in (tiny_run, again))
    assert second["model"] == "baseline" and second["val_accuracy"] == first["val_accuracy"]
    assert second["strategy"]["weights_sha256"] == first["strategy"]["weights_sha256"]  # the same run again


def test_train_json_prints_only_the_metrics_and_quiet_still_says_where(tiny_data, tmp_path):
    result = run("train", "baseline", "--data", tiny_data, "--epochs", 1, "--image-size", 40, "--run-dir",
                 tmp_path / "j", "--json")
    metrics = json.loads(result.stdout)
    assert metrics == json.loads((tmp_path / "j" / "metrics.json").read_text())
    quiet = run("train", "baseline", "--data", tiny_data, "--epochs", 1, "--image-size", 40, "--run-dir",
                tmp_path / "q", "-q")
    assert quiet.stdout.strip() == f"Run saved to {tmp_path / 'q'}"

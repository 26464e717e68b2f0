"""Run folders that move (another folder, another machine), new photos scored whole, small data told with
confidence intervals (docs/portable-runs.md)."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import cli_run
import yaml
from imagefactory import make_image_folder
from runfolders import copy_run, edit_config

from catdog_zoo.config import load_config_file
from catdog_zoo.data.splits import make_splits, small_splits_warning
from catdog_zoo.util.confidence import accuracy_interval, too_small, wilson_interval

TINY = ("--epochs", 2, "--image-size", 40, "--batch-size", 8)


run = cli_run


@pytest.fixture
def cwd(monkeypatch):
    def chdir(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.chdir(path)
        return path
    return chdir


# -- what a run records, and a config file's paths -------------------------------------------------------------

def test_a_config_files_paths_are_relative_to_its_folder_wherever_the_command_runs(tmp_path, cwd):
    project = tmp_path / "project"
    (project / "photos").mkdir(parents=True)
    (project / "exp.yaml").write_text("data: photos\nweights: ../w/backbone.h5\nrun_dir: runs/exp1\n")
    cwd(tmp_path / "somewhere" / "else")
    loaded = load_config_file(Path("../../project/exp.yaml"))
    assert loaded == {"data": str(project / "photos"), "weights": str(tmp_path / "w" / "backbone.h5"),
                      "run_dir": str(project / "runs" / "exp1")}
    (project / "named.yaml").write_text("data: cats_and_dogs_filtered\n")  # a data source's name stays a name
    assert load_config_file(project / "named.yaml") == {"data": "cats_and_dogs_filtered"}
    (project / "absolute.yaml").write_text(f"data: {tmp_path / 'x'}\n")
    assert load_config_file(project / "absolute.yaml") == {"data": str(tmp_path / "x")}


def test_a_config_naming_data_that_is_not_here_says_which_flag_to_pass(tiny_data, tmp_path):
    config = tmp_path / "shared.yaml"
    config.write_text(f"data: {tmp_path / 'on-my-laptop'}\nepochs: 1\n")
    result = run("train", "baseline", "--config", config, "--run-dir", tmp_path / "r", ok=False)
    assert result.exit_code == 2 and not (tmp_path / "r").exists()
    assert result.output.strip() == (f"Error: data folder {tmp_path / 'on-my-laptop'} named in {config} is not "
                                     "here: pass --data DIR")


def test_a_moved_run_evaluates_predicts_exports_and_repeats_from_anywhere(tiny_data, tmp_path, cwd):
    photos = tmp_path / "photos"
    shutil.copytree(tiny_data, photos)
    cwd(tmp_path / "project")
    run("train", "baseline", "--data", "../photos", *TINY, "--run-dir", "runs/first", "-q")
    first = tmp_path / "project" / "runs" / "first"
    recorded = yaml.safe_load((first / "config.yaml").read_text())
    assert recorded["data"] == str(photos) and recorded["run_dir"] == str(first)  # absolute: means the same anywhere
    metrics = json.loads((first / "metrics.json").read_text())

    copy_run(first, tmp_path / "elsewhere" / "moved")
    shutil.rmtree(first)
    cwd(tmp_path / "elsewhere" / "deeper")
    scored = json.loads(run("evaluate", "../moved", "--json").stdout)
    assert scored["accuracy"] == pytest.approx(metrics["val_accuracy"], abs=1e-6) and scored["own_data"] is True
    assert scored["split"] == "validation" and scored["num_images"] == metrics["split_sizes"]["validation"]
    labelled = json.loads(run("predict", "../moved", photos / "validation", "--json").stdout)
    assert len(labelled) == 20
    exported = json.loads(run("export", "../moved", "--format", "tflite", "--out", tmp_path / "m.tflite",
                              "--json").stdout)
    assert exported["parity_ok"] is True and exported["parity_split"] == "test"
    run("train", "--config", "../moved/config.yaml", "--run-dir", "../again", "-q")
    again = json.loads((tmp_path / "elsewhere" / "again" / "metrics.json").read_text())
    assert again["strategy"]["weights_sha256"] == metrics["strategy"]["weights_sha256"]  # the same run again

    photos.rename(tmp_path / "photos-now-here")  # the data moved too: say what to pass
    missing = run("evaluate", "../moved", ok=False)
    assert missing.exit_code == 2 and missing.output.strip() == (
        f"Error: data folder {photos} recorded in ../moved/config.yaml is not here: pass --data DIR")
    refused = run("train", "--config", "../moved/config.yaml", "--run-dir", "../again2", ok=False)
    assert refused.exit_code == 2 and "is not here: pass --data DIR" in refused.output
    found = json.loads(run("evaluate", "../moved", "--data", tmp_path / "photos-now-here", "--json").stdout)
    assert found["own_data"] is True and found["split"] == "validation"  # recognised by its fingerprint
    assert found["accuracy"] == pytest.approx(metrics["val_accuracy"], abs=1e-6)


def test_an_unfinished_run_resumes_with_its_data_where_it_is_now(tiny_data, tiny_run, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(tiny_run / "config.yaml", unfinished / "config.yaml")
    edit_config(unfinished, data=str(tmp_path / "gone"), epochs=1)
    refused = run("train", "--resume", unfinished, ok=False)
    assert refused.exit_code == 2 and refused.output.strip() == (
        f"Error: data folder {tmp_path / 'gone'} recorded in {unfinished / 'config.yaml'} is not here: pass --data DIR")
    assert "drop --epochs" in run("train", "--resume", unfinished, "--epochs", 3, ok=False).output
    run("train", "--resume", unfinished, "--data", tiny_data, "-q")
    assert yaml.safe_load((unfinished / "config.yaml").read_text())["data"] == str(tiny_data.resolve())
    assert json.loads(run("evaluate", unfinished, "--json").stdout)["own_data"] is True


# -- new photos ---------------------------------------------------------------------------------------------------

def test_evaluate_scores_every_image_of_a_folder_of_new_photos(tiny_run, tmp_path):
    new = make_image_folder(tmp_path / "new", n_train=9, n_val=0, layout="single", seed=7)
    result = run("evaluate", tiny_run, "--data", new)
    assert "Note: " in result.stderr and "is not the data baseline-tiny was trained on" in result.stderr
    assert result.stdout.startswith("all: accuracy ") and f"(18 images of {new}, new to the run)" in result.stdout
    assert "Warning: the folder has 18 images, too few for its accuracy to mean much" in result.stderr
    scored = json.loads(run("evaluate", tiny_run, "--data", new, "--json").stdout)
    assert scored["split"] == "all" and scored["num_images"] == 18 and scored["own_data"] is False
    assert sum(s["support"] for s in scored["per_class"].values()) == 18
    assert scored["interval"] == accuracy_interval(scored["accuracy"], 18)
    assert scored["interval"][0] <= scored["accuracy"] <= scored["interval"][1]
    one_split = json.loads(run("evaluate", tiny_run, "--data", new, "--split", "validation", "--json").stdout)
    assert one_split["split"] == "validation" and one_split["num_images"] == 4  # with the run's seed and fractions


@pytest.mark.parametrize("classes, message", [
    (("cats", "dogs", "zebras"), "class folder {new}/zebras is not one of the run's classes (the run's classes: "
                                 "cats, dogs); move it out of the folder to score the others"),
    (("birds", "cats"), "{new} has no class folder 'dogs' with images (the run's classes: cats, dogs)"),
])
def test_new_photos_need_the_runs_class_folders(tiny_run, tmp_path, classes, message):
    new = make_image_folder(tmp_path / "new", classes=classes, n_train=3, n_val=0, size=16, layout="single")
    result = run("evaluate", tiny_run, "--data", new, ok=False)
    assert result.exit_code == 1 and result.output.strip() == "Error: " + message.format(new=new)


# -- small data, told ---------------------------------------------------------------------------------------------

def test_wilson_intervals_match_the_published_values():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # Newcombe (1998), Wilson's method
    assert wilson_interval(4, 4) == pytest.approx((0.5101, 1.0), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(0, 0) is None and accuracy_interval(None, 10) is None
    assert accuracy_interval(0.99, 1000) == [0.9817, 0.9946]  # 800 validation images: a narrow interval
    assert too_small(99) and not too_small(100) and not too_small(0)


def test_a_single_folder_leaves_a_usable_test_split_and_says_how_to_get_more(tmp_path, tiny_data):
    pets = make_image_folder(tmp_path / "pets", n_train=55, n_val=5, size=16, layout="single")  # 60 per class
    splits = make_splits(pets)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (96, 12, 12)  # was 96/20/4
    assert splits.test_fraction == 0.5 and splits.test.counts(splits.class_names) == {"cats": 6, "dogs": 6}
    warning = small_splits_warning(splits, {"validation": 12, "test": 12})
    assert warning == ("the validation and test splits have 12 and 12 images, too few for their accuracy to mean "
                       "much (one image moves it by 8.3 points; a 95% interval is up to 49 points wide): add photos, "
                       "or hold out more with --val-fraction 0.4 --test-fraction 0.5 (here: 24 validation and 24 test "
                       "images, 72 to train on)")
    layout = make_splits(tiny_data)  # train/ and validation/ folders: a fifth of validation/, as always
    assert layout.test_fraction == 0.2 and len(layout.test) == 4
    assert small_splits_warning(layout, {"validation": 16, "test": 4}).endswith(
        "--test-fraction 0.5 (here: 10 validation and 10 test images, 32 to train on)")
    assert small_splits_warning(layout, {"validation": 800, "test": 200}) is None


def test_train_warns_of_small_splits_and_reports_intervals(tmp_path):
    pets = make_image_folder(tmp_path / "pets", n_train=15, n_val=5, layout="single")
    result = run("train", "baseline", "--data", pets, *TINY, "--run-dir", tmp_path / "run")
    assert "Warning: the validation and test splits have 4 and 4 images, too few for their accuracy" in result.stderr
    assert "hold out more with --val-fraction 0.4 --test-fraction 0.5" in result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["split_sizes"] == {"train": 32, "validation": 4, "test": 4}
    assert metrics["intervals"] == {"method": "wilson", "level": 0.95,
                                    "val_accuracy": accuracy_interval(metrics["val_accuracy"], 4),
                                    "test_accuracy": accuracy_interval(metrics["test_accuracy"], 4)}
    low, high = metrics["intervals"]["test_accuracy"]
    assert f"test_accuracy {metrics['test_accuracy']:.4f} (95% CI {low:.4f}-{high:.4f}, 4 images)" in result.stdout
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["test_fraction"] == 0.5
    page = (tmp_path / "run" / "report.html").read_text()
    assert '<p class="warn">Small data: the validation and test splits have 4 and 4 images' in page
    assert "hold out more with --val-fraction 0.4 --test-fraction 0.5" in page  # the flags, as train said
    assert f"95% CI {low * 100:.1f}-{high * 100:.1f}% of 4 images" in page
    board = run("compare", tmp_path / "run")
    assert f"({low * 100:.1f}-{high * 100:.1f})" in board.stdout
    assert "Warning: run: the validation and test splits have 4 and 4 images, too few" in board.stderr
    row = json.loads(run("compare", tmp_path / "run", "--json").stdout)[0]
    assert row["test_interval"] == [low, high]

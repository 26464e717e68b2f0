"""Output that reads right: what each command prints says what it means, fits the terminal, and is refused
early when it can only fail."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import cli_run, install_dist
from PIL import Image

import catdog_zoo
from catdog_zoo.runs.scores import per_class, score_text


# -- models: the table fits the terminal ------------------------------------------------------------

def test_models_fits_the_terminal_width_with_the_free_text_under_each_model(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # as a pipe sees it (pytest-xdist's workers set it)
    wide = cli_run("models", "--no-params").stdout.splitlines()  # not a terminal, no $COLUMNS: one row per line
    assert len(wide) == 1 + len(catdog_zoo.list_models()) and max(map(len, wide)) > 150
    assert cli_run("models", "--no-params", env={"COLUMNS": "250"}).stdout.splitlines() == wide  # it fits: as is
    narrow = cli_run("models", "--no-params", env={"COLUMNS": "100"}).stdout.splitlines()
    assert max(map(len, narrow)) <= 100 and narrow[0].split() == ["NAME", "PLUGIN", "PARAMS", "FLOPS", "INPUT",
                                                                   "WEIGHTS"]
    tags_at, summary_at = wide[0].index("TAGS"), wide[0].index("SUMMARY")
    for row in wide[1:]:  # every summary and tag is there, in order, under its model's row
        first = next(i for i, line in enumerate(narrow) if line.split()[:1] == row.split()[:1])
        assert narrow[first].split() == row[:tags_at].split()
        under = []
        for line in narrow[first + 1:]:
            if not line.startswith("  "):
                break
            under.append(line.strip())
        text = " ".join(under)
        assert text.startswith("summary: ") and " tags: " in text
        summary, tags = text[len("summary: "):].split(" tags: ")
        assert summary.split() == row[summary_at:].split() and tags.split() == row[tags_at:summary_at].split()


# -- predict: the label's probability, the threshold's decision, -q, early refusals ------------------

def test_predict_with_a_threshold_shows_what_decided_each_label(tiny_run, tiny_data):
    folder = tiny_data / "validation"
    answers = {r["path"]: r
               for r in json.loads(cli_run("predict", tiny_run, folder, "--threshold", 0.99, "--json").stdout)}
    lines = cli_run("predict", tiny_run, folder, "--threshold", 0.99).stdout.splitlines()
    assert len(lines) == len(answers) == 20
    for line in lines:
        label, probability, decided, path = line.split("\t")
        answer = answers[path]
        p_dogs = answer["probabilities"]["dogs"]
        assert label == ("dogs" if p_dogs >= 0.99 else "cats") == answer["label"]
        assert float(probability) == pytest.approx(answer["probabilities"][label], abs=1e-4)  # the label's own
        assert decided == f"dogs {p_dogs:.4f} {'>=' if p_dogs >= 0.99 else '<'} 0.99"
    plain = cli_run("predict", tiny_run, folder).stdout.splitlines()
    assert all(len(line.split("\t")) == 3 for line in plain)  # no threshold, no such column


def test_predict_quiet_prints_only_the_predictions(tiny_run, tiny_data, tmp_path):
    folder = tiny_data / "validation"
    loud = cli_run("predict", tiny_run, folder, "--out", tmp_path / "a.csv")
    assert "Wrote 20 predictions" in loud.stderr and "no 'unknown' answers" in loud.stderr
    quiet = cli_run("predict", tiny_run, folder, "--out", tmp_path / "b.csv", "-q")
    assert quiet.stderr == "" and quiet.stdout == loud.stdout
    assert (tmp_path / "b.csv").read_text() == (tmp_path / "a.csv").read_text()


CHECKS_TENSORFLOW = """
import sys
from catdog_zoo.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="catdog-zoo")
except SystemExit as exc:
    print(f"exit={exc.code} tensorflow={'tensorflow' in sys.modules}", file=sys.stderr)
"""


@pytest.mark.parametrize("args, message", [
    (["{run}", "{tmp}/missing.jpg"], "no such file or folder: {tmp}/missing.jpg"),
    (["{tmp}", "{run}/report.html"], "not a finished run"),
    (["{run}", "{tmp}/empty"], "no images"),
])
def test_predict_refuses_bad_inputs_before_tensorflow_loads(tiny_run, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.format(run=tiny_run, tmp=tmp_path) for a in args]
    done = subprocess.run([sys.executable, "-c", CHECKS_TENSORFLOW, "predict", *args], capture_output=True,
                          text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert message.format(tmp=tmp_path) in done.stderr
    assert "exit=1 tensorflow=False" in done.stderr, done.stderr


@pytest.mark.parametrize("command", [["evaluate"], ["export", "--format", "tflite"]])
def test_a_run_whose_data_is_gone_is_refused_before_tensorflow_loads(tiny_run, tmp_path, command):
    import shutil
    import yaml
    moved = tmp_path / "run"
    shutil.copytree(tiny_run, moved)
    config = yaml.safe_load((moved / "config.yaml").read_text())
    config["data"] = str(tmp_path / "gone")
    (moved / "config.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-c", CHECKS_TENSORFLOW, command[0], str(moved), *command[1:]],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert f"data folder {tmp_path / 'gone'} recorded in {moved / 'config.yaml'} is not here" in done.stderr
    assert "pass --data" in done.stderr and "tensorflow=False" in done.stderr and "exit=0" not in done.stderr, \
        done.stderr


# -- compare from / ---------------------------------------------------------------------------------

def test_compare_from_the_root_keeps_the_leading_slash(tiny_run, monkeypatch):
    monkeypatch.chdir(tiny_run.parent)
    assert f" {tiny_run.name}" in cli_run("compare", tiny_run).stdout.splitlines()[1]  # below the cwd: relative
    monkeypatch.chdir("/")
    row = cli_run("compare", tiny_run).stdout.splitlines()[1]
    assert row.endswith(str(tiny_run)) and str(tiny_run).startswith("/")


# -- per-class scores that do not exist are said so -------------------------------------------------

def test_a_class_never_predicted_has_an_undefined_precision_not_zero(tmp_path):
    scores = per_class([0, 0, 1, 1, 1], [0, 0, 0, 0, 0], ["cats", "dogs"])
    assert scores["dogs"] == {"precision": None, "recall": 0.0, "f1": 0.0, "support": 3}
    assert scores["cats"] == {"precision": 0.4, "recall": 1.0, "f1": pytest.approx(0.5714, abs=1e-4), "support": 2}
    assert score_text(scores["dogs"], "precision") == "undefined (never predicted)"
    assert score_text(scores["cats"], "precision", ".1%") == "40.0%"
    absent = per_class([0, 0], [0, 1], ["cats", "dogs"])["dogs"]  # predicted, but no image of it: no recall
    assert absent["recall"] is None and absent["precision"] == 0.0 and absent["f1"] == 0.0
    assert per_class([0], [0], ["cats", "dogs"])["dogs"]["f1"] is None
    # F1 is still the harmonic mean of precision and recall wherever both exist
    labels, predicted = np.random.default_rng(0).integers(0, 3, (2, 50))
    for s in per_class(labels, predicted, ["a", "b", "c"]).values():
        assert s["f1"] == pytest.approx(2 * s["precision"] * s["recall"] / (s["precision"] + s["recall"]), abs=2e-4)


def test_the_report_says_undefined_where_the_record_has_no_precision(tiny_run):
    from catdog_zoo.reports.run_report import render_html
    from catdog_zoo.runs.record import read_run
    config, record = read_run(tiny_run)
    record.per_class = per_class([0, 0, 1, 1], [0, 0, 0, 0], record.class_names)
    page = render_html(tiny_run, config.to_dict(), record)
    assert "<td>undefined (never predicted)</td>" in page and "<td>50.0%</td>" in page


# -- a run's report lists only the options its model reads ------------------------------------------

FROZEN_WITH_FLIP = """
    from catdog_zoo import ModelSpec, TrainingDefaults, hookimpl

    def build(num_classes, image_size, weights="init"):
        import keras
        from catdog_zoo import logit_units
        shape = tuple(image_size) + (3,)
        keras.utils.set_random_seed(3)
        backbone = keras.Sequential([keras.Input(shape), keras.layers.Conv2D(8, 3, strides=2, activation="relu")],
                                    name="backbone")
        backbone.trainable = False
        inputs = keras.Input(shape)
        x = keras.layers.RandomFlip("horizontal")(inputs)
        x = keras.layers.Rescaling(1 / 255)(x)
        x = keras.layers.GlobalAveragePooling2D()(backbone(x, training=False))
        return keras.Model(inputs, keras.layers.Dense(logit_units(num_classes))(x))

    @hookimpl
    def register_models(register):
        register(ModelSpec(name="flipnet", summary="frozen backbone after a flip", builder=build, pretrained="init",
                           frozen_backbone="backbone", defaults=TrainingDefaults(image_size=(32, 32))))
"""


@pytest.fixture
def flipnet(site):
    install_dist(site, "flipnet", "0.1", {"flipnet": "flipnet_mod"}, {"flipnet_mod": FROZEN_WITH_FLIP})


def configuration_keys(run_dir) -> set:
    page = (run_dir / "report.html").read_text()
    table = page[page.index("<h2>Configuration</h2>"):page.index("<h2>Versions</h2>")]
    return {cell.split("</th>")[0] for cell in table.split("<th>")[1:]}


def test_reports_list_the_backbone_options_only_for_a_frozen_backbone(tiny_run, tiny_data, tmp_path, flipnet):
    backbone_keys = {"feature_cache", "engine", "train_precision", "aug_views", "fine_tune_epochs", "fine_tune_at",
                     "fine_tune_learning_rate"}
    scratch = configuration_keys(tiny_run)
    assert not scratch & backbone_keys and {"epochs", "learning_rate", "decoded_cache", "seed"} <= scratch
    frozen = catdog_zoo.train("flipnet", data=str(tiny_data), epochs=1, batch_size=8, run_dir=str(tmp_path / "f"),
                              quiet=True).run_dir
    assert backbone_keys <= configuration_keys(frozen)


# -- augment-preview says when default training does not augment ------------------------------------

def test_augment_preview_says_a_frozen_backbone_trains_without_that_augmentation(tiny_data, tmp_path, flipnet,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    frozen = cli_run("augment-preview", "flipnet", "--data", tiny_data, "--copies", 1)
    assert "Wrote augment-preview.png" in frozen.stdout
    assert "'flipnet' trains by default on cached features of the photos as they are" in frozen.stderr
    assert "--aug-views K" in frozen.stderr
    scratch = cli_run("augment-preview", "augmentation", "--data", tiny_data, "--copies", 1, "--out", "aug.png")
    assert scratch.stderr == "" and (tmp_path / "aug.png").is_file()
    again = cli_run("augment-preview", "flipnet", "--data", tiny_data, ok=False)
    assert again.exit_code == 1 and "exists; pass --overwrite" in again.output


# -- data show: a default --out, photos in their own proportions ------------------------------------

def test_data_show_writes_a_default_file_keeps_proportions_and_never_overwrites(tmp_path, monkeypatch):
    data = tmp_path / "wide"
    for name, colour in (("cats", (230, 20, 20)), ("dogs", (20, 20, 230))):
        (data / name).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (80, 20), colour).save(data / name / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    assert "Wrote data-show.png (2 rows x 1 images)" in cli_run("data", "show", "--data", data, "--per-class", 1).stdout
    pixels = np.asarray(Image.open(tmp_path / "data-show.png").convert("RGB")).astype(int)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    rows, cols = np.nonzero(red)
    width, height = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    assert width / height == pytest.approx(4, rel=0.1)  # 80x20 shown as 80x20 is, not stretched to a square
    refused = cli_run("data", "show", "--data", data, ok=False)
    assert refused.exit_code == 1 and "exists; pass --overwrite" in refused.output


# -- data stats and data check count the same images ------------------------------------------------

def test_data_stats_counts_the_images_data_check_and_train_use(tmp_path):
    from imagefactory import make_image_folder
    data = make_image_folder(tmp_path / "messy", n_train=10, n_val=5, size=24)
    (data / "train" / "cats" / "empty.jpg").write_bytes(b"")
    (data / "train" / "dogs" / "notes.jpg").write_text("not a photo")
    good = (data / "validation" / "dogs" / "img_000.jpg").read_bytes()
    (data / "validation" / "dogs" / "cut.jpg").write_bytes(good[:len(good) // 3])
    stats = cli_run("data", "stats", "--data", data, "--json")
    counted = json.loads(stats.stdout)
    check = json.loads(cli_run("data", "check", "--data", data, "--json", ok=False).stdout)
    assert sum(counted["totals"].values()) == check["usable"] == check["files"] - 3 == 30
    assert counted["unusable_files"] == 3 and counted["counts"]["train"] == {"cats": 10, "dogs": 10}
    assert "Warning: skipped 3 file(s) that are not usable images" in stats.stderr  # train's own words
    text = cli_run("data", "stats", "--data", data).stdout
    assert "total  20     8           2" in text

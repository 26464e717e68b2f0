"""Real cats_and_dogs_filtered data and ImageNet weights, through the ordinary online code paths.

Each test runs the real ``catdog-zoo`` command in a fresh process whose KERAS_HOME is a temporary
cache seeded from ../shared (Keras reads KERAS_HOME once, at import), so ``keras.utils.get_file``
and ``weights="imagenet"`` find their files there instead of downloading. Select with ``-m realdata``.
"""

import json

import pytest
from conftest import zoo_subprocess

pytestmark = pytest.mark.realdata


def zoo(keras_home, *args):
    return zoo_subprocess(*args, env={"KERAS_HOME": str(keras_home)}).stdout


def test_default_source_is_fetched_into_the_keras_cache(keras_home):
    stats = json.loads(zoo(keras_home, "data", "stats", "--json"))
    assert stats["root"].startswith(str(keras_home))
    assert stats["counts"]["train"] == {"cats": 1000, "dogs": 1000}
    assert stats["totals"] == {"train": 2000, "validation": 800, "test": 200}
    assert stats["majority_baseline"] == 0.5


@pytest.fixture(scope="module")
def default_run(keras_home, tmp_path_factory):
    """The default model trained for two epochs on the real data: one run for the tests below (a training on
    3000 photos costs a minute of the suite)."""
    run_dir = tmp_path_factory.mktemp("realdata") / "run"
    zoo(keras_home, "train", "mobilenet_v2", "--epochs", 2, "--run-dir", run_dir)
    return run_dir


def test_mobilenet_v2_transfer_learning_reaches_95_percent_in_two_epochs(keras_home, default_run):
    run_dir = default_run
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["val_accuracy"] >= 0.95, m
    assert m["test_accuracy"] >= 0.90, m
    assert m["trainable_params"] == 1281 and m["num_params"] == 2_259_265
    evaluated = json.loads(zoo(keras_home, "evaluate", run_dir, "--split", "test", "--json"))
    assert evaluated["accuracy"] == pytest.approx(m["test_accuracy"], abs=1e-6)
    dogs = keras_home / "datasets" / "cats_and_dogs_extracted" / "cats_and_dogs_filtered" / "validation" / "dogs"
    predictions = json.loads(zoo(keras_home, "predict", run_dir, dogs, "--json"))
    assert len(predictions) == 500
    assert sum(p["label"] == "dogs" for p in predictions) >= 450
    # A float TFLite export answers like the Keras model on the whole test split.
    exported = json.loads(zoo(keras_home, "export", run_dir, "--format", "tflite", "--json"))
    assert exported["parity_images"] == 200 and exported["same_label_fraction"] == 1.0
    assert exported["max_probability_difference"] < 1e-3 and exported["parity_ok"]
    assert (run_dir / "export" / "model.tflite").stat().st_size > 8_000_000  # 2.26M float32 weights


def test_the_default_model_says_unknown_to_what_is_neither_cat_nor_dog(keras_home, default_run):
    """The operating point is set from the run's own validation photos; photos from another source judge it."""
    run_dir = default_run
    facts = json.loads((run_dir / "metrics.json").read_text())["rejection"]
    assert facts["available"] and facts["validation_rejected"] <= 0.01
    from conftest import SHARED
    things = json.loads(zoo(keras_home, "predict", run_dir, SHARED / "data" / "other_things", "--json"))
    pets = json.loads(zoo(keras_home, "predict", run_dir, SHARED / "data" / "other_pets", "--json"))
    assert sum(r["rejected"] for r in things) >= 0.9 * len(things)
    assert sum(not r["rejected"] for r in pets) >= 0.9 * len(pets)
    evaluated = json.loads(zoo(keras_home, "evaluate", run_dir, "--split", "test", "--json"))
    assert evaluated["rejection"]["rejected_fraction"] <= 0.02

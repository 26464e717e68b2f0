"""Real cats_and_dogs_filtered data and ImageNet weights, through the ordinary online code paths.

KERAS_HOME points at a temporary cache seeded from ../shared, so ``keras.utils.get_file`` and
``weights="imagenet"`` find their files there instead of downloading. Select with ``-m realdata``.
"""

import json

import pytest
from click.testing import CliRunner

import catdog_zoo
from catdog_zoo.cli import cli

pytestmark = pytest.mark.realdata


def test_default_source_is_fetched_into_the_keras_cache(keras_home):
    result = CliRunner().invoke(cli, ["data", "stats", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["root"].startswith(str(keras_home))
    assert stats["counts"]["train"] == {"cats": 1000, "dogs": 1000}
    assert stats["totals"] == {"train": 2000, "validation": 800, "test": 200}
    assert stats["majority_baseline"] == 0.5


def test_mobilenet_v2_transfer_learning_reaches_95_percent_in_two_epochs(keras_home, tmp_path):
    run = catdog_zoo.train("mobilenet_v2", epochs=2, run_dir=str(tmp_path / "run"), quiet=True)
    m = run.metrics
    assert m["val_accuracy"] >= 0.95, m
    assert m["test_accuracy"] >= 0.90, m
    assert m["trainable_params"] == 1281 and m["num_params"] == 2_259_265
    evaluated = catdog_zoo.evaluate(run.run_dir, split="test")
    assert evaluated["accuracy"] == pytest.approx(m["test_accuracy"], abs=1e-6)
    predictions = catdog_zoo.predict(run.run_dir, [str(keras_home / "datasets" / "cats_and_dogs_extracted" /
                                                       "cats_and_dogs_filtered" / "validation" / "dogs")])
    assert len(predictions) == 500
    assert sum(p["label"] == "dogs" for p in predictions) >= 450

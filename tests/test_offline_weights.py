"""Pretrained weights on a machine that cannot download them: checked before any image is decoded, one line
naming the exact file the Keras cache must hold (or --weights), and --weights for train, lr-find and zoo.

The test model fetches its "pretrained" weights as keras.applications do, through Keras' ``get_file``, from an
address where nothing listens (127.0.0.1 port 9): a download that fails at once, on any machine."""

import os
import subprocess
import sys

import pytest
from conftest import install_dist, our_lines, zoo_subprocess

from catdog_zoo.errors import ConfigError

FILE = "tinynet_no_top.weights.h5"
ORIGIN = f"http://127.0.0.1:9/{FILE}"

SOURCE = f"""
import time

from catdog_zoo import ModelSpec, TrainingDefaults, hookimpl, logit_units


def build(num_classes, image_size, weights="tinynet"):
    import keras
    inputs = keras.Input(tuple(image_size) + (3,))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(logit_units(num_classes))(x))
    if weights == "tinynet":
        time.sleep(1)  # a backbone takes a while to build before Keras asks for its weights (MobileNetV2: ~0.5 s)
        weights = keras.utils.get_file({FILE!r}, origin={ORIGIN!r}, cache_subdir="models")
    if weights:
        model.load_weights(weights)
    return model


@hookimpl
def register_models(register):
    for name in ("tinynet", "tinynet_twin"):
        register(ModelSpec(name=name, summary="a pretrained model whose weights cannot be downloaded",
                           builder=build, pretrained="tinynet", defaults=TrainingDefaults(image_size=(32, 32))))
"""


@pytest.fixture(scope="module")
def offline(tmp_path_factory, tiny_data):
    """``(zoo(*args, home=KERAS_HOME) -> CompletedProcess, a copy of the weights file, the data)``."""
    site = tmp_path_factory.mktemp("site")
    install_dist(site, "tinynet", "0.1", {"tinynet": "tinynet_mod"}, {"tinynet_mod": SOURCE})
    weights = tmp_path_factory.mktemp("weights") / FILE
    script = (f"import sys; sys.path.insert(0, {str(site)!r}); import tinynet_mod; "
              f"tinynet_mod.build(2, (32, 32), weights=None).save_weights({str(weights)!r})")
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})

    def zoo(*args, home, cache=None):
        env = {"KERAS_HOME": str(home), **({"CATDOG_ZOO_CACHE": str(cache)} if cache else {})}
        return zoo_subprocess(*args, env=env, site=site, check=False, timeout=300)
    return zoo, weights, tiny_data


def test_missing_weights_stop_the_run_before_any_image_is_decoded_naming_the_file(offline, tmp_path):
    zoo, weights, data = offline
    home, cache = tmp_path / "empty-keras-home", tmp_path / "cache"
    refused = zoo("train", "tinynet", "--data", data, "--epochs", 1, "--run-dir", tmp_path / "run", home=home,
                  cache=cache)
    lines = our_lines(refused.stderr)
    assert refused.returncode == 1 and lines[-1] == (
        f"Error: model 'tinynet' needs its tinynet weights: not in the Keras cache ({home}) and could not be "
        f"downloaded (URL fetch failure on {ORIGIN}: None -- [Errno 111] Connection refused); set KERAS_HOME to a "
        f"folder holding models/{FILE}, or pass --weights PATH (weights=PATH in Python) to a copy of that file")
    assert "decoding" not in refused.stdout + refused.stderr and "Traceback" not in refused.stderr
    # Nothing decoded, nothing cached, no run folder: the images were never touched.
    assert not [p for p in cache.rglob("*") if p.is_file()] and not (tmp_path / "run").exists()

    # What the line says to do works: the file, under models/ in KERAS_HOME.
    (home / "models").mkdir(parents=True, exist_ok=True)
    (home / "models" / FILE).write_bytes(weights.read_bytes())
    done = zoo("train", "tinynet", "--data", data, "--epochs", 1, "--run-dir", tmp_path / "run", "-q", home=home,
               cache=cache)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_weights_from_a_file_for_train_lr_find_and_the_zoo(offline, tmp_path):
    zoo, weights, data = offline
    home = tmp_path / "empty-keras-home"
    trained = zoo("train", "tinynet", "--data", data, "--epochs", 1, "--weights", weights, "--run-dir",
                  tmp_path / "run", "-q", home=home)
    assert trained.returncode == 0, trained.stderr
    swept = zoo("lr-find", "tinynet", "--data", data, "--weights", weights, "--steps", 8, "--out", tmp_path / "lr.png",
                home=home)
    assert swept.returncode == 0 and "Plot: " in swept.stdout, swept.stderr
    without = zoo("lr-find", "tinynet", "--data", data, "--steps", 8, "--out", tmp_path / "lr2.png", home=home)
    assert without.returncode == 1 and our_lines(without.stderr)[-1].endswith(
        f"set KERAS_HOME to a folder holding models/{FILE}, or pass --weights PATH (weights=PATH in Python) to a "
        "copy of that file")
    runs = tmp_path / "zoo"
    one = zoo("zoo", "tinynet", "--data", data, "--epochs", 1, "--weights", weights, "--runs-dir", runs, "-q",
              home=home)
    assert one.returncode == 0 and (runs / "tinynet" / "metrics.json").is_file(), one.stderr
    # One file fits one model: a sweep with two pretrained models, or none, is refused before it starts.
    twins = zoo("zoo", "tinynet*", "--weights", weights, "--runs-dir", tmp_path / "z2", home=home)
    assert twins.returncode == 2 and our_lines(twins.stderr)[-1] == (
        "Error: --weights is one file, for one pretrained model, and 'tinynet*' matches 2 (tinynet, tinynet_twin): "
        "give a PATTERN that matches one")
    scratch = zoo("zoo", "baseline", "--weights", weights, "--runs-dir", tmp_path / "z3", home=home)
    assert scratch.returncode == 2 and "--weights is for a pretrained model, and 'baseline' matches none" in \
        scratch.stderr
    assert not (tmp_path / "z2").exists() and not (tmp_path / "z3").exists()


def test_a_data_source_that_cannot_be_downloaded_says_which_file_to_provide(tmp_path):
    from catdog_zoo.data.sources import fetch_archive
    with pytest.raises(ConfigError) as refused:
        fetch_archive("pets.zip", "http://127.0.0.1:9/pets.zip", "pets", source="pets", cache_dir=str(tmp_path))
    assert str(refused.value) == (
        f"data source 'pets': not in the Keras cache ({tmp_path}) and could not be downloaded (URL fetch failure on "
        f"http://127.0.0.1:9/pets.zip: None -- [Errno 111] Connection refused); copy pets.zip into {tmp_path}/datasets, "
        "or pass --data DIR")

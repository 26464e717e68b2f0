"""An outside plugin's feature-extraction engine: registered through ``register_engines``, listed, chosen with
``--engine NAME`` for training and scoring, parity-checked against Keras (and refused, in one line naming it, when
its features are wrong), fed its own chunk size; an unknown engine name is one line listing the known ones."""

import json
import re
import sys

import numpy as np
import pytest
from conftest import cli_run, install_dist
from frozen_plugin import install_frozen

import catdog_zoo
from catdog_zoo.errors import ConfigError, ZooError
from catdog_zoo.models.engine import REFERENCE, frozen_engine
from catdog_zoo.models.extraction import Extraction, decide
from catdog_zoo.plugins import reset_zoo

# A converting engine (the layers as TFLite bytes, run by TensorFlow's own interpreter) and a pure one (the layers
# run eagerly by Keras), each optionally ``OFFSET`` off: what a broken converter or kernel would give.
ENGINE_PLUGIN = """
    import numpy as np
    from catdog_zoo import EngineSpec, hookimpl

    CATDOG_ZOO_API_VERSION = 3
    OFFSET = {offset}
    CALLS = []  # rows per call, to see the core honour the declared chunk

    def convert(layers, image_shape):
        import keras
        import tensorflow as tf
        model = keras.Sequential([keras.Input(image_shape), *layers])
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()

    class Interpreted:
        def __init__(self, content):
            import warnings
            import tensorflow as tf
            with warnings.catch_warnings():  # "deprecated": the test needs no extra package
                warnings.simplefilter("ignore", UserWarning)
                self.interpreter = tf.lite.Interpreter(model_content=content)
            self.index = self.interpreter.get_input_details()[0]["index"]
            self.output = self.interpreter.get_output_details()[0]["index"]
            self.shape = None

        def __call__(self, x):
            CALLS.append(len(x))
            if x.shape != self.shape:
                self.interpreter.resize_tensor_input(self.index, x.shape)
                self.interpreter.allocate_tensors()
                self.shape = x.shape
            self.interpreter.set_tensor(self.index, x)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output).copy() + OFFSET

    def eager(layers, image_shape):
        def run(x):
            for layer in layers:
                x = layer(x, training=False)
            return np.asarray(x) + OFFSET
        return run

    @hookimpl
    def register_engines(register):
        register(EngineSpec(name="{name}", summary="TFLite through a plugin", load=Interpreted, convert=convert,
                            runtime=lambda: "tf.lite.Interpreter", chunk=4))
        register(EngineSpec(name="{name}_eager", summary="Keras, eagerly", load=eager))
"""


def install_engine(site, name: str, offset: float = 0.0) -> None:
    install_dist(site, f"{name}-engine", "0.3", {name: f"{name}_mod"},
                 {f"{name}_mod": ENGINE_PLUGIN.format(name=name, offset=offset)})


def test_a_plugin_engine_is_listed_and_trains_and_scores_end_to_end(site, tiny_data, tmp_path, own_cache):
    install_engine(site, "litecopy")
    install_frozen(site, "tiny_frozen", size=32, seed=3)
    listed = {p["name"]: p for p in json.loads(cli_run("plugins", "--json").output)}
    assert listed["litecopy"]["engines"] == ["litecopy", "litecopy_eager"]
    listing = cli_run("plugins").output
    assert re.search(r"  engines:\n    openvino - .+\n    tflite - .+\n    tensorflow - .+\n", listing)  # built-ins alike
    run = tmp_path / "run"
    cli_run("train", "tiny_frozen", "--data", tiny_data, "--engine", "litecopy", "--epochs", "2", "--batch-size",
            "8", "--seed", "1", "--run-dir", run, "-q")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["feature_cache"]["engine"] == "litecopy" and metrics["feature_cache"]["misses"] == 3
    calls = sys.modules["litecopy_mod"].CALLS
    assert calls and set(calls) == {4}  # every call its declared chunk, the last padded
    assert len(list(own_cache.glob("engine-litecopy-*.entry"))) == 1  # converted once, checked, cached
    scored = catdog_zoo.evaluate(run, split="validation")  # scoring takes the run's engine too
    assert scored["engine"] == "litecopy"
    assert scored["accuracy"] == pytest.approx(metrics["val_accuracy"], abs=1e-6)
    # Its features are within 1e-4 of Keras', so the same head trains as on TensorFlow's own.
    reference = catdog_zoo.train("tiny_frozen", data=str(tiny_data), engine="tensorflow", epochs=2, batch_size=8,
                                 seed=1, run_dir=str(tmp_path / "reference"), quiet=True)
    assert reference.metrics["feature_cache"]["engine"] == "tensorflow"
    assert reference.metrics["val_loss"] == pytest.approx(metrics["val_loss"], abs=1e-3)


def frozen_layers():
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(2)
    layers = [keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu")]),
              keras.layers.GlobalAveragePooling2D()]
    x = tf.zeros((1, 16, 16, 3))
    for layer in layers:
        x = layer(x, training=False)
    return layers


def test_an_engine_giving_wrong_features_is_refused_by_name_and_auto_falls_back(site, own_cache):
    install_engine(site, "skewed", offset=0.5)
    layers, shape = frozen_layers(), (16, 16, 3)
    for name in ("skewed", "skewed_eager"):
        with pytest.raises(ConfigError, match=rf"^engine {name} \(skewed-engine\) cannot run this backbone: its "
                                              r"features differ from "
                                              r"Keras' by 5\.0e-01 \(> 0\.0001\)$"):
            frozen_engine(layers, shape, "digest-w", decide(name))
        said = []
        engine = frozen_engine(layers, shape, "digest-w", Extraction("auto", (name,)), say=said.append)
        assert engine.name == REFERENCE and len(said) == 1
        assert said[0].startswith(f"Note: the {name} engine cannot run") and said[0].endswith("with TensorFlow")
    assert not list(own_cache.glob("engine-*.entry"))  # a conversion that failed its check is never kept


def test_a_pure_engine_is_checked_each_time_it_is_made_and_never_cached(site, own_cache):
    install_engine(site, "plain")
    layers, shape = frozen_layers(), (16, 16, 3)
    x = np.random.default_rng(1).uniform(-1, 1, (6, *shape)).astype(np.float32)
    engine = frozen_engine(layers, shape, "digest-p", decide("plain_eager"))
    assert engine.name == "plain_eager"
    np.testing.assert_allclose(engine(x), frozen_engine(layers, shape, "digest-p", decide("tensorflow"))(x),
                               atol=1e-5)
    assert not list(own_cache.glob("engine-*.entry"))


def test_an_unknown_engine_is_one_line_listing_the_known_ones(site, tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a run folder would go
    install_engine(site, "listed")
    install_frozen(site, "tiny_frozen", size=32)
    result = cli_run("train", "tiny_frozen", "--data", tiny_data, "--engine", "nosuch", ok=False)
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    known = re.fullmatch(r"Error: engine must be one of (.+), got 'nosuch' \(a plugin's engine: 'catdog-zoo plugins' "
                         r"lists what is installed\)", line).group(1).split(", ")
    assert {"auto", "listed", "listed_eager", "openvino", "tensorflow", "tflite"} <= set(known)  # and others installed
    assert known == sorted(known)
    config = tmp_path / "c.yaml"
    config.write_text("engine: nosuch\n")
    with pytest.raises(ConfigError, match=r"^engine must be one of auto, listed, .*got 'nosuch'"):
        catdog_zoo.train("tiny_frozen", config_file=str(config), data=str(tiny_data), quiet=True)
    with pytest.raises(ConfigError, match=r"engine must be a name"):
        catdog_zoo.train("tiny_frozen", data=str(tiny_data), engine="no such", quiet=True)
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_an_engine_that_turns_nan_after_its_parity_check_is_stopped_by_name(site, own_cache):
    install_dist(site, "nan-engine", "0.1", {"nan": "nan_mod"}, {"nan_mod": """
        import numpy as np
        from catdog_zoo import EngineSpec, hookimpl

        def eager(layers, image_shape):
            calls = []

            def run(x):  # right on the parity probe, NaN afterwards: what an overflowing kernel could give
                calls.append(len(x))
                for layer in layers:
                    x = layer(x, training=False)
                return np.asarray(x) * (np.nan if len(calls) > 1 else 1.0)
            return run

        @hookimpl
        def register_engines(register):
            register(EngineSpec(name="nanny", summary="NaN on batches", load=eager))
    """})
    reset_zoo()
    layers, shape = frozen_layers(), (16, 16, 3)
    engine = frozen_engine(layers, shape, "digest-n", decide("nanny"))
    with pytest.raises(ZooError, match=r"^engine nanny \(nan-engine\) computed features that are NaN or infinite"):
        engine(np.zeros((3, *shape), np.float32))

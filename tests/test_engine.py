"""Engines for the frozen part: the TFLite and OpenVINO engines give Keras' features (OpenVINO's bfloat16 variant
close to them), are cached, and fall back in one line."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from catdog_zoo import ConfigError
from catdog_zoo.models import openvino_engine
from catdog_zoo.models.chunks import in_chunks
from catdog_zoo.models.engine import TensorFlowFrozen
from catdog_zoo.models.engine import frozen_engine as make_engine
from catdog_zoo.models.extraction import decide
from catdog_zoo.plugins import get_zoo

needs_openvino = pytest.mark.skipif(not openvino_engine.available(), reason="OpenVINO not installed (extra)")


class PythonCallback(keras.layers.Layer):
    """Runs Python inside the graph: TensorFlow can, TFLite cannot."""

    def call(self, x):
        y = tf.numpy_function(lambda a: a, [x], tf.float32)
        y.set_shape(x.shape)
        return y


def frozen_layers(weird=False):
    """A small frozen backbone + pooling; ``weird`` adds a layer TFLite cannot convert (a Python callback)."""
    keras.utils.set_random_seed(1)
    backbone = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
                                 keras.layers.DepthwiseConv2D(3, strides=2), keras.layers.BatchNormalization(),
                                 keras.layers.ReLU(6.0)], name="backbone")
    layers = [backbone, keras.layers.GlobalAveragePooling2D()]
    if weird:
        layers.insert(1, PythonCallback())
    x = tf.zeros((1, 32, 32, 3))
    for layer in layers:
        x = layer(x, training=False)
    return layers


def frozen_engine(layers, shape, digest, choice, say=print):
    """The engine the core makes for ``--engine choice``, decided as a run decides it."""
    return make_engine(layers, shape, digest, decide(choice), say=say)


def images(n=5):
    return np.random.default_rng(0).uniform(-1, 1, (n, 32, 32, 3)).astype(np.float32)


def test_tflite_engine_matches_keras_within_1e4_for_any_batch_size(own_cache):
    layers = frozen_layers()
    engine = frozen_engine(layers, (32, 32, 3), "digest-a", "tflite")
    assert engine.name == "tflite"
    reference = TensorFlowFrozen(layers, (32, 32, 3))
    for n in (5, 2, 5):  # the batch size changes and changes back
        x = images(n)
        assert np.abs(engine(x) - reference(x)).max() < 1e-4
        np.testing.assert_allclose(reference(x), keras.Sequential(layers)(x, training=False), atol=1e-5)


@pytest.mark.parametrize("kind", ["tflite", pytest.param("openvino", marks=needs_openvino)])
def test_the_converted_engine_is_cached_by_weights_digest(own_cache, kind):
    layers = frozen_layers()
    frozen_engine(layers, (32, 32, 3), "digest-b", kind)
    entries = sorted(p.name for p in own_cache.glob(f"engine-{kind}-*.entry"))
    assert len(entries) == 1
    frozen_engine(layers, (32, 32, 3), "digest-b", kind)
    assert sorted(p.name for p in own_cache.glob(f"engine-{kind}-*.entry")) == entries  # reused, not converted again
    frozen_engine(layers, (32, 32, 3), "digest-c", kind)
    assert len(list(own_cache.glob(f"engine-{kind}-*.entry"))) == 2  # other weights, another entry


def test_auto_falls_back_to_tensorflow_in_one_line_and_tflite_refuses(own_cache):
    layers = frozen_layers(weird=True)
    said = []
    engine = frozen_engine(layers, (32, 32, 3), "digest-d", "auto", say=said.append)
    assert engine.name == "tensorflow" and len(said) == 1 and said[0].startswith("Note: the ")
    assert "TFLite" in said[0] and said[0].endswith("extracting features with TensorFlow")
    assert engine(images(3)).shape == (3, 8)
    with pytest.raises(ConfigError, match="engine tflite cannot run this backbone"):
        frozen_engine(layers, (32, 32, 3), "digest-d", "tflite")
    assert not list(own_cache.glob("engine-*.entry"))  # only a conversion that passed is kept


@needs_openvino
def test_openvino_engine_matches_keras_and_its_bfloat16_variant_is_close(own_cache):
    layers = frozen_layers()
    engine = frozen_engine(layers, (32, 32, 3), "digest-o", "openvino")
    assert engine.name == "openvino"
    reference = TensorFlowFrozen(layers, (32, 32, 3))
    for n in (5, 1, 9):  # under, at and over a chunk of rows
        x = images(n)
        assert np.abs(engine(x) - reference(x)).max() < 1e-4
    x = images(9)
    reduced = engine.bfloat16()(x)
    assert reduced.shape == (9, 8) and reduced.dtype == np.float32
    worst = np.abs(reduced - reference(x)).max()
    assert worst < 0.1 * np.abs(reference(x)).max() + 0.05  # reduced, not wrong
    assert worst > 0 or not engine.native_bfloat16  # where bfloat16 is native, it is really used


@needs_openvino
def test_openvino_streams_give_the_engines_own_results_for_any_batch(own_cache):
    engine = frozen_engine(frozen_layers(), (32, 32, 3), "digest-s", "openvino")
    streams = engine.streams()
    for n in (0, 1, 7):  # no rows (for the shape), one, and more rows than streams
        x = images(n) if n else np.zeros((0, 32, 32, 3), np.float32)
        got = streams(x)
        assert got.shape == (n, 8) and got.dtype == np.float32
        assert np.array_equal(got, engine(x))  # the same kernels, one image per request: bit-identical
    assert engine.streams() is streams and engine.streams("bfloat16") is not streams


def test_without_openvino_auto_takes_tflite_and_openvino_is_refused_by_name(own_cache, monkeypatch):
    monkeypatch.setattr(openvino_engine, "available", lambda: False)
    layers = frozen_layers()
    said = []
    assert frozen_engine(layers, (32, 32, 3), "digest-n", "auto", say=said.append).name == "tflite" and said == []
    with pytest.raises(ConfigError, match=r"engine openvino needs OpenVINO: pip install 'catdog-zoo\[openvino\]'"):
        frozen_engine(layers, (32, 32, 3), "digest-n", "openvino")


def test_chunks_give_every_call_the_same_number_of_rows_and_keep_the_order():
    calls = []

    def run(x):
        calls.append(len(x))
        return x.reshape(len(x), -1)[:, :2] * 2
    x = np.arange(11 * 4, dtype=np.float32).reshape(11, 2, 2)
    out = in_chunks(run, x, 4)
    assert calls == [4, 4, 4] and out.shape == (11, 2)
    np.testing.assert_array_equal(out, x.reshape(11, -1)[:, :2] * 2)
    assert in_chunks(run, x[:0], 4).shape == (0, 2) and calls[-1] == 4
    engines = get_zoo().extensions["engines"]
    assert engines["tflite"].chunk_for() == 8 and engines["tflite"].precisions == ("float32",)
    assert [engines["openvino"].chunk_for(p) for p in ("float32", "bfloat16")] == [4, 8]
    assert engines["tensorflow"].chunk_for() == 0  # whole batches


def test_a_cached_conversion_is_trusted_only_as_stored(own_cache, monkeypatch):
    from catdog_zoo.models import engine as engines
    monkeypatch.setattr(openvino_engine, "available", lambda: False)
    layers = frozen_layers()
    frozen_engine(layers, (32, 32, 3), "digest-e", "auto")
    checks = []
    monkeypatch.setattr(engines, "_check_parity", lambda *a: checks.append(1) or 0.0)
    again = frozen_engine(layers, (32, 32, 3), "digest-e", "auto")
    assert again.name == "tflite" and checks == []  # passed when it was made: not checked on every run
    (entry,) = own_cache.glob("engine-tflite-*.entry")
    entry.write_bytes(entry.read_bytes()[:-100])  # damaged: converted and checked again
    assert frozen_engine(layers, (32, 32, 3), "digest-e", "auto").name == "tflite" and checks == [1]


def test_auto_leaves_a_visible_gpu_to_tensorflow(own_cache, monkeypatch):
    """XNNPACK runs on the CPU: with a GPU in the machine, auto keeps TensorFlow (which runs there)."""
    from catdog_zoo.models import extraction
    monkeypatch.setattr(openvino_engine, "available", lambda: False)
    layers = frozen_layers()
    monkeypatch.setattr(extraction, "gpu_visible", lambda: True)
    assert frozen_engine(layers, (32, 32, 3), "digest-g", "auto").name == "tensorflow"
    assert frozen_engine(layers, (32, 32, 3), "digest-g", "tflite").name == "tflite"  # asked for: still given
    monkeypatch.setattr(extraction, "gpu_visible", lambda: False)
    assert frozen_engine(layers, (32, 32, 3), "digest-g", "auto").name == "tflite"

"""What runs a model's frozen part (backbone + pooling) when features are extracted.

``tflite``: the frozen layers converted once to a float32 TFLite model and run by the LiteRT
interpreter with its XNNPACK CPU kernels (``ai-edge-litert`` when installed, else the interpreter
bundled with TensorFlow): the same float32 arithmetic in a faster kernel library, features within
1e-4 of Keras (checked on a probe image when the conversion is made; only a conversion that passes is
cached, beside the features, keyed by the frozen weights' digest, the input size and the interpreter).
``openvino`` (an optional extra, :mod:`.openvino_engine`): the same check and cache; float32, and bfloat16
for the training split's features on CPUs that compute in it natively.
``tensorflow``: a traced ``tf.function`` of the layers, as Keras runs them.
``auto``: ``openvino`` when it is installed and the CPU has bfloat16, else ``tflite``, each when it converts
and passes the check, else the next with one line saying why, ``tensorflow`` last; ``tensorflow`` outright
when a GPU is visible (both engines run on the CPU: a GPU does the work faster).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import tensorflow as tf

from ..config import ENGINES
from ..data import cache
from ..errors import ConfigError
from .chunks import CHUNK, in_chunks

PARITY_TOLERANCE = 1e-4  # max |feature - Keras feature| on the probe image
FORMAT = 3  # bump when the conversion changes what a cached engine holds (3: stored once parity-checked)


class TensorFlowFrozen:
    """The frozen layers as a traced function of float32 batches (batch size left open)."""

    name = "tensorflow"

    def __init__(self, layers, image_shape):
        @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.float32)])
        def run(x):
            for layer in layers:
                x = layer(x, training=False)
            return x
        self._run = run

    def traced(self):
        """The concrete function (one graph) behind this engine."""
        return self._run.get_concrete_function()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._run(tf.constant(x)).numpy()


class TFLiteFrozen:
    """A converted TFLite model of the frozen layers, run by the LiteRT interpreter on every core."""

    name = "tflite"

    def __init__(self, content: bytes):
        import warnings

        with quiet_native(), warnings.catch_warnings():  # the XNNPACK announcement; tf.lite's "deprecated" notice
            warnings.simplefilter("ignore", UserWarning)
            self._interpreter = _interpreter_class()(model_content=content, num_threads=os.cpu_count() or 1)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shape = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return in_chunks(self._invoke, x, CHUNK["tflite"])

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self._shape:  # a new batch size: plan memory again (once: chunks keep their size)
            self._interpreter.resize_tensor_input(self._input, x.shape)
            with quiet_native():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self._interpreter.allocate_tensors()
            self._shape = x.shape
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter  # LiteRT, TFLite's maintained home
    except ImportError:
        Interpreter = tf.lite.Interpreter  # deprecated in favour of ai-edge-litert, still bundled with TF 2.21
    return Interpreter


@contextlib.contextmanager
def quiet_native(fds=(2,)):
    """Silence what C++ (and Keras' export summary) write to these file descriptors; Python's own errors
    are raised, not printed, so nothing a user needs is lost."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        saved = [os.dup(fd) for fd in fds]
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull) if 1 in fds else \
            contextlib.nullcontext():
        for fd in fds:
            os.dup2(devnull.fileno(), fd)
        try:
            yield
        finally:
            for fd, copy in zip(fds, saved):
                os.dup2(copy, fd)
                os.close(copy)


def convert(layers, image_shape) -> bytes:
    """The frozen layers as a float32 TFLite model (no quantisation, no optimisation that changes numbers).

    The layers are traced once, their variables folded into constants, and the constant graph converted:
    1.7 s for MobileNetV2 at 224 px against 7.5 s through ``from_keras_model`` (which first exports a whole
    SavedModel), with identical features. Converting the traced function *without* folding the variables
    gave NaN features with TensorFlow 2.21, so that path is never taken; if folding is unavailable or fails,
    the Keras route is used. Either way ``frozen_engine`` checks the result against Keras.
    """
    try:
        return _convert_folded(layers, image_shape)
    except Exception:  # noqa: BLE001 - a private TF helper may move or refuse a layer; the slow route remains
        import keras

        model = keras.Sequential([keras.Input(image_shape), *layers])
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        with quiet_native((1,)):  # the converter prints the whole SavedModel signature to stdout
            return converter.convert()


def _convert_folded(layers, image_shape) -> bytes:
    import logging

    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    folded = convert_variables_to_constants_v2(TensorFlowFrozen(layers, image_shape).traced())
    absl = logging.getLogger("absl")  # "consider providing trackable_obj": a folded graph has nothing to track
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with quiet_native((1,)):
            return tf.lite.TFLiteConverter.from_concrete_functions([folded]).convert()
    finally:
        absl.setLevel(level)


def _kinds() -> dict:
    """Each converting engine: ``(convert(layers, shape) -> bytes, load(bytes) -> engine, what the bytes
    depend on beyond the layers)``."""
    from . import openvino_engine as ov

    return {"tflite": (convert, TFLiteFrozen, _interpreter_class().__module__),
            "openvino": (lambda layers, shape: ov.convert(convert(layers, shape)), ov.load,
                         f"{ov.version()} from tflite" if ov.available() else None)}


def _checked(kind: str, layers, image_shape, weights_digest: str):
    """The converted engine ``kind``: from the cache, where a conversion is stored only once it has passed
    the parity check (and the entry is signed and checked, data/entries.py), or converted and checked now."""
    make, load, runtime = _kinds()[kind]
    key = cache.key(f"engine-{kind}", weights=weights_digest, shape=list(image_shape), format=FORMAT,
                    layers=[type(layer).__name__ for layer in layers], interpreter=runtime)
    found = cache.load(key)
    if found is not None:
        return load(np.asarray(found).tobytes())
    content = make(layers, image_shape)
    engine = load(content)
    worst = _parity(engine, layers, image_shape)
    if worst > PARITY_TOLERANCE:
        raise ValueError(f"its features differ from Keras' by {worst:.1e} (> {PARITY_TOLERANCE:g})")
    cache.store(key, np.frombuffer(content, np.uint8), parity=worst)
    return engine


TITLES = {"openvino": "OpenVINO", "tflite": "TFLite", "tensorflow": "TensorFlow"}


def _candidates(choice: str) -> list:
    """The converting engines to try, best first. ``auto`` takes OpenVINO only where it is faster: with its
    bfloat16 kernels on a CPU that has them (for the training split's features); in float32 it runs at
    XNNPACK's speed."""
    if choice != "auto":
        return [choice]
    from . import openvino_engine as ov

    return (["openvino"] if ov.faster_here() else []) + ["tflite"]


def frozen_engine(layers, image_shape, weights_digest: str, choice: str = "auto", say=print):
    """The engine for ``layers`` (a model's frozen part) on float32 inputs of ``image_shape``."""
    if choice not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {choice!r}")
    if choice == "tensorflow" or (choice == "auto" and gpu_visible()):
        return TensorFlowFrozen(layers, image_shape)
    if choice == "openvino":
        from . import openvino_engine as ov

        if not ov.available():
            raise ConfigError("engine openvino needs OpenVINO: pip install 'catdog-zoo[openvino]' (or use --engine "
                              "auto)")
    failed = []  # (engine, why), said in one line with what runs instead
    for kind in _candidates(choice):
        try:
            engine = _checked(kind, layers, image_shape, weights_digest)
        except Exception as exc:  # noqa: BLE001 - any conversion or runtime failure falls back
            reason = first_line(exc)
            if choice == kind:
                raise ConfigError(f"engine {kind} cannot run this backbone: {reason}") from None
            failed.append((TITLES[kind], reason))
            continue
        _say_fallback(failed, TITLES[kind], say)
        return engine
    _say_fallback(failed, "TensorFlow", say)
    return TensorFlowFrozen(layers, image_shape)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception in one line for a message (converters' errors run to whole pages), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def _say_fallback(failed: list, instead: str, say) -> None:
    if len(failed) == 1:
        say(f"Note: the {failed[0][0]} engine cannot run this backbone ({failed[0][1]}); extracting features "
            f"with {instead}")
    elif failed:
        why = "; ".join(f"{name}: {reason}" for name, reason in failed)
        say(f"Note: the {' and '.join(name for name, _ in failed)} engines cannot run this backbone ({why}); "
            f"extracting features with {instead}")


def gpu_visible() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def _parity(engine, layers, image_shape) -> float:
    """Largest difference from Keras' own eager forward pass on one fixed probe image."""
    probe = np.random.default_rng(0).uniform(-1, 1, (1, *image_shape)).astype(np.float32)
    expected = probe
    for layer in layers:
        expected = layer(expected, training=False)
    return float(np.abs(engine(probe) - np.asarray(expected)).max())

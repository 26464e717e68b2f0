"""The TFLite engine: a model's frozen layers converted once to a float32 TFLite model and run by the LiteRT
interpreter with its XNNPACK CPU kernels (``ai-edge-litert`` when installed, else the interpreter bundled with
TensorFlow): the same float32 arithmetic in a faster kernel library, features within 1e-4 of Keras (checked by
``models.engine`` when a conversion is made). Registered as ``tflite`` by :mod:`.builtin_engines`.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import tensorflow as tf

from .engine import TensorFlowFrozen


class TFLiteFrozen:
    """A converted TFLite model of the frozen layers, run by the LiteRT interpreter on every core."""

    def __init__(self, content: bytes):
        import warnings

        with quiet_native(), warnings.catch_warnings():  # the XNNPACK announcement; tf.lite's "deprecated" notice
            warnings.simplefilter("ignore", UserWarning)
            self._interpreter = _interpreter_class()(model_content=content, num_threads=os.cpu_count() or 1)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shape = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """One chunk of rows (the core calls it ``EngineSpec.chunk`` rows at a time, models/engine.py)."""
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
    the Keras route is used. Either way the core checks the result against Keras (``models.engine``).
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


def runtime() -> str:
    """What a conversion's bytes are run by (part of its cache key): LiteRT's or TensorFlow's interpreter."""
    return _interpreter_class().__module__

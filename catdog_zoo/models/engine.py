"""What runs a model's frozen part (backbone + pooling) when features are extracted: choosing, checking and
preparing an engine.

Engines are :class:`catdog_zoo.EngineSpec`\\ s in the zoo's registry: the built-in ``tensorflow``, ``tflite`` and
``openvino`` (:mod:`.builtin_engines`) and any a plugin registers. Which ones a run tries, in what order and
precision, is decided once (:mod:`.extraction`); this module makes the first of them that runs this backbone:
a converting engine's conversion is checked against Keras on a probe image (features within 1e-4) and only a
conversion that passed is cached, beside the features, keyed by the frozen weights' digest, the input shape and
the engine's runtime; an engine that runs the layers as they are is checked each time it is made. ``tensorflow``
(a traced ``tf.function`` of the layers, as Keras runs them) is the reference: never checked, and what ``auto``
falls back to, with one line saying why.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from ..data import cache
from ..errors import ConfigError, ZooError, first_line
from ..plugins import get_zoo
from .chunks import in_chunks

PARITY_TOLERANCE = 1e-4  # max |feature - Keras feature| on the probe image
FORMAT = 3  # bump when the conversion changes what a cached engine holds (3: stored once parity-checked)
REFERENCE = "tensorflow"  # Keras' own layers: what every other engine is checked against and falls back to


class TensorFlowFrozen:
    """The frozen layers as a traced function of float32 batches (batch size left open)."""

    name = REFERENCE

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


class Loaded:
    """An engine as the core calls it: named by its spec, fed its spec's chunk of rows per call (the last padded:
    one shape, so no engine plans its memory or picks its kernels again for a short batch)."""

    def __init__(self, spec, engine, precision: str = "float32"):
        self.spec, self.name, self._engine = spec, spec.name, engine
        self._chunk = spec.chunk_for(precision)
        self.native_bfloat16 = bool(getattr(engine, "native_bfloat16", False))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = in_chunks(self._engine, x, self._chunk) if self._chunk else self._engine(x)
        if not np.isfinite(out).all():  # the parity check saw one probe image; every batch is checked for NaN
            raise ZooError(f"engine {self.spec.shown}{self.spec.from_origin} computed features that are NaN or "
                           "infinite; nothing was cached from them (--engine tensorflow runs Keras itself)")
        return out

    def computes(self, precision: str) -> bool:
        return precision in self.spec.precisions

    def bfloat16(self) -> "Loaded":
        """The engine computing in bfloat16 (float32 in and out); compiled the first time it is asked for."""
        if not self.computes("bfloat16"):
            raise ValueError(f"the {self.spec.shown} engine does not compute in bfloat16")
        return Loaded(self.spec, self._engine.bfloat16(), "bfloat16")

    def streams(self, precision: str = "float32"):
        """For scoring beside other work (``serve``): the engine's own throughput compilation when it has one
        (OpenVINO's streams, the same results), else the engine itself."""
        own = getattr(self._engine, "streams", None)
        if own is None:
            return self if precision == "float32" else self.bfloat16()
        return own("bf16" if precision == "bfloat16" else "f32")


def _checked(spec, layers, image_shape, weights_digest: str) -> Loaded:
    """The engine of ``spec`` for these layers: a converting one from the cache, where a conversion is stored only
    once it has passed the parity check (and the entry is signed and checked, data/entries.py), or converted and
    checked now; one that runs the layers as they are, made and checked now."""
    if spec.convert is None:
        engine = Loaded(spec, spec.load(layers, image_shape))
        _check_parity(engine, layers, image_shape)
        return engine
    key = cache.key(f"engine-{spec.name}", weights=weights_digest, shape=list(image_shape), format=FORMAT,
                    layers=[type(layer).__name__ for layer in layers],
                    interpreter=spec.runtime() if spec.runtime else None)
    found = cache.load(key)
    if found is not None:
        return Loaded(spec, spec.load(np.asarray(found).tobytes()))
    content = spec.convert(layers, image_shape)
    if not isinstance(content, (bytes, bytearray)):
        raise TypeError(f"its convert() returned {type(content).__name__}, not bytes")
    engine = Loaded(spec, spec.load(bytes(content)))
    worst = _check_parity(engine, layers, image_shape)
    cache.store(key, np.frombuffer(content, np.uint8), parity=worst)
    return engine


def frozen_engine(layers, image_shape, weights_digest: str, extraction, say=print):
    """The engine for ``layers`` (a model's frozen part) on float32 inputs of ``image_shape``: the first of
    ``extraction.candidates`` (:mod:`.extraction`) that runs them and passes the check, else TensorFlow. An
    engine asked for by name that cannot is an error naming it; ``auto`` says in one line what it fell back from."""
    if extraction.engine == REFERENCE or not extraction.candidates:
        return TensorFlowFrozen(layers, image_shape)
    by_name = extraction.engine != "auto"
    failed = []  # (engine, why), said in one line with what runs instead
    for name in extraction.candidates:
        spec = get_zoo().extension("engines", name, "engine")
        why = spec.available() if spec.available else ""
        if why and by_name:
            raise ConfigError(f"engine {name}{spec.from_origin} {why} (or use --engine auto)")
        if why:
            failed.append((spec.shown, why))
            continue
        try:
            engine = _checked(spec, layers, image_shape, weights_digest)
        except Exception as exc:  # noqa: BLE001 - any conversion, runtime or parity failure falls back
            reason = first_line(exc)
            if by_name:
                raise ConfigError(f"engine {name}{spec.from_origin} cannot run this backbone: {reason}") from None
            failed.append((spec.shown, reason))
            continue
        _say_fallback(failed, spec.shown, say)
        return engine
    _say_fallback(failed, "TensorFlow", say)
    return TensorFlowFrozen(layers, image_shape)


def prepared_engine(chain, image_size, extraction, say):
    """The engine of ``chain``'s frozen part, run once (its bfloat16 variant too when the training features may be
    bfloat16 and it computes so natively here), with the seconds that took and the weights it was made from."""
    started = time.perf_counter()
    weights, shape = chain.weights_digest(), frozen_input_shape(chain, image_size)
    engine = frozen_engine(chain.frozen, shape, weights, extraction, say)
    engine(np.zeros((1, *shape), np.float32))  # its first run sets its kernels up (0.3 s for TFLite's XNNPACK)
    if extraction.precision != "float32" and getattr(engine, "native_bfloat16", False):
        try:
            engine.bfloat16()(np.zeros((1, *shape), np.float32))
        except Exception:  # noqa: BLE001 - said (or fallen back from) where the precision is chosen
            pass
    engine.seconds, engine.weights_digest = time.perf_counter() - started, weights
    return engine


def frozen_input_shape(chain, image_size) -> tuple:
    """The shape of one input of the frozen part: what the front layers make of an image."""
    x = tf.zeros((1, *image_size, 3), tf.float32)
    for layer in chain.front:
        x = layer(x, training=False)
    return tuple(x.shape[1:])


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


def _check_parity(engine, layers, image_shape) -> float:
    """Largest difference from Keras' own eager forward pass on one fixed probe image; an engine further off
    than :data:`PARITY_TOLERANCE` (or giving another shape, or no numbers) is refused."""
    probe = np.random.default_rng(0).uniform(-1, 1, (1, *image_shape)).astype(np.float32)
    expected = probe
    for layer in layers:
        expected = layer(expected, training=False)
    expected = np.asarray(expected)
    got = np.asarray(engine(probe))
    if got.shape != expected.shape:
        raise ValueError(f"its features have shape {got.shape[1:]}, Keras' {expected.shape[1:]}")
    worst = float(np.abs(got - expected).max())
    if not worst <= PARITY_TOLERANCE:  # NaN included
        raise ValueError(f"its features differ from Keras' by {worst:.1e} (> {PARITY_TOLERANCE:g})")
    return worst

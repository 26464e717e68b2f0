"""Training the head of a frozen-backbone model on cached backbone features.

When a spec names its frozen backbone (``ModelSpec.frozen_backbone``), the model is read as a chain
``front -> frozen -> head``: ``front`` holds the preprocessing and augmentation layers before the
backbone, ``frozen`` the backbone plus any weightless, deterministic layers right after it (global
pooling), ``head`` the rest. The frozen part runs once per image and view instead of once per
image per epoch; the head, which shares its layer objects with the full model, trains on the
cached features. The saved model is still the whole model, images in, logits out.

Augmentation is kept: ``aug_views`` augmented copies of every training image are extracted (the
front layers in training mode) and each epoch draws one of them per image. Validation and test
features are un-augmented. With ``aug_views=0`` the head trains on un-augmented features.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from . import cache
from .progress import SILENT

EXTRACT_BATCH = 64
WEIGHTLESS_FOLLOWERS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D, keras.layers.Flatten)


@dataclass
class FrozenChain:
    front: list
    frozen: list
    head: list

    def head_model(self, feature_dim: int) -> keras.Model:
        """The head as its own model over feature vectors, sharing weights with the full model."""
        return keras.Sequential([keras.Input(shape=(feature_dim,)), *self.head], name="cached_feature_head")

    def weights_digest(self) -> str:
        return cache.arrays_digest(keras.ops.convert_to_numpy(w) for layer in self.front + self.frozen
                                   for w in layer.weights)

    def front_config(self) -> list:
        """What the front layers do, without their auto-generated names (which change per build)."""
        return [_without_names(layer.get_config()) for layer in self.front]


def _without_names(config):
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


def split_frozen(model: keras.Model, backbone: str):
    """The model as a :class:`FrozenChain` around layer ``backbone``, or None when that is not valid.

    Not valid: no such layer, the backbone is trainable, the head is not a pure function of the
    pooled backbone output (checked numerically on a random batch, so any graph that is not
    a simple chain falls back to ordinary training).
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [layer.name for layer in layers]
    if backbone not in names:
        return None
    i = names.index(backbone)
    if layers[i].trainable_weights:
        return None
    j = i + 1
    while j < len(layers) and isinstance(layers[j], WEIGHTLESS_FOLLOWERS):
        j += 1
    chain = FrozenChain(layers[:i], layers[i:j], layers[j:])
    probe = np.random.default_rng(0).uniform(0, 255, size=(2, *model.input_shape[1:])).astype("float32")
    x = probe
    for layer in chain.front + chain.frozen + chain.head:
        x = layer(x, training=False)
    if not np.allclose(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(model(probe, training=False)),
                       atol=1e-4):
        return None
    return chain


def extractor(chain: FrozenChain, augment: bool, image_shape):
    """A compiled ``uint8 images -> features`` function: front (augmenting if asked), then frozen layers.

    Build it once and reuse it: tracing MobileNetV2 costs about a second. The signature leaves the
    batch size open, so the short last batch of a split does not trigger another trace.
    """

    @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.uint8)])
    def step(x):
        x = tf.cast(x, tf.float32)
        for layer in chain.front:
            x = layer(x, training=augment)
        for layer in chain.frozen:
            x = layer(x, training=False)
        return x
    return step


def extract(step, images: np.ndarray, batch_size: int = EXTRACT_BATCH, advance=lambda n: None) -> np.ndarray:
    """Run ``step`` (from :func:`extractor`) over ``images`` in batches."""
    out = []
    for i in range(0, len(images), batch_size):
        out.append(step(tf.constant(images[i:i + batch_size])).numpy())
        advance(len(out[-1]))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def reseed(layers, seed: int) -> None:
    """Restart the random generators of ``layers`` (and nested layers) from ``seed``.

    Keras random layers keep a generator state that advances with every call, so without this
    view k would depend on how many views were drawn before it in this process (cache hits or not).
    """
    n = 0
    for layer in layers:
        for sub in layer._flatten_layers(include_self=True):
            for generator in getattr(sub, "_seed_generators", []):
                generator.state.assign(np.array([seed + n, 0], dtype=generator.state.dtype.name
                                                if hasattr(generator.state.dtype, "name") else "int64"))
                n += 1


@dataclass
class FeatureCacheReport:
    """What the cache did: hits, misses, and extraction time with its one-off set-up told apart.

    ``setup_seconds`` is tracing each extraction function and its first batch (oneDNN picks its
    kernels then). ``images_per_second`` excludes it, as a forward-pass benchmark times after a
    warm-up batch; ``overall_images_per_second`` includes it.
    """

    hits: int = 0
    misses: int = 0
    extract_seconds: float = 0.0  # everything, set-up included
    setup_seconds: float = 0.0
    images_extracted: int = 0

    def as_dict(self) -> dict:
        steady = self.extract_seconds - self.setup_seconds
        rate = self.images_extracted / steady if steady > 0 else None
        overall = self.images_extracted / self.extract_seconds if self.extract_seconds else None
        return {"used": True, "hits": self.hits, "misses": self.misses,
                "extract_seconds": round(self.extract_seconds, 2), "setup_seconds": round(self.setup_seconds, 2),
                "images_extracted": self.images_extracted,
                "images_per_second": round(rate, 1) if rate else None,
                "overall_images_per_second": round(overall, 1) if overall else None}


class FeatureStore:
    """Cached features of one model's frozen part, keyed by everything that changes them."""

    def __init__(self, chain: FrozenChain, model_name: str, image_size, seed: int, progress=SILENT):
        self.chain = chain
        self.base_key = {"model": model_name, "weights": chain.weights_digest(), "image_size": list(image_size),
                         "front": json.dumps(chain.front_config(), sort_keys=True, default=str)}
        self.seed = seed
        self.image_size = tuple(image_size)
        self.report = FeatureCacheReport()
        self.progress = progress
        self._steps = {}

    def _step(self, augment: bool):
        """The extraction function, traced and warmed up on a blank batch the first time it is needed."""
        if augment not in self._steps:
            started = time.perf_counter()
            step = extractor(self.chain, augment, (*self.image_size, 3))
            step(tf.zeros((EXTRACT_BATCH, *self.image_size, 3), tf.uint8))
            self.report.setup_seconds += time.perf_counter() - started
            self._steps[augment] = step
        return self._steps[augment]

    def _get(self, name, compute, count, label):
        """``cache.cached``, counting hits, misses and the time spent extracting."""
        def timed():
            started = time.perf_counter()
            with self.progress(label, count) as bar:
                array = compute(bar.advance)
            self.report.misses += 1
            self.report.extract_seconds += time.perf_counter() - started
            self.report.images_extracted += count
            return array
        misses = self.report.misses
        array = cache.cached(name, timed)
        if self.report.misses == misses:
            self.report.hits += 1
        return array

    def plain(self, images: np.ndarray, files_digest: str, label: str = "features") -> np.ndarray:
        name = cache.key("features", files=files_digest, augment=0, **self.base_key)
        return self._get(name, lambda advance: extract(self._step(False), images, advance=advance), len(images),
                         label)

    def augmented(self, images: np.ndarray, files_digest: str, views: int) -> np.ndarray:
        """``(views, N, D)`` features of augmented copies; view k is the same for any ``views`` >= k."""
        out = []
        for k in range(views):
            name = cache.key("features", files=files_digest, augment=1, view=k, seed=self.seed, **self.base_key)

            def compute(advance, k=k):
                step = self._step(True)  # before reseeding: its warm-up batch draws random numbers too
                reseed(self.chain.front, self.seed * 1000 + k)
                return extract(step, images, advance=advance)
            out.append(self._get(name, compute, len(images), f"features of train, augmented view {k + 1}/{views}"))
        return np.stack(out)

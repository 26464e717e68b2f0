"""The model under check: its spec, the sizes it is checked at, its builds (made once each) and test images.

Every build uses ``weights=None``: a pretrained spec is built with random weights, so nothing is downloaded and a
check takes seconds; what depends on the weights' values (accuracy) is not the kit's to check. A build is seeded
as a run seeds it (``keras.utils.set_random_seed`` before the build, as ``training/session.py`` does).
"""

from __future__ import annotations

import numpy as np

SEED = 42
# The size every model is checked at besides its default: small (fast for any backbone), not square (a builder that
# swaps height and width shows), and above the 75 px the smallest keras.applications backbones ask for.
OTHER_SIZE = (96, 128)
# A spec whose model takes one input size only declares it with this tag: the kit then checks it at its default
# size alone instead of failing "builds at another size".
FIXED_SIZE_TAG = "fixed-size"
IMAGES = 8  # a batch of the kit's random images


class NotBuilt(Exception):
    """A check needs a model that did not build (its own check says why); ``cause``: what the builder raised."""

    def __init__(self, message: str, cause: BaseException):
        super().__init__(message)
        self.cause = cause


class Subject:
    """One spec being checked; ``quick`` leaves out the conversions (engines and exports)."""

    def __init__(self, spec, quick: bool = False):
        self.spec, self.quick = spec, quick
        self.default_size = tuple(int(s) for s in spec.defaults.image_size)
        self.fixed_size = FIXED_SIZE_TAG in spec.tags
        self.other_size = None if self.fixed_size else (OTHER_SIZE if OTHER_SIZE != self.default_size
                                                        else OTHER_SIZE[::-1])
        self._built: dict = {}  # (classes, size) -> model or the exception its build raised

    def build(self, classes: int, size: tuple, seed: int = SEED):
        """A fresh model, seeded as a run seeds it."""
        import keras

        keras.utils.set_random_seed(seed)
        return self.spec.build(classes, size, weights=None)

    def model(self, classes: int, size: tuple):
        """The model built once for ``(classes, size)``; :class:`NotBuilt` when that build failed."""
        key = (classes, tuple(size))
        if key not in self._built:
            try:
                self._built[key] = self.build(classes, size)
            except Exception as exc:  # noqa: BLE001 - a plugin's builder may raise anything: its check says it
                self._built[key] = exc
        found = self._built[key]
        if isinstance(found, Exception):
            raise NotBuilt(f"needs the model built with {classes} classes at {shown(size)}, which failed", found)
        return found

    @property
    def work_size(self) -> tuple:
        """The size the other checks run at: the small other size where the model builds there, else its default."""
        if self.other_size is not None:
            try:
                self.model(2, self.other_size)
                return self.other_size
            except NotBuilt:
                pass
        return self.default_size

    def images(self, size: tuple, n: int = IMAGES, seed: int = 0) -> np.ndarray:
        """``n`` random float32 images in [0, 255], as the models take them."""
        return np.random.default_rng(seed).uniform(0, 255, (n, *size, 3)).astype(np.float32)

    def batch(self, size: tuple, classes: int = 2) -> tuple:
        """``(images, labels)`` to train on, as tensors: the same input signature at every step, so Keras traces
        each model's step once."""
        import tensorflow as tf

        return tf.constant(self.images(size)), tf.constant(np.arange(IMAGES) % classes)


def shown(size) -> str:
    return "x".join(str(s) for s in size)

"""Batches for Keras from in-memory arrays, in an order fixed by ``(seed, epoch)``.

The order of epoch ``e`` is a pure function of ``(seed, e)``, so a run resumed at epoch ``e`` sees
exactly the batches it would have seen, and two workers agree on every global batch.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from ..util.rows import take
from .decode import Decoded


class EpochBatches(keras.utils.PyDataset):
    """Batches of ``(float32 x, int32 y)`` from ``views``: V arrays (or on-disk rows) of N items each.

    Each epoch visits every item once, in an order (and, with several views, a choice of view per
    item) drawn from ``numpy.random.default_rng([seed, epoch])``: reproducible, and independent of
    how many epochs ran before in this process.
    """

    def __init__(self, views: np.ndarray, labels, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 first_epoch: int = 0):
        super().__init__()
        self.views, self.labels = views, np.asarray(labels, np.int32)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = first_epoch
        self._begun = False
        self._plan()

    def _plan(self):
        n = len(self.labels)
        rng = np.random.default_rng([self.seed, self.epoch])
        self.order = rng.permutation(n) if self.shuffle else np.arange(n)
        self.view_of = rng.integers(0, len(self.views), size=n) if len(self.views) > 1 else np.zeros(n, int)

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index):
        idx = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return take(self.views, self.view_of[idx], idx).astype(np.float32), self.labels[idx]

    def on_epoch_begin(self):
        # Keras calls this at the start of every epoch; the first call finds the plan made in
        # __init__. (Not on_epoch_end: Keras also calls that once before training starts.)
        if self._begun:
            self.epoch += 1
            self._plan()
        self._begun = True


def batches(decoded: Decoded, batch_size: int, **kwargs) -> EpochBatches:
    """Image batches of a decoded split (``shuffle=True, seed=...`` for training)."""
    return EpochBatches([decoded.images], decoded.split.labels, batch_size, **kwargs)

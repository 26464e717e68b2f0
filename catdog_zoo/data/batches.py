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
        self.order, self.view_of = self._drawn(self.epoch)

    def _drawn(self, epoch: int) -> tuple:
        """``(order, view of each item)`` of ``epoch``."""
        n = len(self.labels)
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        return order, rng.integers(0, len(self.views), size=n) if len(self.views) > 1 else np.zeros(n, int)

    def in_memory(self) -> bool:
        return all(isinstance(view, np.ndarray) for view in self.views)

    def as_dataset(self, epochs: int, repeat: bool = False):
        """The batches of ``epochs`` epochs from the current one, in the same order and views, as one
        ``tf.data`` pipeline over in-memory inputs (:meth:`EpochBatches.in_memory`): no Python per batch, about 2x
        faster for heads on cached features. Give Keras ``steps_per_epoch=len(self)``, so one iterator
        runs through the epochs; ``repeat`` for training, so that Keras, which may look one batch past the
        last epoch, never finds the end (and warns that the input ran out)."""
        import tensorflow as tf

        # One copy, into TensorFlow (inputs here are at most util.rows.in_memory_if_small's 256 MB): a single view
        # gets an axis without being copied, and float32 inputs are not converted again.
        views = (np.asarray(self.views[0])[None] if len(self.views) == 1 else np.stack(self.views))
        inputs = tf.constant(views.astype(np.float32, copy=False))
        labels = tf.constant(self.labels)
        picks = np.stack([np.stack([view_of[order], order], axis=-1)
                          for order, view_of in (self._drawn(e) for e in range(self.epoch, self.epoch + epochs))])
        size = self.batch_size
        batches = (tf.data.Dataset.from_tensor_slices(picks.astype(np.int32))
                   .flat_map(lambda epoch: tf.data.Dataset.from_tensor_slices(epoch).batch(size))
                   .map(lambda p: (tf.gather_nd(inputs, p), tf.gather(labels, p[:, 1]))))
        # flat_map hides the number of batches; Keras needs it to end an evaluation without a warning
        batches = batches.repeat() if repeat else batches.apply(tf.data.experimental.assert_cardinality(
            epochs * len(self)))
        return batches.prefetch(2)

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

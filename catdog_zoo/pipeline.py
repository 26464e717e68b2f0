"""The tf.data pipeline: each image decoded and resized once, then shuffled per epoch, batched, prefetched.

Decoded images are kept in the on-disk cache (:mod:`catdog_zoo.cache`) keyed by the files'
contents and the image size, so later epochs and later runs on the same data never decode again.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import cache
from .splits import Split


def load_image(path, image_size) -> tf.Tensor:
    """One image file as uint8 RGB of ``image_size`` (bilinear, as image_dataset_from_directory)."""
    raw = tf.io.read_file(path)
    image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    image = tf.image.resize(image, image_size, method="bilinear")
    # Kept as uint8: a quarter of the memory of float32 and well within half a grey level.
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _decode_all(paths, size) -> np.ndarray:
    if not paths:
        return np.zeros((0, *size, 3), np.uint8)
    ds = tf.data.Dataset.from_tensor_slices(list(paths))
    ds = ds.map(lambda p: load_image(p, size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return np.concatenate([batch.numpy() for batch in ds.batch(256)])


def decode_split(split: Split, image_size) -> np.ndarray:
    """All images of ``split`` as one uint8 array ``(N, H, W, 3)``, from the cache when possible."""
    size = tuple(int(s) for s in image_size)
    name = cache.key("decoded", files=cache.files_digest(split.paths), size=size)
    return cache.cached(name, lambda: _decode_all(split.paths, size))


def make_dataset(split: Split, image_size, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0) -> tf.data.Dataset:
    """Batches of ``(float32 images in [0, 255], int32 labels)`` for ``split``.

    With ``shuffle`` the order changes every epoch, drawn from a generator seeded by ``seed``.
    """
    images = decode_split(split, image_size)
    ds = tf.data.Dataset.from_tensor_slices((images, np.asarray(split.labels, np.int32)))
    if shuffle:
        ds = ds.shuffle(max(len(split), 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)

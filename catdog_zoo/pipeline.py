"""Images in, batches out: each file is validated and decoded once, then served in seeded epoch orders.

``decode_split`` decodes and resizes every file of a split to uint8 RGB, in parallel, keeping what
decodes and recording why the rest did not (empty, truncated, not an image...). Results live in the
on-disk cache (:mod:`catdog_zoo.cache`) keyed by the files' contents and the image size, so later
epochs and later runs never decode again.

``EpochBatches`` serves batches from such arrays. The order of epoch ``e`` is a pure function of
``(seed, e)``, so a run resumed at epoch ``e`` sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from . import cache
from .progress import SILENT
from .splits import Split


class ImageError(Exception):
    """A file that cannot be used as an image; the message says why."""


def decode_file(path, image_size) -> np.ndarray:
    """One image file as uint8 RGB of ``image_size`` (bilinear, as image_dataset_from_directory).

    The format is read from the content, not the extension; grayscale, RGBA, CMYK, palette and
    16-bit images all become 8-bit RGB.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImageError(f"unreadable: {exc.strerror or exc}") from None
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as exc:
        reason = "truncated or corrupt image" if _looks_like_image(data) else "not an image"
        raise ImageError(f"{reason} ({exc.message.splitlines()[0][-80:].strip()})") from None
    resized = tf.image.resize(image, image_size, method="bilinear")
    # Kept as uint8: a quarter of the memory of float32 and well within half a grey level.
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy()


def _looks_like_image(data: bytes) -> bool:
    signatures = (b"\xff\xd8", b"\x89PNG", b"GIF8", b"BM", b"RIFF")
    return data.startswith(signatures)


@dataclass
class Decoded:
    """A split's usable files (``split``) with their pixels, and the files that were skipped."""

    split: Split
    images: np.ndarray
    digest: str  # content digest of all the files asked for: the cache key of anything derived
    skipped: list = field(default_factory=list)  # [(path, reason)]


def decode_split(split: Split, image_size, progress=SILENT, label: str = "decoding") -> Decoded:
    """Decode (or load from the cache) every file of ``split`` at ``image_size``.

    ``progress`` is a :func:`catdog_zoo.progress.progress_factory`; it reports only real decoding.
    """
    size = tuple(int(s) for s in image_size)
    digest = cache.files_digest(split.paths)
    name = cache.key("decoded", files=digest, size=size)
    images, reasons = cache.load(name), cache.load(name + "-reasons")
    if images is None or reasons is None:
        with progress(label, len(split.paths)) as bar:
            images, reasons = _decode_all(split.paths, size, bar.advance)
        cache.store(name, images)
        cache.store(name + "-reasons", reasons)
    ok = [i for i, r in enumerate(reasons) if not r]
    kept = Split(tuple(split.paths[i] for i in ok), tuple(split.labels[i] for i in ok))
    skipped = [(split.paths[i], str(r)) for i, r in enumerate(reasons) if r]
    return Decoded(kept, images, digest, skipped)


def _decode_all(paths, size, advance=lambda n: None) -> tuple:
    """``(uint8 images of the files that decode, reasons)``; ``reasons[i]`` is "" for a usable file."""

    def one(path):
        try:
            return decode_file(path, size), ""
        except ImageError as exc:
            return None, str(exc)
        finally:
            advance(1)

    # TensorFlow's decoders release the GIL, so threads use every core.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(one, paths))
    good = [image for image, reason in results if not reason]
    images = np.stack(good) if good else np.zeros((0, *size, 3), np.uint8)
    return images, np.array([reason for _, reason in results], dtype=str)


class EpochBatches(keras.utils.PyDataset):
    """Batches of ``(float32 x, int32 y)`` from ``views`` of shape ``(V, N, ...)``.

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
        return self.views[self.view_of[idx], idx].astype(np.float32), self.labels[idx]

    def on_epoch_begin(self):
        # Keras calls this at the start of every epoch; the first call finds the plan made in
        # __init__. (Not on_epoch_end: Keras also calls that once before training starts.)
        if self._begun:
            self.epoch += 1
            self._plan()
        self._begun = True


def batches(decoded: Decoded, batch_size: int, **kwargs) -> EpochBatches:
    """Image batches of a decoded split (``shuffle=True, seed=...`` for training)."""
    return EpochBatches(decoded.images[np.newaxis], decoded.split.labels, batch_size, **kwargs)


def describe_skipped(skipped, shown: int = 3) -> str:
    """"skipped 4 files ...: a.jpg (empty file), ... and 1 more" for warnings and --strict errors."""
    named = ", ".join(f"{path} ({reason})" for path, reason in skipped[:shown])
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (f"skipped {len(skipped)} file(s) that are not usable images: {named}{more}; "
            "'catdog-zoo data check' lists every problem")

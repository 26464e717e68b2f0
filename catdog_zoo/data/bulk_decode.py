"""A split's files decoded in bulk: one ``tf.data`` pipeline for the JPEGs and PNGs within the limits, on every
core, and the rest one by one (which says why a file is not usable), in the files' order."""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from . import limits
from .formats import declared_pixels
from .pixels import pixels


@functools.lru_cache(maxsize=8)
def _file_decoder(size, max_pixels: int):
    """A file's pixels, read and decoded in the graph once its header shows it within ``max_pixels``; traced
    once per size (0.13 s), not once per split."""
    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def one(path):
        data = tf.io.read_file(path)
        fits = tf.debugging.assert_less_equal(declared_pixels(data, max_pixels + 1), tf.constant(max_pixels, tf.int64))
        with tf.control_dependencies([fits]):
            return pixels(tf.identity(data), size)
    return one


def _graph_decoded(paths, size, batch: int = 32):
    """``(indices, uint8 images)`` batches of the files one ``tf.data`` pipeline decodes, in order, on every
    core without the GIL (2x the files per second of a thread per core calling in from Python).

    Only JPEG and PNG files within the limits are decoded here (the limits checked from the header, in the
    graph, before any pixel is decoded); a file that fails any step is left out, and the caller decodes it
    one by one, which says why.
    """
    def sized(path):
        try:
            return 0 < os.stat(path).st_size <= limits.MAX_FILE_BYTES
        except (OSError, ValueError):
            return False
    index = np.array([i for i, p in enumerate(paths) if sized(p)], np.int64)

    one = _file_decoder(size, limits.MAX_PIXELS)
    files = tf.constant([os.fsencode(paths[i]) for i in index], tf.string, shape=[len(index)])
    # Prefetching a few batches keeps decoding while the caller writes what it has to the cache.
    pipeline = (tf.data.Dataset.from_tensor_slices((index, files))
                .map(lambda i, path: (i, one(path)), num_parallel_calls=os.cpu_count() or 1, deterministic=True)
                .ignore_errors(log_warning=False).batch(batch).prefetch(4))
    for indices, images in pipeline:
        yield indices.numpy(), images.numpy()


def decoded_in_order(paths, size, one, chunk: int):
    """``one(path)``'s kind of result, ``(pixels, "")`` or ``(None, reason)``, for every path in order: the
    graph pipeline decodes what it can and ``one`` (run on a thread per core, ``chunk`` files at a time)
    whatever it left out, so a file's verdict and pixels are the same whichever path took it."""
    size = tuple(int(s) for s in size)
    done = 0
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        def by_hand(stop):
            for start in range(done, stop, chunk):
                yield from pool.map(one, paths[start:min(stop, start + chunk)])
        batches = _graph_decoded(paths, size)
        while True:
            try:
                indices, images = next(batches)
            except StopIteration:
                break
            except (tf.errors.OpError, OSError, RuntimeError):  # the pipeline itself failed (no file descriptors
                break  # left, say): whatever it has not given is decoded by hand, which tells each file's reason
            for i, image in zip(indices, images):
                yield from by_hand(int(i))
                yield image, ""
                done = int(i) + 1
        yield from by_hand(len(paths))

"""Cosine similarity between feature vectors, a block of rows at a time (memory stays bounded).

Used by everything that asks "is this photo like those?": rejecting what is neither class
(:mod:`catdog_zoo.runs.rejection`), and the audit's duplicates and off-topic photos.

Features of a pretrained backbone share a large common component (every photo excites the same
ImageNet-generic channels), so raw cosine similarities crowd together near 1. Subtracting the mean
feature of the photos at hand (``centre``) leaves the directions that tell photos apart: in our
measurements it is what separates "a breed never seen in training" from "not a cat or dog at all"
(docs/trusting-results.md).
"""

from __future__ import annotations

import numpy as np

BLOCK = 2048  # rows compared at once: a BLOCK x len(bank) float32 matrix at a time


def unit_rows(x, centre=None) -> np.ndarray:
    """``x`` (minus ``centre``) with every row scaled to length 1, float32; a zero row stays zero."""
    x = np.asarray(x, np.float32)
    if centre is not None:
        x = x - np.asarray(centre, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


def cosines(rows, others) -> np.ndarray:
    """``rows @ others.T`` as a float32 array, computed by TensorFlow rather than NumPy: NumPy's OpenBLAS
    threads keep spinning on the cores for a while after each product, which starves whatever runs next
    (``serve`` scoring a request after the rejection check got a third slower); TensorFlow's threads park."""
    import tensorflow as tf

    return tf.linalg.matmul(rows, others, transpose_b=True).numpy()


def nearest(queries, bank, k: int = 1, exclude_self: bool = False) -> tuple:
    """``(similarities, indices)``, each ``(len(queries), k)``: the ``k`` most similar rows of ``bank`` to each
    query, most similar first. Both must be unit rows (:func:`unit_rows`). ``exclude_self``: queries *are* the
    bank, and a row is not its own neighbour."""
    queries, bank = np.asarray(queries, np.float32), np.asarray(bank, np.float32)
    k = min(k, len(bank) - (1 if exclude_self else 0))
    sims = np.empty((len(queries), max(k, 0)), np.float32)
    index = np.empty((len(queries), max(k, 0)), np.int64)
    if k <= 0:
        return sims, index
    for start in range(0, len(queries), BLOCK):
        block = cosines(queries[start:start + BLOCK], bank)
        if exclude_self:
            rows = np.arange(len(block))
            block[rows, start + rows] = -np.inf
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        sims[start:start + BLOCK] = np.take_along_axis(top_sims, order, axis=1)
        index[start:start + BLOCK] = np.take_along_axis(top, order, axis=1)
    return sims, index


def pairs_above(rows, threshold: float, others=None) -> list:
    """``[(i, j, similarity)]`` for every pair of unit rows at least ``threshold`` alike: within ``rows``
    (``i < j``), or between ``rows`` (``i``) and ``others`` (``j``)."""
    rows = np.asarray(rows, np.float32)
    within = others is None
    others = rows if within else np.asarray(others, np.float32)
    found = []
    for start in range(0, len(rows), BLOCK):
        block = cosines(rows[start:start + BLOCK], others)
        if within:  # each pair once, never an item with itself
            block[np.tril_indices(len(block), k=start, m=len(others))] = -np.inf
        for i, j in zip(*np.nonzero(block >= threshold)):
            found.append((start + int(i), int(j), float(block[i, j])))
    return found

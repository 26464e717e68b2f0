"""Restarting Keras' random layers from a chosen seed, so random draws depend on what they are for.

Dropout and augmentation draws of epoch ``e`` depend on ``(seed, e)`` only, and augmented view ``k`` of
the feature cache on ``(seed, k, batch)`` only: a resumed run, or a run with a warm cache, repeats them exactly.
"""

from __future__ import annotations

import numpy as np


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


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s dropout and augmentation draws."""
    return seed * 100_003 + epoch * 1_009


def view_seed(seed: int, view: int) -> int:
    """The seed of augmented view ``view`` in the feature cache."""
    return seed * 1000 + view


def batch_seed(seed: int, batch: int) -> int:
    """The seed of extraction batch ``batch`` of a view seeded ``seed``: each batch's draws depend on its
    number only, so workers that each extract a share of the images draw what one process would."""
    # reseed gives the n-th generator seed + n: a stride of 1000 keeps batches' generators apart.
    return (seed * 100_003 + batch) * 1_000

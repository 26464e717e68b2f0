"""A hint at training time: validation or test photos that are near-copies of training photos.

Such a copy is scored as if it were new, so the validation and test accuracy a run reports are inflated.
The features a head trains on are enough to find them (``models.duplicates``); ``catdog-zoo audit`` lists them.
"""

from __future__ import annotations

import shlex

import numpy as np

from ..models.duplicates import near_duplicate_pairs
from ..util.names import terminal
from ..util.rows import take


def leakage_hint(decoded: dict, features: dict, data_root) -> str | None:
    """One line naming how many held-out photos are near-copies of training photos (and one such pair), or None.
    ``features``: un-augmented rows per split, as the head's stage has them."""
    train = np.asarray(features["train"][:], np.float32)
    names = [name for name in ("validation", "test") if len(decoded[name].split)]
    if not len(train) or not names:
        return None
    held = np.concatenate([np.asarray(features[name][:], np.float32) for name in names])
    which = np.concatenate([np.full(len(decoded[name].split), v) for v, name in enumerate(names)])
    index = np.concatenate([np.arange(len(decoded[name].split)) for name in names])
    views = [decoded[name].images for name in names]

    def train_pixels(indices):  # rows gathered in one read (cached pixels) or one parallel decode (on the fly)
        return np.asarray(decoded["train"].images[np.asarray(indices, np.int64)])

    def held_pixels(indices):
        return take(views, which[indices], index[indices])
    pairs = near_duplicate_pairs(train, train_pixels, held, held_pixels)
    if not pairs:
        return None
    copies = sorted({j for _, j, _ in pairs})
    i, j, _ = max(pairs, key=lambda p: p[2])
    name, k = names[which[j]], index[j]
    example = f"{terminal(decoded['train'].split.paths[i])} ~ {terminal(decoded[name].split.paths[k])}"
    return (f"Hint: {len(copies)} validation/test images look like near-copies of training images (e.g. {example}); "
            f"their scores are inflated: 'catdog-zoo audit --data {terminal(shlex.quote(str(data_root)))}' lists them")

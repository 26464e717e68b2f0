"""A hint at training time: validation or test photos that are near-copies of training photos.

Such a copy is scored as if it were new, so the validation and test accuracy a run reports are inflated.
The features a head trains on are enough to find them (``models.duplicates``); ``catdog-zoo audit`` lists them.
"""

from __future__ import annotations

import numpy as np

from ..models.duplicates import near_duplicate_pairs
from ..util.names import terminal


def leakage_hint(decoded: dict, features: dict, data_root) -> str | None:
    """One line naming how many held-out photos are near-copies of training photos (and one such pair), or None.
    ``features``: un-augmented rows per split, as the head's stage has them."""
    train = np.asarray(features["train"][:], np.float32)
    held, where = [], []
    for name in ("validation", "test"):
        rows = np.asarray(features[name][:], np.float32)
        held.append(rows)
        where += [(name, i) for i in range(len(rows))]
    if not len(train) or not where:
        return None

    def pixels(split):
        return lambda indices: np.stack([np.asarray(decoded[split].images[i]) for i in indices])

    def held_pixels(indices):
        return np.stack([np.asarray(decoded[where[k][0]].images[where[k][1]]) for k in indices])
    pairs = near_duplicate_pairs(train, pixels("train"), np.concatenate(held), held_pixels)
    if not pairs:
        return None
    copies = sorted({j for _, j, _ in pairs})
    i, j, _ = max(pairs, key=lambda p: p[2])
    name, k = where[j]
    example = f"{terminal(decoded['train'].split.paths[i])} ~ {terminal(decoded[name].split.paths[k])}"
    return (f"Hint: {len(copies)} validation/test images look like near-copies of training images (e.g. {example}); "
            f"their scores are inflated: 'catdog-zoo audit --data {terminal(data_root)}' lists them")

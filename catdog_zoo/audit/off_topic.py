"""Off-topic photos: unlike every class of the dataset (neither cat nor dog).

A photo's score is one minus its similarity to the class it is most like, where a class's similarity is the
mean cosine (centred backbone features) of the photo's 3 most similar *other* photos of that class: a few
off-topic photos that look alike cannot vouch for each other, as a single nearest neighbour would. Scores
are judged against the dataset's own spread: ``flagged`` when more than :data:`FLAG_AT` robust standard
deviations (median and MAD) above the median; photos above :data:`LIST_FROM` are listed.
"""

from __future__ import annotations

import numpy as np

from ..models.similarity import nearest, unit_rows

NEIGHBOURS = 3
FLAG_AT = 3.0
LIST_FROM = 2.0


def scores(features, labels, num_classes: int) -> np.ndarray:
    """``(N,)``: 1 - the photo's similarity to the class it is most like."""
    labels = np.asarray(labels, int)
    rows = unit_rows(features, np.mean(features, axis=0))
    best = np.full(len(rows), -np.inf, np.float32)
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if not len(members):
            continue
        sims, index = nearest(rows, rows[members], k=NEIGHBOURS + 1)
        # a photo of this class is not its own neighbour: drop it, keep the next NEIGHBOURS
        own = members[index] == np.arange(len(rows))[:, None]
        sims = np.where(own, np.nan, sims)
        kept = np.sort(np.nan_to_num(sims, nan=-np.inf), axis=1)[:, ::-1][:, :NEIGHBOURS]
        finite = np.where(np.isfinite(kept), kept, np.nan)
        with np.errstate(all="ignore"):
            best = np.fmax(best, np.nanmean(finite, axis=1))
    return 1.0 - np.where(np.isfinite(best), best, -1.0)


def robust_z(values) -> np.ndarray:
    """How many robust standard deviations (1.4826 x MAD) each value is above the median."""
    values = np.asarray(values, np.float64)
    median = np.median(values)
    spread = 1.4826 * np.median(np.abs(values - median))
    return (values - median) / (spread if spread > 0 else 1.0)

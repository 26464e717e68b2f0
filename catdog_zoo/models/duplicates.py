"""Near-duplicate photos: the same picture re-encoded, resized, slightly cropped or mirrored.

Two signals, each weak alone, together sharp: the backbone's pooled features (what the photo shows: a
resize or a re-encoding barely moves them, but two different photos of one kind of cat come close too)
and a 28x28 grey thumbnail (how the photo is laid out: different photos of one scene rarely match, a
crop of a few percent still does). A pair is a near-duplicate when the mean of the two similarities
reaches :data:`THRESHOLD`; only pairs whose features are already alike (:data:`CANDIDATE`) are looked at,
so thumbnails are made for a few images, not all. Both thresholds were set on cats_and_dogs_filtered with
copies planted by ``bench/plant_defects.py`` (docs/trusting-results.md).
"""

from __future__ import annotations

import numpy as np

from .similarity import pairs_above, unit_rows

CANDIDATE = 0.75  # feature cosine at which a pair is looked at
THRESHOLD = 0.80  # mean of feature cosine and thumbnail correlation at which it is a near-duplicate
THUMB = 28


def thumbnails(images) -> np.ndarray:
    """``(N, THUMB*THUMB)`` zero-mean unit rows of grey thumbnails of uint8 images, and of their mirror images
    as ``(N, 2, THUMB*THUMB)``: a mirrored copy is a copy too."""
    import tensorflow as tf

    x = tf.reduce_mean(tf.cast(np.asarray(images), tf.float32), axis=-1, keepdims=True)
    small = tf.image.resize(x, (THUMB, THUMB), method="area").numpy()[..., 0]
    both = np.stack([small, small[:, :, ::-1]], axis=1).reshape(len(small), 2, -1)
    both = both - both.mean(axis=2, keepdims=True)
    norms = np.linalg.norm(both, axis=2, keepdims=True)
    return both / np.where(norms > 0, norms, 1)


def near_duplicate_pairs(features, pixels_of, others=None, others_pixels_of=None) -> list:
    """``[(i, j, similarity)]``: near-duplicate pairs within ``features`` (``i < j``), or between ``features``
    (``i``) and ``others`` (``j``). ``pixels_of(indices)`` gives the uint8 images of those rows."""
    mine = unit_rows(features)
    theirs = None if others is None else unit_rows(others)
    candidates = pairs_above(mine, CANDIDATE, theirs)
    if not candidates:
        return []
    left = sorted({i for i, _, _ in candidates})
    right = sorted({j for _, j, _ in candidates})
    thumbs_left = dict(zip(left, _thumbs(pixels_of, left)))
    thumbs_right = thumbs_left if others is None else dict(zip(right, _thumbs(others_pixels_of, right)))
    if others is None:
        missing = [j for j in right if j not in thumbs_left]
        thumbs_left.update(zip(missing, _thumbs(pixels_of, missing)))
    found = []
    for i, j, cosine in candidates:
        # the straight thumbnail of one against the straight and the mirrored of the other
        layout = float(np.max(thumbs_right[j] @ thumbs_left[i][0]))
        similarity = (cosine + layout) / 2
        if similarity >= THRESHOLD:
            found.append((i, j, round(similarity, 4)))
    return found


def _thumbs(pixels_of, indices) -> list:
    out = []
    for start in range(0, len(indices), 256):
        out.extend(thumbnails(pixels_of(indices[start:start + 256])))
    return out


def groups(pairs, count: int) -> list:
    """Pairs joined into groups (union-find): ``[(members sorted, highest similarity)]``, largest first."""
    parent = list(range(count))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    best = {}
    for i, j, similarity in pairs:
        a, b = root(i), root(j)
        if a != b:
            parent[b] = a
    for i, j, similarity in pairs:
        r = root(i)
        best[r] = max(best.get(r, 0.0), similarity)
    members = {}
    for i in {k for i, j, _ in pairs for k in (i, j)}:
        members.setdefault(root(i), []).append(i)
    return sorted(((sorted(m), best[r]) for r, m in members.items()), key=lambda g: (-len(g[0]), -g[1]))

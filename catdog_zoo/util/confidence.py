"""How far an accuracy measured on n images can be trusted: decided once, here, for every number printed.

An accuracy is a count of right answers out of ``n`` images; with few images it says little ("test_accuracy
1.0000" on 4 images is as consistent with a model right 60% of the time). Two things follow from ``n``:

- :func:`wilson_interval`: the 95% Wilson score interval of the accuracy, shown beside every accuracy the
  zoo prints or reports (train's summary, ``evaluate``, report.html, ``compare``) and kept in
  ``metrics.json``. Wilson's interval, not the normal approximation's ``p +/- 1.96 sqrt(p(1-p)/n)``, which
  collapses to a width of zero at 0% and 100% and leaves [0, 1] on small ``n``.
- :func:`too_small`: **the** rule for a split too small to mean much (fewer than :data:`SMALL_SPLIT`
  images, where one image moves accuracy by more than a point), and :func:`small_splits_text`, its words;
  ``train``, report.html, ``evaluate``, ``compare`` and ``audit`` all say it through these.
"""

from __future__ import annotations

import math
from typing import Optional

SMALL_SPLIT = 100  # fewer images than this and one image moves accuracy by more than a point
Z_95 = 1.959963984540054  # the standard normal's 97.5% point: a two-sided 95% interval
LEVEL = 0.95


def wilson_interval(right: int, n: int, z: float = Z_95) -> Optional[tuple]:
    """``(low, high)``: the Wilson score interval of ``right`` successes out of ``n`` (None when ``n`` is 0)."""
    if n <= 0:
        return None
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(accuracy: Optional[float], n: Optional[int]) -> Optional[list]:
    """The 95% interval of an ``accuracy`` measured on ``n`` images, rounded for a record (``[low, high]``), or
    None when either is unknown. The accuracy is a count over ``n``: its successes are ``round(accuracy * n)``."""
    if accuracy is None or not n:
        return None
    low, high = wilson_interval(round(accuracy * n), n)
    return [round(low, 4), round(high, 4)]


def interval_text(interval, percent: bool = False) -> str:
    """``"95% CI 0.7575-1.0000"`` (``percent``: ``"95% CI 75.8-100.0%"``); ``""`` for no interval."""
    if not interval:
        return ""
    low, high = interval
    if percent:
        return f"95% CI {low * 100:.1f}-{high * 100:.1f}%"
    return f"95% CI {low:.4f}-{high:.4f}"


def too_small(n: Optional[int]) -> bool:
    """Whether a split of ``n`` images is too small for its accuracy to mean much (an empty one is said apart)."""
    return n is not None and 0 < n < SMALL_SPLIT


def widest_interval(n: int) -> float:
    """How wide, in points, the 95% interval of an accuracy on ``n`` images gets (at 50%, its widest)."""
    low, high = wilson_interval(round(n / 2), n)
    return (high - low) * 100


def small_split_text(split: str, n: int) -> str:
    """Why a ``split`` of ``n`` images (``"all"``: every image of a folder) says little, in words."""
    return small_splits_text({split: n})


def small_splits_text(sizes: dict):
    """Why the splits of ``sizes`` (name -> images) that are :func:`too_small` say little, in one sentence: what
    one image weighs, and how wide a 95% interval gets (on the smallest); None when none is too small."""
    small = {name: n for name, n in sizes.items() if too_small(n)}
    if not small:
        return None
    n = min(small.values())
    weight = f"one image moves it by {100 / n:.1f} points{' or more' if len(set(small.values())) > 1 else ''}"
    if len(small) > 1:
        names, counts = " and ".join(small), " and ".join(map(str, small.values()))
        return (f"the {names} splits have {counts} images, too few for their accuracy to mean much ({weight}; a 95% "
                f"interval is up to {widest_interval(n):.0f} points wide)")
    split = next(iter(small))
    subject = f"the folder has {n} images" if split == "all" else f"the {split} split has {n} images"
    return (f"{subject}, too few for its accuracy to mean much ({weight}; its 95% interval is up to "
            f"{widest_interval(n):.0f} points wide)")

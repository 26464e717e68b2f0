"""What the cache keeps of a split's decoding: its pixels (``decoded_cache``: auto, keep, drop) or only each file's
verdict, under a key of the files' content, the size and the limits that judged them."""

from __future__ import annotations

import numpy as np

from . import cache, limits


KEEP_BYTES = 2 << 30  # decoded_cache "auto": keep a split's pixels up to this size


def keeps_pixels(policy: str, count: int, size) -> bool:
    """Whether ``decoded_cache=policy`` keeps the pixels of ``count`` images of ``size`` between runs.

    Kept pixels save decoding in later runs that read them (training on images, new augmented views);
    but a large dataset's pixels take several times its JPEGs on disk (150 KB an image at 224 px against
    about 25 KB) and a run on cached features reads them once, so past 2 GiB they are not kept.
    """
    return policy == "keep" or (policy == "auto" and count * size[0] * size[1] * 3 <= KEEP_BYTES)


def decoded_key(files_digest_: str, size) -> str:
    """The cache key of the decoded pixels and verdicts of files with this content digest at ``size``."""
    return cache.key("decoded", files=files_digest_, size=tuple(size), limits=[limits.MAX_PIXELS, limits.MAX_FILE_BYTES])


def verdicts(entry, count: int, size):
    """A verified entry's per-file verdicts, when they fit ``count`` files and the entry's rows; else None."""
    if entry is None:
        return None
    reasons = entry.meta.get("reasons")
    if (not isinstance(reasons, list) or len(reasons) != count or not all(isinstance(r, str) for r in reasons)
            or entry.shape != (sum(1 for r in reasons if not r), *size, 3) or entry.dtype != np.uint8):
        return None
    return reasons

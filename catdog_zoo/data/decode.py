"""A split's files in, uint8 pixels out: each file is validated and decoded once.

``decode_split`` decodes and resizes every file of a split to uint8 RGB (:mod:`.bulk_decode`), keeping what
decodes and recording why the rest did not (empty, truncated, not an image...). Results live in the on-disk
cache (:mod:`.decoded_cache` decides what is kept, under which key), so later epochs and later runs never decode
again. One file's decoding is :mod:`.pixels`; what a file may be, :mod:`.limits` and :mod:`.formats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..util.digest import checked_files_digest
from ..util.names import terminal
from ..util.progress import SILENT
from . import cache
from .bulk_decode import decoded_in_order
from .decoded_cache import decoded_key, keeps_pixels, verdicts
from .limits import ImageError
from .on_the_fly import DecodedOnTheFly
from .pixels import decode_file
from .splits import Split


@dataclass
class Decoded:
    """A split's usable files (``split``) with their pixels, and the files that were skipped.

    ``images`` is read from disk on demand (:class:`~catdog_zoo.util.rows.FileRows`) or, when the cache
    cannot be written, an array: index it by rows (a batch at a time), never whole.
    """

    split: Split
    images: object
    digest: str  # content digest of all the files asked for: the cache key of anything derived
    skipped: list = field(default_factory=list)  # [(path, reason)]


DECODE_CHUNK = 256  # images decoded between two writes: what decoding holds in memory


def decode_split(split: Split, image_size, progress=SILENT, label: str = "decoding", keep: str = "auto") -> Decoded:
    """Decode (or load from the cache) every file of ``split`` at ``image_size``.

    ``progress`` is a :func:`catdog_zoo.util.progress.progress_factory`; it reports only real decoding.
    ``keep``: the ``decoded_cache`` policy (:func:`keeps_pixels`). When pixels are not kept, the cache keeps
    each file's verdict; a later run then decodes only the pixels it reads (:class:`DecodedOnTheFly`).
    """
    size = tuple(int(s) for s in image_size)
    digest, readable = checked_files_digest(split.paths)
    name = decoded_key(digest, size)
    if not keeps_pixels(keep, len(split.paths), size):
        return _decode_unkept(split, size, digest, readable, progress, label)
    images = cache.load(name) if readable else None
    reasons = verdicts(images, len(split.paths), size)
    if reasons is None:
        if images is not None:
            cache.warn(f"cache entry {name} does not describe these {len(split.paths)} files; decoding again")
        with progress(label, len(split.paths)) as bar:
            images, reasons = _decode_all(split.paths, size, name, bar.advance, store=readable)
    return _decoded(split, images, reasons, digest)


def _decoded(split: Split, images, reasons, digest: str) -> Decoded:
    ok = [i for i, r in enumerate(reasons) if not r]
    kept = Split(tuple(split.paths[i] for i in ok), tuple(split.labels[i] for i in ok))
    skipped = [(split.paths[i], str(r)) for i, r in enumerate(reasons) if r]
    return Decoded(kept, images, digest, skipped)


def _decode_unkept(split: Split, size, digest: str, readable: bool, progress, label: str) -> Decoded:
    """``decoded_cache`` says drop: the verdicts are cached (an entry of no rows), the pixels are not."""
    name = decoded_key(digest, size) + "-verdicts"
    entry = cache.load(name) if readable else None
    reasons = entry.meta.get("reasons") if entry is not None and entry.shape == (0,) else None
    if isinstance(reasons, list) and len(reasons) == len(split.paths) and all(isinstance(r, str) for r in reasons):
        entry.close()
        usable = [p for p, r in zip(split.paths, reasons) if not r]
        return _decoded(split, DecodedOnTheFly(usable, size), reasons, digest)
    with progress(label, len(split.paths)) as bar:  # this run reads them from a file removed when it ends
        images, reasons = _decode_all(split.paths, size, name, bar.advance, store=False)
    if readable and not getattr(images, "transient", False):
        cache.store(name, np.zeros((0,), np.uint8), reasons=reasons)
    return _decoded(split, images, reasons, digest)


def _decode_all(paths, size, name, advance=lambda n: None, store: bool = True) -> tuple:
    """``(uint8 images of the files that decode, reasons)``; ``reasons[i]`` is "" for a usable file.

    Decoded a chunk at a time straight into the cache entry, so memory holds one chunk, whatever the
    number of files. A file that failed for a transient reason is skipped this time, but the entry is
    not kept: the next run tries it again.
    """
    reasons, transient = [], []

    def one(path):
        try:
            return decode_file(path, size), ""
        except ImageError as exc:
            if exc.transient:
                transient.append(path)
            return None, str(exc)

    with cache.writing(name, (*size, 3), np.uint8) as out:
        good = []
        for image, reason in decoded_in_order(paths, size, one, DECODE_CHUNK):
            reasons.append(reason)
            advance(1)
            if not reason:
                good.append(image)
            if len(good) == DECODE_CHUNK:
                out.append(np.stack(good))
                good = []
        if good:
            out.append(np.stack(good))
        if transient:
            cache.warn(f"{len(transient)} file(s) could not be read this time ({reasons[paths.index(transient[0])]}); "
                       "they are skipped in this run and tried again in the next")
        images = out.commit(store=store and not transient, reasons=reasons)
        if transient and hasattr(images, "meta"):
            images.transient = True  # nothing derived from this pass may be kept either
        return images, reasons


def describe_skipped(skipped, shown: int = 3) -> str:
    """"skipped 4 files ...: a.jpg (empty file), ... and 1 more" for warnings and --strict errors."""
    named = ", ".join(f"{terminal(path)} ({terminal(reason)})" for path, reason in skipped[:shown])
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (f"skipped {len(skipped)} file(s) that are not usable images: {named}{more}; "
            "'catdog-zoo data check' lists every problem")

"""What one image file may be: its size on disk and the pixels its header declares, within limits a user can
raise (``$CATDOG_ZOO_MAX_IMAGE_BYTES``, ``$CATDOG_ZOO_MAX_PIXELS``), checked before anything is decoded."""

from __future__ import annotations

import os
import sys

from ..util.system import size_text
from . import cache
from .formats import declared_size


class ImageError(Exception):
    """A file that cannot be used as an image; the message says why. ``transient``: the reason is the
    system's state (too many open files, an I/O error), not the file's content, so it is never cached."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def _limit(kind: str, default: int) -> int:
    text = os.environ.get(LIMIT_ENV[kind])
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:  # "abc", and a number of more than 4300 digits
        value = 0
    if value < 1:  # said, not ignored: the user meant to change a limit
        print(f"Warning: ${LIMIT_ENV[kind]}={text[:40]!r} is not a positive whole number; using {default}",
              file=sys.stderr)
        return default
    if value > LIMIT_CEILING[kind]:  # past what the decoders (int64 in the graph) and a read can take
        print(f"Warning: ${LIMIT_ENV[kind]}={text[:40]} is more than any image can use; using "
              f"{LIMIT_CEILING[kind]}", file=sys.stderr)
        return LIMIT_CEILING[kind]
    return value


LIMIT_ENV = {"pixels": "CATDOG_ZOO_MAX_PIXELS", "bytes": "CATDOG_ZOO_MAX_IMAGE_BYTES"}
# The most either may be raised to: libjpeg and PNG sides are at most 2^31 (so 2^62 pixels would still fit in an
# int64), and an image file of 64 GiB already needs a machine that can hold it.
LIMIT_CEILING = {"pixels": 1 << 40, "bytes": 64 << 30}
# Decoding holds the pixels as uint8 and, to resize, as float32: 50 MP is about 750 MB per decoding thread,
# and above the 12-48 MP of phone and most camera photos (a 61 MP camera's full size needs it raised).
MAX_PIXELS = _limit("pixels", 50_000_000)
MAX_FILE_BYTES = _limit("bytes", 200 << 20)


def read_image_file(path) -> bytes:
    """A file's bytes, refused before reading past :data:`MAX_FILE_BYTES` (and if it grows past it meanwhile)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:  # checked before reading: the file is read into memory whole
                raise ImageError(f"{size_text(size)}, larger than the {size_text(MAX_FILE_BYTES)} an image file may "
                                 f"have (${LIMIT_ENV['bytes']} raises it)")
            # What the file holds, not the limit: Python allocates the size asked for before reading.
            data = f.read(size + 1)
            if len(data) > size:  # it grew since: read on, up to the limit
                data += f.read(MAX_FILE_BYTES + 1 - len(data))
            if len(data) > MAX_FILE_BYTES:
                raise ImageError(f"larger than the {size_text(MAX_FILE_BYTES)} an image file may have "
                                 f"(${LIMIT_ENV['bytes']} raises it)")
    except OSError as exc:
        raise ImageError(f"unreadable: {exc.strerror or exc}", transient=exc.errno in cache.TRANSIENT) from None
    return data


def check_pixels(data: bytes) -> None:
    """Refuse, from the header alone, an image whose pixels would not fit the limit (a 64 KB PNG can
    declare 23000x23000 pixels: 1.6 GB decoded)."""
    size = declared_size(data)
    if size is None:
        return  # no header anyone can read: TensorFlow's decoder gives the verdict
    if size == "huge":
        raise ImageError(f"declares more than 179 million pixels, more than the {MAX_PIXELS / 1e6:g} million an "
                         f"image may have (${LIMIT_ENV['pixels']} raises it)")
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"declares {width}x{height} pixels, more than the {MAX_PIXELS / 1e6:g} million an image "
                         f"may have (${LIMIT_ENV['pixels']} raises it)")

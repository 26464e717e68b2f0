"""SHA-256 digests of arrays and of file contents: equal digests mean identical bytes."""

from __future__ import annotations

import hashlib
import os

import numpy as np

CHUNK = 1 << 20  # files are hashed in 1 MiB pieces, never read whole
UNREADABLE = b"\0unreadable\0"  # how the digest of a file that could not be read begins


def arrays_digest(arrays) -> str:
    """SHA-256 over the bytes of ``arrays`` in order: equal digests mean bit-identical arrays."""
    h = hashlib.sha256()
    for array in arrays:
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def files_digest(paths) -> str:
    """SHA-256 over the contents of ``paths`` in order: same images, same digest, wherever they live."""
    return checked_files_digest(paths)[0]


def checked_files_digest(paths) -> tuple:
    """``(files_digest(paths), every file could be read)``: a digest of a file that could not be read
    describes the failure, not the content, so nothing computed then should be kept under it."""
    # Size and mtime in the memo key: a file changed within this process is hashed again.
    stamped = tuple((str(p), *_stamp(p)) for p in paths)
    if stamped not in _MEMO:
        digest, readable = _files_digest(stamped)
        if not readable:  # a file that failed to read may read next time: nothing remembered
            return digest, False
        if len(_MEMO) >= 16:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[stamped] = digest
    return _MEMO[stamped], True


def _stamp(path) -> tuple:
    try:
        st = os.stat(path)
    except OSError as exc:
        return -1, exc.errno
    return st.st_size, st.st_mtime_ns


def file_digest(path) -> bytes:
    """SHA-256 of one file's content, read in chunks. A file that cannot be read gets a digest of why
    (decoding then says so for it): it never matches a readable file's, so nothing computed from its
    content is reused for it, or from it once it reads again."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
    except OSError as exc:
        return UNREADABLE + hashlib.sha256(f"unreadable: errno {exc.errno}".encode()).digest()[len(UNREADABLE):]
    return h.digest()


_MEMO: dict = {}  # one training run asks for each split's digest several times


def _files_digest(stamped: tuple) -> tuple:
    """``(digest, every file was readable)``."""
    h, readable = hashlib.sha256(), True
    for p, _, _ in stamped:
        one = file_digest(p)
        readable = readable and not one.startswith(UNREADABLE)
        h.update(one)
    return h.hexdigest(), readable

"""An on-disk cache of arrays (decoded images, backbone features), keyed by everything they depend on, and
checked before every use.

Entries live under ``$CATDOG_ZOO_CACHE`` (default ``$XDG_CACHE_HOME/catdog-zoo`` or
``~/.cache/catdog-zoo``), one file each, named by a SHA-256 key of what they depend on. Keys can be
computed by anyone, so a key proves nothing about content: each file ends with a trailer naming the
entry, its shape, dtype and whatever the writer needs to check it (``meta``, for instance the verdict of
every decoded file), and a MAC over content and trailer made with a secret only this user can read
(:mod:`.cache_secret`). An entry whose trailer, size or MAC does not match (damaged, truncated, copied
from another key, planted) is recomputed after one warning line. Deleting the folder is always safe.

Entries are written batch by batch (:func:`writing`), so the largest never has to fit in memory, into a
temporary file renamed into place when complete: a killed writer never leaves an entry that is later
trusted, and the next writer removes its leftovers. They are read the same way, as
:class:`~catdog_zoo.util.rows.FileRows`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import math
import os
import stat
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..util.rows import FileRows
from .cache_secret import secret

CACHE_ENV = "CATDOG_ZOO_CACHE"
# Bump when the decoding or feature code changes what an entry holds.
FORMAT_VERSION = 3  # 3: one verified file per entry (trailer + MAC), written and read in batches
SUFFIX = ".entry"
_MAGIC = b"CDZOO-E3"
_TAIL = struct.Struct("<Q8s")  # trailer length, magic: the last 16 bytes of every entry
MAX_TRAILER = 64 << 20
_DTYPES = {"uint8", "int32", "int64", "float32", "float64"}
# Errors that say nothing about a file's content: a run that saw one must not cache its verdicts.
TRANSIENT = {errno.EMFILE, errno.ENFILE, errno.EIO, errno.EAGAIN, errno.ENOMEM, errno.EINTR, errno.ETIMEDOUT,
             errno.ESTALE, errno.ENOBUFS}


class BadEntry(Exception):
    """A cache file that must not be used; the message says why."""


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "catdog-zoo"


def key(kind: str, **parts) -> str:
    """A stable key for an entry of ``kind`` from JSON-able ``parts``."""
    blob = json.dumps({"kind": kind, "format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:32]}"


def warn(text: str) -> None:
    print(f"Warning: {text}", file=sys.stderr, flush=True)


def load(name: str):
    """The entry called ``name`` as :class:`FileRows` (its ``meta`` attached), or None when absent or failing
    its check (said in one line; the caller recomputes it)."""
    path = cache_root() / f"{name}{SUFFIX}"
    try:
        return _open_checked(path, name)
    except FileNotFoundError:
        return None
    except BadEntry as exc:
        warn(f"cache entry {path} failed its check ({exc}); recomputing it")
    except OSError as exc:
        warn(f"cache entry {path} is unreadable ({exc.strerror or exc}); recomputing it")
    return None


def _open_checked(path: Path, name: str) -> FileRows:
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise BadEntry("not a regular file")
    rows = None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        size = os.fstat(fd).st_size
        if size < _TAIL.size:
            raise BadEntry(f"{size} bytes, too short")
        length, magic = _TAIL.unpack(os.pread(fd, _TAIL.size, size - _TAIL.size))
        if magic != _MAGIC or length > min(MAX_TRAILER, size - _TAIL.size):
            raise BadEntry("no valid trailer (written by another version, or not an entry)")
        data_bytes = size - _TAIL.size - length
        trailer = os.pread(fd, length, data_bytes)
        try:
            meta = json.loads(trailer)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadEntry("its trailer is not JSON") from None
        shape, dtype = _described(meta, name)
        if math.prod(shape) * np.dtype(dtype).itemsize != data_bytes:
            raise BadEntry(f"{data_bytes} bytes of data for shape {tuple(shape)} {dtype}")
        mac = _mac_of_file(fd, data_bytes, _canonical({k: v for k, v in meta.items() if k != "mac"}))
        if not hmac.compare_digest(mac, str(meta.get("mac", ""))):
            raise BadEntry("content does not match its checksum")
        rows = FileRows(fd, shape, dtype, meta={k: v for k, v in meta.items() if k not in ("mac", "shape", "dtype")})
        return rows
    finally:
        if rows is None:
            os.close(fd)


def _described(meta, name: str):
    if not isinstance(meta, dict):
        raise BadEntry("its trailer is not an object")
    if meta.get("name") != name:
        raise BadEntry(f"it is the entry of {str(meta.get('name'))[:80]!r}, not of its file name")
    if meta.get("format") != FORMAT_VERSION:
        raise BadEntry(f"format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    shape, dtype = meta.get("shape"), meta.get("dtype")
    if not (isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
            and shape):
        raise BadEntry("no valid shape")
    if dtype not in _DTYPES:
        raise BadEntry("no valid dtype")
    return shape, dtype


def _canonical(meta: dict) -> bytes:
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()


def _mac_of_file(fd: int, data_bytes: int, trailer: bytes) -> str:
    mac = hmac.new(secret(), digestmod=hashlib.sha256)
    buf, done = bytearray(8 << 20), 0
    view = memoryview(buf)
    while done < data_bytes:
        got = os.preadv(fd, [view[:min(len(buf), data_bytes - done)]], done)
        if got <= 0:
            raise BadEntry("the file ended early")
        mac.update(view[:got])
        done += got
    mac.update(trailer)
    return mac.hexdigest()


class EntryWriter:
    """Batches appended to a temporary file; :meth:`EntryWriter.commit` seals it (trailer + MAC) and renames it into place.

    A cache folder that cannot be written (read-only, full) is not an error: the batches are kept in
    memory instead and :meth:`EntryWriter.commit` returns them as one array, without storing anything.
    """

    def __init__(self, name: str, row_shape=None, dtype=None):
        self.name, self.row_shape, self.dtype = name, row_shape, dtype
        self.rows = 0
        self._mac = hmac.new(secret(), digestmod=hashlib.sha256)
        self._memory = None  # batches, when the folder cannot be written
        self._file = self._tmp = None
        root = cache_root()
        try:
            root.mkdir(parents=True, exist_ok=True)
            remove_leftovers(root)
            fd, self._tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=root)
            self._file = os.fdopen(fd, "wb")
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)  # "being written": remove_leftovers keeps it
        except OSError:
            self._drop_file()
            self._memory = []

    def append(self, batch) -> None:
        batch = np.ascontiguousarray(batch)
        if self.row_shape is None:
            self.row_shape, self.dtype = batch.shape[1:], self.dtype or batch.dtype
        if tuple(batch.shape[1:]) != tuple(self.row_shape):
            raise ValueError(f"{self.name}: rows of shape {batch.shape[1:]}, expected {tuple(self.row_shape)}")
        batch = batch.astype(self.dtype, copy=False)
        self.rows += len(batch)
        if self._memory is not None:
            self._memory.append(batch)
            return
        data = memoryview(batch).cast("B")
        try:
            self._file.write(data)
        except OSError:  # the disk filled up: carry on in memory, keep nothing
            self._memory = [self._read_back(), batch]
            self._drop_file()
            return
        self._mac.update(data)

    def _read_back(self) -> np.ndarray:
        self._file.flush()
        written = np.fromfile(self._tmp, dtype=self.dtype)
        return written.reshape(-1, *self.row_shape)

    def commit(self, store: bool = True, **meta):
        """The rows written, as :class:`FileRows` (``meta`` attached) or, in memory, an array.

        ``store=False``: do not keep the entry (what was written is read from the temporary file, which
        is removed already).
        """
        shape = [self.rows, *(int(s) for s in (self.row_shape if self.row_shape is not None else ()))]
        dtype = np.dtype(self.dtype or np.float32).name
        if self._memory is not None:
            return np.concatenate(self._memory) if self._memory else np.zeros(shape, dtype)
        meta = {**meta, "name": self.name, "format": FORMAT_VERSION, "shape": shape, "dtype": dtype}
        self._mac.update(_canonical(meta))
        trailer = json.dumps({**meta, "mac": self._mac.hexdigest()}).encode()
        try:
            self._file.write(trailer + _TAIL.pack(len(trailer), _MAGIC))
            self._file.flush()
            rows = FileRows.open(self._tmp, shape, dtype, meta=meta)
            if store:
                os.chmod(self._tmp, 0o644)
                os.replace(self._tmp, cache_root() / f"{self.name}{SUFFIX}")
            else:
                os.unlink(self._tmp)
            self._tmp = None
        except OSError:  # could not seal or rename: use what was written, keep nothing
            rows = self._read_back()[:self.rows] if self.rows else np.zeros(shape, dtype)
        self._drop_file()
        return rows

    def _drop_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = None


@contextlib.contextmanager
def writing(name: str, row_shape=None, dtype=None):
    """``with writing(name) as w: w.append(batch)...; rows = w.commit(**meta)``; an exception (or no
    commit) leaves nothing behind."""
    writer = EntryWriter(name, row_shape, dtype)
    try:
        yield writer
    finally:
        writer._drop_file()


def store(name: str, array, **meta):
    """Save ``array`` as ``name`` and return it as stored (see :meth:`EntryWriter.commit`)."""
    array = np.asarray(array)
    with writing(name, array.shape[1:], array.dtype) as out:
        out.append(array)
        return out.commit(**meta)


def cached(name: str, compute):
    """Load ``name`` from the cache, or ``compute()`` it and store it; an in-memory array either way (for
    small entries: model facts, converted engines)."""
    found = load(name)
    if found is not None:
        return np.asarray(found)
    array = np.asarray(compute())
    store(name, array)
    return array


def remove_leftovers(root: Path, min_age: float = 60.0) -> None:
    """Delete the temporary files of writers that died: a live writer holds a lock on its own (and one
    younger than ``min_age`` seconds may not have taken it yet)."""
    now = time.time()
    for tmp in root.glob(".*.tmp"):
        try:
            if now - tmp.lstat().st_mtime < min_age:
                continue
            fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            tmp.unlink()
        except OSError:
            pass  # locked: being written right now
        finally:
            os.close(fd)

"""The file format of a cache entry, and the checks that make one safe to use.

An entry is one file: the rows (raw, C order), then a JSON trailer, then 16 bytes (trailer length,
magic). The trailer names the entry, gives its shape and dtype, the caller's ``meta`` (for instance the
verdict of every decoded file), the SHA-256 of every block of about 4 MB of rows, and a MAC over all of
that made with the user's secret (:mod:`.cache_secret`).

Opening checks what is cheap and decides whether the entry can be trusted at all: a regular file,
the trailer's form, the name it was written for, sizes, the MAC. The rows themselves are checked a
block at a time, the first time a block is read (:class:`BlockCheck`), so a warm run that needs nine
pictures out of 7 GB of decoded images reads nine blocks, not 7 GB, and a block changed on disk after
it was written is caught before any of its rows is used.
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
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ZooError
from ..util.owned import temp_prefix
from ..util.rows import FileRows
from .cache_secret import key_id, secret, secret_path

FORMAT_VERSION = 3  # 3: one checked file per entry (trailer, block digests, MAC), written and read in batches
SUFFIX = ".entry"
_MAGIC = b"CDZOO-E3"
_TAIL = struct.Struct("<Q8s")  # trailer length, magic: the last 16 bytes of every entry
MAX_TRAILER = 64 << 20
BLOCK_BYTES = 4 << 20
_DTYPES = {"uint8", "int32", "int64", "float32", "float64"}


class BadEntry(Exception):
    """A cache file that must not be used; the message says why."""


def open_entry(path: Path, name: str) -> FileRows:
    """The rows of the entry at ``path`` (its ``meta`` attached, its blocks checked as they are read).

    Raises :class:`BadEntry` (or ``OSError``, ``FileNotFoundError``) when it must not be used.
    """
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise BadEntry("not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped for a FIFO or device since lstat
            raise BadEntry("not a regular file")
        size = info.st_size
        if size < _TAIL.size:
            raise BadEntry(f"{size} bytes, too short")
        length, magic = _TAIL.unpack(os.pread(fd, _TAIL.size, size - _TAIL.size))
        if magic != _MAGIC or length > min(MAX_TRAILER, size - _TAIL.size):
            raise BadEntry("no valid trailer (written by another version, or not an entry)")
        data_bytes = size - _TAIL.size - length
        try:
            meta = json.loads(os.pread(fd, length, data_bytes))
        except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested thousands deep
            raise BadEntry("its trailer is not JSON") from None
        shape, dtype, block_rows, blocks = _described(meta, name)
        if math.prod(shape) * np.dtype(dtype).itemsize != data_bytes:
            raise BadEntry(f"{data_bytes} bytes of data for shape {tuple(shape)} {dtype}")
        if not hmac.compare_digest(_mac(meta), str(meta.get("mac", ""))):
            if meta.get("key") not in (None, key_id()):
                raise BadEntry(f"it was signed with another cache key than {secret_path()} holds now (the key file is "
                               "new, or was replaced or removed since)")
            raise BadEntry("content does not match its checksum")
        rows = FileRows(fd, shape, dtype, meta={k: v for k, v in meta.items()
                                                if k not in ("mac", "key", "shape", "dtype", "block_rows", "blocks")})
    except BaseException:
        os.close(fd)
        raise
    rows.check = BlockCheck(path, block_rows, blocks)  # called with the rows: no cycle keeps the file open
    return rows


def _described(meta, name: str):
    if not isinstance(meta, dict):
        raise BadEntry("its trailer is not an object")
    if meta.get("name") != name:
        raise BadEntry(f"it is the entry of {str(meta.get('name'))[:80]!r}, not of its file name")
    if meta.get("format") != FORMAT_VERSION:
        raise BadEntry(f"format {str(meta.get('format'))[:20]!r}, expected {FORMAT_VERSION}")
    shape, dtype = meta.get("shape"), meta.get("dtype")
    if not (isinstance(shape, list) and shape and all(_count(s) for s in shape)):
        raise BadEntry("no valid shape")
    if dtype not in _DTYPES:
        raise BadEntry("no valid dtype")
    block_rows, blocks = meta.get("block_rows"), meta.get("blocks")
    if not (_count(block_rows) and block_rows > 0 and isinstance(blocks, list)
            and len(blocks) == -(-shape[0] // block_rows)):
        raise BadEntry("no valid block list")
    return shape, dtype, block_rows, blocks


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _canonical(meta: dict) -> bytes:
    return json.dumps({k: v for k, v in meta.items() if k != "mac"}, sort_keys=True, separators=(",", ":")).encode()


def _mac(meta: dict) -> str:
    return hmac.new(secret(), _canonical(meta), hashlib.sha256).hexdigest()


class BlockCheck:
    """Called by :class:`~catdog_zoo.util.rows.FileRows` before it reads rows ``start..stop``: every block
    they fall in is hashed and compared with the trailer's digest the first time. A block that does not
    match means the file changed after it was checked: the entry is removed (the next run computes it
    again) and the run stops with one line, before the rows are used."""

    failure = None  # the last ZooError raised, for code that sees it only wrapped (inside tf.data)

    def __init__(self, path: Path, block_rows: int, digests: list):
        self.path, self.block_rows, self.digests = path, block_rows, digests
        self.verified = np.zeros(len(digests), bool)

    def __call__(self, rows: FileRows, start: int, stop: int) -> None:
        for block in range(start // self.block_rows, -(-stop // self.block_rows)):
            if not self.verified[block] and not self._matches(rows, block):
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
                first = block * self.block_rows
                BlockCheck.failure = ZooError(
                    f"cache entry {self.path} changed on disk after it was written (rows {first}.."
                    f"{first + self.block_rows - 1} do not match their checksum); it was removed, run the command "
                    "again")
                raise BlockCheck.failure

    def all(self, rows: FileRows) -> None:
        """Check every block now; :class:`BadEntry` at the first that does not match."""
        for block in range(len(self.digests)):
            if not self.verified[block] and not self._matches(rows, block):
                raise BadEntry("content does not match its checksum")

    def _matches(self, rows: FileRows, block: int) -> bool:
        first = block * self.block_rows
        data = rows.read_unchecked(first, min(first + self.block_rows, len(rows)))
        digest = hashlib.sha256(memoryview(data).cast("B")).hexdigest()
        self.verified[block] = hmac.compare_digest(digest, str(self.digests[block]))
        return bool(self.verified[block])


class EntryWriter:
    """Rows appended to a temporary file in ``folder``; :meth:`EntryWriter.seal` adds the trailer and renames
    it to ``folder/NAME.entry``. Raises ``OSError`` when the folder cannot be written."""

    def __init__(self, folder: Path, name: str, row_shape=None, dtype=None):
        self.folder, self.name = Path(folder), name
        self.row_shape = tuple(row_shape) if row_shape is not None else None
        self.dtype = np.dtype(dtype) if dtype is not None else None
        self.rows, self.digests = 0, []
        self._block, self._block_filled, self.block_rows = hashlib.sha256(), 0, None
        fd, self.tmp = tempfile.mkstemp(prefix=temp_prefix(name), suffix=".tmp", dir=self.folder)
        self.file = os.fdopen(fd, "wb", buffering=0)  # unbuffered: what append returned from is on disk
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # "being written": cache.remove_leftovers keeps it
        except OSError:
            pass  # a file system without flock (some NFS): leftovers then go by age alone

    def append(self, batch: np.ndarray) -> None:
        """Write ``batch`` (rows of ``row_shape``, already ``dtype`` and contiguous)."""
        if self.block_rows is None:
            self.block_rows = max(1, BLOCK_BYTES // max(1, batch[0].nbytes if len(batch) else 1))
        data, written = memoryview(batch).cast("B"), 0
        while written < len(data):
            n = self.file.write(data[written:])
            if not n:
                raise OSError(errno.ENOSPC, "short write")
            written += n
        done = 0
        while done < len(batch):  # per-block digests; a block is block_rows whole rows
            take = min(self.block_rows - self._block_filled, len(batch) - done)
            self._block.update(memoryview(batch[done:done + take]).cast("B"))
            self._block_filled, done = self._block_filled + take, done + take
            if self._block_filled == self.block_rows:
                self._end_block()
        self.rows += len(batch)

    def _end_block(self) -> None:
        self.digests.append(self._block.hexdigest())
        self._block, self._block_filled = hashlib.sha256(), 0

    def written_rows(self) -> np.ndarray:
        """The rows appended so far, read back exactly (never a partly written batch, never the trailer)."""
        count = self.rows * math.prod(self.row_shape or ())
        return np.fromfile(self.tmp, dtype=self.dtype, count=count).reshape(self.rows, *(self.row_shape or ()))

    def seal(self, store: bool, meta: dict) -> FileRows:
        """The written rows, as :class:`~catdog_zoo.util.rows.FileRows`; renamed into place when ``store``,
        else already unlinked."""
        if self._block_filled:
            self._end_block()
        shape = [self.rows, *(int(s) for s in (self.row_shape or ()))]
        meta = {**meta, "name": self.name, "format": FORMAT_VERSION, "key": key_id(), "shape": shape,
                "dtype": (self.dtype or np.dtype(np.float32)).name, "block_rows": self.block_rows or 1,
                "blocks": self.digests}
        trailer = json.dumps({**meta, "mac": _mac(meta)}).encode()
        tail = trailer + _TAIL.pack(len(trailer), _MAGIC)
        if self.file.write(tail) != len(tail):
            raise OSError(errno.ENOSPC, "short write")
        rows = FileRows.open(self.tmp, shape, meta["dtype"], meta={k: v for k, v in meta.items()
                                                                    if k not in ("key", "block_rows", "blocks")})
        if store:
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.folder / f"{self.name}{SUFFIX}")
        else:
            os.unlink(self.tmp)
        self.tmp = None
        return rows

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            self.tmp = None

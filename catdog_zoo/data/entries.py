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
from ..util.rows import FileRows
from .cache_secret import secret

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
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        size = os.fstat(fd).st_size
        if size < _TAIL.size:
            raise BadEntry(f"{size} bytes, too short")
        length, magic = _TAIL.unpack(os.pread(fd, _TAIL.size, size - _TAIL.size))
        if magic != _MAGIC or length > min(MAX_TRAILER, size - _TAIL.size):
            raise BadEntry("no valid trailer (written by another version, or not an entry)")
        data_bytes = size - _TAIL.size - length
        try:
            meta = json.loads(os.pread(fd, length, data_bytes))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadEntry("its trailer is not JSON") from None
        shape, dtype, block_rows, blocks = _described(meta, name)
        if math.prod(shape) * np.dtype(dtype).itemsize != data_bytes:
            raise BadEntry(f"{data_bytes} bytes of data for shape {tuple(shape)} {dtype}")
        if not hmac.compare_digest(_mac(meta), str(meta.get("mac", ""))):
            raise BadEntry("content does not match its checksum")
        rows = FileRows(fd, shape, dtype, meta={k: v for k, v in meta.items()
                                                if k not in ("mac", "shape", "dtype", "block_rows", "blocks")})
    except BaseException:
        os.close(fd)
        raise
    rows.check = BlockCheck(rows, path, block_rows, blocks)
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

    def __init__(self, rows: FileRows, path: Path, block_rows: int, digests: list):
        self.rows, self.path, self.block_rows, self.digests = rows, path, block_rows, digests
        self.verified = np.zeros(len(digests), bool)

    def __call__(self, start: int, stop: int) -> None:
        for block in range(start // self.block_rows, -(-stop // self.block_rows)):
            if not self.verified[block] and not self._matches(block):
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
                first = block * self.block_rows
                raise ZooError(f"cache entry {self.path} changed on disk after it was written (rows {first}.."
                               f"{first + self.block_rows - 1} do not match their checksum); it was removed, "
                               "run the command again")

    def all(self) -> None:
        """Check every block now; :class:`BadEntry` at the first that does not match."""
        for block in range(len(self.digests)):
            if not self.verified[block] and not self._matches(block):
                raise BadEntry("content does not match its checksum")

    def _matches(self, block: int) -> bool:
        first = block * self.block_rows
        data = self.rows.read_unchecked(first, min(first + self.block_rows, len(self.rows)))
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
        fd, self.tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=self.folder)
        self.file = os.fdopen(fd, "wb")
        fcntl.flock(self.file.fileno(), fcntl.LOCK_EX)  # "being written": cache.remove_leftovers keeps it

    def append(self, batch: np.ndarray) -> None:
        """Write ``batch`` (rows of ``row_shape``, already ``dtype`` and contiguous)."""
        if self.block_rows is None:
            self.block_rows = max(1, BLOCK_BYTES // max(1, batch[0].nbytes if len(batch) else 1))
        self.file.write(memoryview(batch).cast("B"))
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

    def seal(self, store: bool, meta: dict) -> FileRows:
        """The written rows, as :class:`~catdog_zoo.util.rows.FileRows`; renamed into place when ``store``,
        else already unlinked."""
        if self._block_filled:
            self._end_block()
        shape = [self.rows, *(int(s) for s in (self.row_shape or ()))]
        meta = {**meta, "name": self.name, "format": FORMAT_VERSION, "shape": shape,
                "dtype": (self.dtype or np.dtype(np.float32)).name, "block_rows": self.block_rows or 1,
                "blocks": self.digests}
        trailer = json.dumps({**meta, "mac": _mac(meta)}).encode()
        self.file.write(trailer + _TAIL.pack(len(trailer), _MAGIC))
        self.file.flush()
        rows = FileRows.open(self.tmp, shape, meta["dtype"], meta={k: v for k, v in meta.items()
                                                                    if k not in ("block_rows", "blocks")})
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

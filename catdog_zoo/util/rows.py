"""Rows of an array kept in a file and read on demand, so memory holds what a caller asks for, not the file.

Decoded images, features and activations can be larger than memory (48,000 images at 224 px are 7 GB
of pixels). A :class:`FileRows` behaves like a read-only NumPy array for what the zoo does with them:
``len``, ``shape``, ``dtype``, an index, a slice, an array of indices (a shuffled batch). Each read is a
``preadv`` into a fresh array: no memory map, because pages of a map that were touched count in the
process's resident memory until the kernel takes them back, and the page cache does the caching anyway.
"""

from __future__ import annotations

import math
import os

import numpy as np


class FileRows:
    """``shape[0]`` rows of ``shape[1:]`` ``dtype`` values at byte ``offset`` of an open file descriptor.

    The descriptor is owned (closed with the object), so the file may be renamed or unlinked after
    opening: what was opened stays readable.
    """

    def __init__(self, fd: int, shape, dtype, offset: int = 0, meta=None):
        self._fd = fd
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.offset = offset
        self.meta = dict(meta or {})
        self.check = None  # called with (self, start, stop) before rows are read: the cache's block checks
        self._row_bytes = self.dtype.itemsize * math.prod(self.shape[1:])

    @classmethod
    def open(cls, path, shape, dtype, offset: int = 0, meta=None) -> FileRows:
        return cls(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), shape, dtype, offset, meta)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self._row_bytes * self.shape[0]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        n = self.shape[0]
        if isinstance(key, (int, np.integer)):
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"row {key} out of range for {n} rows")
            return self._read(i, i + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return self._read(start, max(start, stop))
            key = np.arange(start, stop, step)
        index = np.asarray(key)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return self._gather(index.astype(np.int64))

    def __array__(self, dtype=None, copy=None):
        whole = self._read(0, self.shape[0])
        return whole if dtype is None else whole.astype(dtype)

    def _read(self, start: int, stop: int) -> np.ndarray:
        if self.check is not None and stop > start:
            self.check(self, start, stop)
        return self.read_unchecked(start, stop)

    def read_unchecked(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop`` as they are on disk (no ``check``)."""
        out = np.empty((stop - start, *self.shape[1:]), self.dtype)
        view, done = memoryview(out).cast("B"), 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], self.offset + start * self._row_bytes + done)
            if got <= 0:
                raise OSError(f"the file ended {len(view) - done} bytes early (it changed after it was checked)")
            done += got
        return out

    def _gather(self, index: np.ndarray) -> np.ndarray:
        n = self.shape[0]
        index = np.where(index < 0, index + n, index)
        if index.size and (index.min() < 0 or index.max() >= n):
            raise IndexError(f"index out of range for {n} rows")
        out = np.empty((len(index), *self.shape[1:]), self.dtype)
        order = np.argsort(index, kind="stable")
        ordered = index[order]
        # Read each run of consecutive rows at once: a sorted batch of a shuffled epoch is mostly single rows,
        # a plain pass over a split is one run.
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        for run_positions in np.split(np.arange(len(ordered)), breaks):
            if not len(run_positions):
                continue
            first, last = ordered[run_positions[0]], ordered[run_positions[-1]]
            rows = self._read(int(first), int(last) + 1)
            out[order[run_positions]] = rows[ordered[run_positions] - first]
        return out

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        try:
            self.close()
        except OSError:
            pass

    def __repr__(self) -> str:
        return f"FileRows(shape={self.shape}, dtype={self.dtype})"


def take(views, which: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``stack(views)[which, index]`` without stacking: row ``index[i]`` of view ``which[i]``, for each i.

    ``views`` is a sequence of equally shaped arrays or :class:`FileRows`.
    """
    if len(views) == 1 or not len(index):
        return np.asarray(views[0][index])
    out = None
    for v, view in enumerate(views):
        mine = np.flatnonzero(which == v)
        if not len(mine):
            continue
        rows = np.asarray(view[index[mine]])
        if out is None:
            out = np.empty((len(index), *rows.shape[1:]), rows.dtype)
        out[mine] = rows
    return out


IN_MEMORY_BYTES = 256 << 20  # below this, rows read every epoch are worth holding in memory


def in_memory_if_small(rows, limit: int = IN_MEMORY_BYTES):
    """``rows`` as an array when it is at most ``limit`` bytes (faster to index every epoch), else as it is."""
    return np.asarray(rows) if isinstance(rows, FileRows) and rows.nbytes <= limit else rows


class RowsView:
    """Rows ``start..stop`` of ``rows`` (an array or :class:`FileRows`): sliced without reading anything
    until a slice of it is asked for (a worker's share of a split)."""

    def __init__(self, rows, start: int, stop: int):
        self.rows, self.start, self.stop = rows, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, key: slice):
        lo, hi, step = key.indices(len(self))
        if step != 1:
            raise IndexError("RowsView takes contiguous slices only")
        return self.rows[self.start + lo:self.start + max(lo, hi)]


def shard_bounds(count: int, shards: int, multiple: int = 1) -> list:
    """``shards + 1`` boundaries splitting ``count`` rows into nearly equal shares, each starting at a
    multiple of ``multiple`` (so a share is whole batches, batch numbers the same as in one pass)."""
    blocks = -(-count // multiple)
    return [min(count, (blocks * i // shards) * multiple) for i in range(shards)] + [count]

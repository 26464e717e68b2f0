"""An on-disk cache of arrays (decoded images, backbone features), keyed by everything they depend on, and
checked before every use.

Entries live under ``$CATDOG_ZOO_CACHE`` (default ``$XDG_CACHE_HOME/catdog-zoo`` or
``~/.cache/catdog-zoo``), one file each, named by a SHA-256 key of what they depend on. Keys can be
computed by anyone, so a key proves nothing about content: an entry is used only after the checks of
:mod:`.entries` (its trailer, the name it was written for, a MAC made with a secret only this user can
read, each block's digest as it is read). One that fails (damaged, truncated, copied from another key,
planted) is recomputed after one warning line. Deleting the folder is always safe.

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
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import ZooError
from ..util.locks import folder_lock
from ..util.owned import is_ours
from .entries import FORMAT_VERSION, SUFFIX, BadEntry, EntryWriter, open_entry

CACHE_ENV = "CATDOG_ZOO_CACHE"
# Errors that say nothing about a file's content: a run that saw one must not cache its verdicts.
TRANSIENT = {errno.EMFILE, errno.ENFILE, errno.EIO, errno.EAGAIN, errno.ENOMEM, errno.EINTR, errno.ETIMEDOUT,
             errno.ESTALE, errno.ENOBUFS}


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


# Entries up to this size have every block checked when loaded (a failure is recomputed after a warning);
# larger ones a block at a time as they are read (a failure stops the run, see entries.BlockCheck), so a warm
# run that needs a few decoded pictures out of gigabytes does not read them all.
EAGER_CHECK_BYTES = 256 << 20


def exists(name: str) -> bool:
    """An entry called ``name`` is in the cache (whether it passes its check is :func:`load`'s to say)."""
    return (cache_root() / f"{name}{SUFFIX}").is_file()


def load(name: str):
    """The entry called ``name`` as :class:`~catdog_zoo.util.rows.FileRows` (its ``meta`` attached), or None
    when absent or failing its check (said in one line; the caller recomputes it)."""
    path = cache_root() / f"{name}{SUFFIX}"
    try:
        rows = open_entry(path, name)
        if rows.nbytes <= EAGER_CHECK_BYTES:
            try:
                rows.check.all(rows)
            except BadEntry:
                rows.close()
                raise
        return rows
    except FileNotFoundError:
        return None
    except BadEntry as exc:
        warn(f"cache entry {path} failed its check ({exc}); recomputing it")
    except OSError as exc:
        warn(f"cache entry {path} is unreadable ({exc.strerror or exc}); recomputing it")
    return None


class Writer:
    """Batches appended to a new entry (:class:`.entries.EntryWriter`); :meth:`Writer.commit` seals it.

    A cache folder that cannot be written (read-only, full) is not an error: the batches are kept in
    memory instead and :meth:`Writer.commit` returns them as one array, without storing anything.
    """

    def __init__(self, name: str, row_shape=None, dtype=None):
        self.name, self.row_shape, self.dtype = name, row_shape, dtype
        self.rows = 0
        self._memory, self._entry = None, None  # batches (no cache), or the entry being written
        # The cache folder's lock, shared with other writers, until the entry is sealed or discarded: 'catdog-zoo
        # cache --clear' takes it exclusively, so it never removes an entry being written (cache_contents.py).
        self._lock = contextlib.ExitStack()
        root = cache_root()
        try:
            root.mkdir(parents=True, exist_ok=True)
            self._lock.enter_context(folder_lock(root, what="cache folder", shared=True))
            remove_leftovers(root)
            self._entry = EntryWriter(root, name, row_shape, dtype)
        except (OSError, ZooError):  # ZooError: being cleared right now; this entry is simply not kept
            self._lock.close()
            self._memory = []

    def append(self, batch) -> None:
        batch = np.ascontiguousarray(batch)
        if self.row_shape is None:
            self.row_shape, self.dtype = tuple(batch.shape[1:]), self.dtype or batch.dtype
            if self._entry is not None:
                self._entry.row_shape, self._entry.dtype = self.row_shape, np.dtype(self.dtype)
        if tuple(batch.shape[1:]) != tuple(self.row_shape):
            raise ValueError(f"{self.name}: rows of shape {batch.shape[1:]}, expected {tuple(self.row_shape)}")
        batch = np.ascontiguousarray(batch.astype(self.dtype, copy=False))
        self.rows += len(batch)  # the entry writer counts only what reached its file
        if self._memory is None:
            try:
                self._entry.append(batch)
                return
            except OSError:  # the disk filled up: carry on in memory, keep nothing
                self._to_memory()
        self._memory.append(batch)

    def _to_memory(self) -> None:
        self._memory = [self._entry.written_rows()]
        self.discard()

    def commit(self, store: bool = True, **meta):
        """The rows written, as :class:`~catdog_zoo.util.rows.FileRows` (``meta`` attached) or, in memory, an array.

        ``store=False``: do not keep the entry (the rows are read from the temporary file, already removed).
        """
        shape = (self.rows, *(self.row_shape or ()))
        if self._memory is None:
            try:
                return self._entry.seal(store, meta)
            except OSError:  # could not seal or rename: use what was written, keep nothing
                self._to_memory()
        return np.concatenate(self._memory) if self._memory else np.zeros(shape, self.dtype or np.float32)

    def discard(self) -> None:
        if self._entry is not None:
            self._entry.discard()
            self._entry = None
        self._lock.close()


@contextlib.contextmanager
def writing(name: str, row_shape=None, dtype=None):
    """``with writing(name) as w: w.append(batch)...; rows = w.commit(**meta)``; an exception (or no
    commit) leaves nothing behind."""
    writer = Writer(name, row_shape, dtype)
    try:
        yield writer
    finally:
        writer.discard()


def store(name: str, array, **meta):
    """Save ``array`` as ``name`` and return it as stored (see :meth:`Writer.commit`)."""
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


def remove(name: str) -> None:
    """Delete the entry ``name`` if it is there (readers that opened it keep reading what they opened)."""
    with contextlib.suppress(OSError):
        (cache_root() / f"{name}{SUFFIX}").unlink()


def remove_leftovers(root: Path, min_age: float = 60.0) -> None:
    """Delete the temporary files of writers that died: a live writer holds a lock on its own (and one
    younger than ``min_age`` seconds may not have taken it yet). Only the zoo's own temporaries
    (:func:`catdog_zoo.util.owned.is_ours`): a user's ``.notes.tmp`` in the folder stays."""
    now = time.time()
    for tmp in root.glob(".*.tmp"):
        try:
            if not is_ours(tmp, "temporary") or now - tmp.lstat().st_mtime < min_age:
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

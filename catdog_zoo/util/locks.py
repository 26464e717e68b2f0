"""One writer per folder, or readers side by side: a lock on a file inside it, held while a process works there.

Two ``train --resume R`` at once, or a second ``zoo`` during a sweep, would delete each other's checkpoint
staging folders; an ``export`` beside ``train --overwrite`` would leave the old model's export in the new run.
Every command that writes a run (``train``, ``export``) holds its lock exclusively; every command that only
reads one (``evaluate``, ``predict``, ``compare``) holds it shared, so readers run side by side and a writer
waits for none of them: whoever comes second to a writer, or a writer coming to readers, is refused with
one line naming the holder. The lock is the kernel's (``flock``): it goes when the holder's process ends,
however it ends, so a killed run never leaves a folder locked (its ``.lock`` file stays, unlocked, and is
reused; the last holder to leave removes it, and a process that locked a removed file sees so and tries again).

A reader that cannot create the lock file (a run on a read-only disk, or another user's) locks the existing
one read-only, or, when there is none, reads without a lock: nobody can be writing it then.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
import sys
from pathlib import Path

from ..errors import ConfigError, ZooError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def folder_lock(folder, what: str = "run directory", name: str = LOCK_FILE, shared: bool = False):
    """Hold ``folder/name`` locked for the ``with`` block; refuse if another process holds it against us.

    ``shared=False`` (a writer: creates ``folder`` if needed): no other holder at all. ``shared=True`` (a
    reader: ``folder`` must exist): no writer, other readers welcome."""
    folder = Path(folder)
    created = not shared and not folder.exists()
    if not shared:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot write to {what} {folder}: {exc.strerror or exc}") from None
    fd = _locked(folder, what, name, shared)
    if fd is None:  # a reader of a folder it cannot write, where no lock file exists: nobody writes there
        yield folder
        return
    try:
        if not shared or _writable(fd):
            os.ftruncate(fd, 0)
            command = " ".join(["catdog-zoo", *sys.argv[1:]])[:200]
            os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} ({command})".encode(), 0)
        try:
            yield folder
        except BaseException:
            if created:  # refused or failed before writing anything: leave no folder behind
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)
                    folder.rmdir()
            raise
        finally:
            # No lock file left behind, removed by its last holder (a reader checks that it is the last by
            # locking exclusively). Removed while still held: a process that opened it just before finds it
            # removed once it has locked it (:func:`_locked`), and tries again on a new one.
            if not shared or _try_lock(fd, fcntl.LOCK_EX):
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)
    finally:
        os.close(fd)


def _locked(folder: Path, what: str, name: str, shared: bool):
    """A descriptor of ``folder/name``, locked (shared or exclusive); None for a reader that cannot create it
    where it does not exist."""
    for _ in range(20):  # another try each time the file we locked was removed by its last holder meanwhile
        fd = _open(folder / name, shared)
        if fd is None:
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ConfigError(f"the lock file {folder / name} is not a regular file; remove it")
        if not _try_lock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX):
            holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise ZooError(f"{what} {folder} is in use by {holder}; wait for it to finish (or stop it) and "
                           "try again") from None
        try:
            now = os.stat(folder / name, follow_symlinks=False)
            mine = os.fstat(fd)
            if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
    raise ZooError(f"could not lock {what} {folder}: its lock file keeps being replaced")


def _open(path: Path, shared: bool):
    flags = os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        return os.open(path, os.O_RDWR | flags, 0o644)
    except OSError as exc:
        if shared and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            try:  # flock works on a read-only descriptor too
                return os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            except FileNotFoundError:
                return None
            except OSError:
                pass
        raise ConfigError(f"cannot use the lock file {path}: {exc.strerror or exc} (remove it if no "
                          "catdog-zoo process is running there)") from None


def _try_lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _writable(fd: int) -> bool:
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR

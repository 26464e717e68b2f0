"""One process per folder: an exclusive lock on a file inside it, held while the process works there.

Two ``train --resume R`` at once, or a second ``zoo`` during a sweep, would delete each other's checkpoint
staging folders. Whoever comes second is refused with one line naming the holder. The lock is the
kernel's (``flock``): it goes when the holder's process ends, however it ends, so a killed run never
leaves a folder locked (its ``.lock`` file stays, unlocked, and is reused; a run that ends normally
removes it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
import sys
from pathlib import Path

from ..errors import ConfigError, ZooError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def folder_lock(folder, what: str = "run directory", name: str = LOCK_FILE):
    """Hold ``folder/name`` locked for the ``with`` block (creating ``folder``); refuse if another process does."""
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write to {what} {folder}: {exc.strerror or exc}") from None
    try:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(folder / name, flags, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot use the lock file {folder / name}: {exc.strerror or exc} (remove it if no "
                          "catdog-zoo process is running there)") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"the lock file {folder / name} is not a regular file; remove it")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip() or "another process"
            raise ZooError(f"{what} {folder} is in use by {holder}; wait for it to finish (or stop it) and "
                           "try again") from None
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
        # Done: no lock file left in a finished folder. Removed while still held, so a process that opened it
        # just before may lock the removed file; it then finds the work finished (every holder checks the
        # folder's state after locking) and stops.
        with contextlib.suppress(OSError):
            os.unlink(folder / name)
    finally:
        os.close(fd)

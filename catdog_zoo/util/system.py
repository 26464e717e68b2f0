"""The system's limits in words: what an ``OSError``, ``MemoryError`` or a failed thread means for the user, and
whether a folder can be written before any work starts.

The kernel answers a write past ``ulimit -f`` with EFBIG ("file too large"), not ENOSPC; a process under a
small ``ulimit -v`` gets ENOMEM, a ``MemoryError`` or an ``ImportError`` about mapping a shared library; a
folder that can be listed but not entered gives EACCES on every name in it. Each is said here once, naming the
limit and, where it is a limit of this process, its value, so no caller reports a full disk on a disk with 71 GB
free.
"""

from __future__ import annotations

import errno
import os
import resource
import tempfile
from pathlib import Path

_LIMITS = {"RLIMIT_FSIZE": ("ulimit -f", "bytes"), "RLIMIT_AS": ("ulimit -v", "bytes"),
           "RLIMIT_NOFILE": ("ulimit -n", "files"), "RLIMIT_NPROC": ("ulimit -u", "processes")}


def size_text(n: float) -> str:
    """``n`` bytes for a person: 512 bytes, 3.4 KiB, 200 MiB, 1.5 GiB (never "0 MiB")."""
    if n < 1024:
        return f"{int(n)} byte{'s' if int(n) != 1 else ''}"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if n >= 100 or float(n).is_integer() else f"{n:.1f} {unit}"
    return f"{n:.0f} TiB"  # pragma: no cover - the loop returns


def limit_text(name: str) -> str:
    """" (ulimit -f: 1.0 MiB)" when this process runs under the resource limit ``name``, else ""."""
    shell, unit = _LIMITS[name]
    try:
        soft = resource.getrlimit(getattr(resource, name))[0]
    except (OSError, ValueError, AttributeError):
        return ""
    if soft == resource.RLIM_INFINITY:
        return ""
    return f" ({shell}: {size_text(soft) if unit == 'bytes' else f'{soft} {unit}'})"


def problem(exc: BaseException, context: bool = True):
    """What ``exc`` (or what caused it; with ``context``, also what it was raised while handling) says about the
    system, in one phrase, or None when it is not such an error (a bug keeps its traceback)."""
    for one in _chain(exc, context):
        said = _one(one)
        if said:
            return said
    return None


def _one(exc: BaseException):
    if isinstance(exc, MemoryError):
        return "out of memory" + limit_text("RLIMIT_AS")
    if isinstance(exc, OSError) and exc.errno is not None:
        return _errno_text(exc.errno)
    text = str(exc)
    if isinstance(exc, (ImportError, RuntimeError)) and ("failed to map segment" in text
                                                          or "Cannot allocate memory" in text):
        return "out of memory while loading a library" + limit_text("RLIMIT_AS")
    if type(exc).__module__.startswith("tensorflow") and ("OOM when allocating" in text or "bad_alloc" in text):
        return "out of memory" + limit_text("RLIMIT_AS")
    if isinstance(exc, RuntimeError) and "can't start new thread" in text:
        return ("cannot start another thread (a limit on memory or processes" +
                (limit_text("RLIMIT_AS") or limit_text("RLIMIT_NPROC")) + ")")
    if type(exc).__module__.startswith("tensorflow"):  # TensorFlow's file ops say the errno in words only
        for code in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ENOMEM):
            if os.strerror(code) in text:
                return _errno_text(code)
    return None


def _errno_text(code: int):
    if code == errno.EFBIG:
        return "the file would be larger than this process may write" + (
            limit_text("RLIMIT_FSIZE") or " (a limit on file size)")
    if code == errno.ENOSPC:
        return "no space left on the device"
    if code == errno.EDQUOT:
        return "the disk quota is used up"
    if code == errno.ENOMEM:
        return "out of memory" + limit_text("RLIMIT_AS")
    if code in (errno.EMFILE, errno.ENFILE):
        return "too many open files" + limit_text("RLIMIT_NOFILE")
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.EROFS:
        return "read-only file system"
    if code in (errno.ELOOP, errno.ENAMETOOLONG, errno.EIO, errno.ENOTDIR, errno.EISDIR, errno.ENOENT,
                errno.EEXIST, errno.ENOTEMPTY, errno.EXDEV, errno.EBUSY, errno.ETXTBSY):
        return os.strerror(code)
    return None


def described(exc: BaseException, context: bool = True) -> str:
    """One line for an error :func:`problem` recognises: ``FILE: the file would be larger than ...``."""
    said = problem(exc, context) or str(exc)
    name = next((e.filename for e in _chain(exc, context) if isinstance(e, OSError) and e.filename), None)
    return f"{os.fsdecode(name)}: {said}" if name is not None else said


def _chain(exc, context: bool = True):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or (exc.__context__ if context and not exc.__suppress_context__ else None)


def unwritable(folder) -> str | None:
    """Why files cannot be created in ``folder`` (or, if it does not exist yet, in the nearest folder above it
    that does), or None. A real write, not ``os.access``: root passes access checks on read-only mounts too."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    if not path.is_dir():
        return f"{path} is not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot create files in {path}: {problem(exc) or exc.strerror or exc}"
    return None


def check_can_write(path) -> None:
    """Refuse, before any work, an output (``--out`` file, ``--explain`` folder) that could not be written at the
    end: ``lr-find`` in a read-only folder swept the learning rate first."""
    from ..errors import ZooError

    why = unwritable(Path(path).parent if not Path(path).is_dir() else path)
    if why:
        raise ZooError(f"cannot write {path}: {why}")


TENSORFLOW_ADDRESS_SPACE = 4 << 30  # measured: TensorFlow's thread pools fail to start below about 3 GiB


def address_space_note():
    """A line to say before TensorFlow loads when ``ulimit -v`` is too small for it, else None: its C++ thread
    pools then abort the process (``Check failed ... pthread_create() failed``), where Python cannot say why."""
    try:
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft >= TENSORFLOW_ADDRESS_SPACE:
        return None
    return (f"Warning: this process may use at most {size_text(soft)} of memory (ulimit -v); TensorFlow needs about "
            f"{size_text(TENSORFLOW_ADDRESS_SPACE)} and may stop without a Python error (raise it with ulimit -v)")

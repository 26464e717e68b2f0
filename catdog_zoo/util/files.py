"""Files written whole or not at all: write to a temporary name beside the target, then rename.

Everything catdog-zoo writes for a user (run files, reports, exports, cache entries, CSVs) goes
through :func:`atomic_write`, so a killed process or a full disk never leaves half a file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path

import yaml

from ..errors import ZooError
from .names import json_safe, terminal
from .owned import temp_prefix
from .system import problem

NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # reading the umask means setting it; put it straight back


def output_path(path, folder_ok: bool = False) -> Path:
    """``path`` with its folder created: a file the user asked for (``--out``, ``--plot``), or one error line.

    ``folder_ok``: the output may itself be a folder (a SavedModel) that is about to be replaced.
    """
    path = Path(path)
    if path.is_dir() and not folder_ok:
        raise ZooError(f"cannot write {path}: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    Whatever happens, ``path`` holds either its old content or the new one, never a part.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.stem), suffix=path.suffix, dir=path.parent)
    except OSError as exc:  # a missing or read-only folder: nothing written yet
        raise ZooError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if no_space(exc):  # a full disk, a quota, or ulimit -f (EFBIG): said as what it is
            raise ZooError(f"cannot write {path}: {problem(exc)} (earlier files and checkpoints are kept)") from None
        raise


def no_space(exc) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk, a quota or the file size limit (``problem`` words it)."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def dir_size(folder) -> int:
    """Bytes in the regular files under ``folder`` (links not followed)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())


def write_text(path, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    atomic_write(Path(path), write)


def write_json(path, data) -> None:
    write_text(path, json.dumps(json_safe(finite(data)), indent=2, sort_keys=False, allow_nan=False) + "\n")


def finite(data):
    """``data`` with every NaN or infinity replaced by None: JSON has no NaN, and a bare ``NaN`` makes a
    file that strict readers (browsers, jq, most languages) refuse."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def printable(text: str) -> str:
    """Kept for callers of the old name: :func:`catdog_zoo.util.names.terminal`, the one way a name is shown."""
    return terminal(text)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A CSV cell a spreadsheet will not run: the text as :func:`~catdog_zoo.util.names.terminal` shows it, and
    text starting like a formula (``=``, ``+``, ``-``, ``@``) gets a leading apostrophe, as OWASP advises;
    numbers are left as they are."""
    if not isinstance(value, str):
        return value
    value = terminal(value)  # shown as on the terminal: no control character, no byte that is not UTF-8
    if not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
        return value  # "-0.25" is a number, not a formula
    except ValueError:
        return "'" + value


def write_yaml(path, data) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))

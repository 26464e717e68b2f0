"""Reading NumPy files others made (``.npy``, ``.npz``): every size is known before a byte is inflated or read.

``np.load`` of an ``.npz`` inflates each member whole when it is asked for: a 3 MB deflate bomb in a
checkpoint's ``weights.npz`` grew to 3.9 GB before anything could refuse it. Here the zip directory's declared
sizes and each member's ``.npy`` header (shape, dtype) are checked first, against the shapes the caller expects
or a byte limit; reading then stops at the declared size (zipfile inflates no further than it), and a member
that holds more or less than it declared is refused. Object arrays (pickles) never load.
"""

from __future__ import annotations

import math
import os
import stat
import zipfile

import numpy as np

from .system import size_text

MAX_HEADER = 10_000  # NumPy's own limit on an .npy header


class ArrayFileError(ValueError):
    """An array file that must not be used; the message says why, to follow the file's name ("is truncated: ...")."""


def npy_header(f) -> tuple:
    """``(shape, fortran_order, dtype)`` from the ``.npy`` header at ``f``'s position, reading nothing more."""
    try:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read is None:
            raise ArrayFileError(f"is in an .npy format version ({version}) this reader does not know")
        shape, fortran, dtype = read(f, max_header_size=MAX_HEADER)
    except ArrayFileError:
        raise
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise ArrayFileError(f"is not a NumPy array ({str(exc)[:120]})") from None
    if dtype.hasobject:
        raise ArrayFileError("holds Python objects (a pickle), which are never loaded")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ArrayFileError(f"declares the shape {shape}")
    return tuple(shape), fortran, dtype


def nbytes(shape, dtype) -> int:
    return math.prod(shape) * np.dtype(dtype).itemsize


def read_npy_data(f, shape, fortran, dtype) -> np.ndarray:
    """The array the header described, read from ``f`` (exactly its bytes; fewer is an error)."""
    want = nbytes(shape, dtype)
    data = f.read(want)
    if len(data) != want:
        raise ArrayFileError(f"is truncated: {size_text(len(data))} of the {size_text(want)} its header declares")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return array.copy()  # writable, and not tied to the buffer read


def declared_npz_bytes(path) -> int:
    """The bytes an ``.npz`` declares its members unpack to, from its zip directory alone."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(m.file_size for m in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArrayFileError(f"is damaged: not a zip archive ({type(exc).__name__})") from None


def load_npz(path, expect=None, max_bytes: int | None = None) -> list:
    """The arrays ``arr_0, arr_1, ...`` that ``np.savez`` wrote into ``path``, checked before they are read:
    with ``expect`` (a ``(shape, dtype)`` per array) each header must declare exactly that; with ``max_bytes``
    the declared total must fit. Raises ``FileNotFoundError`` or :class:`ArrayFileError`."""
    info = os.stat(path, follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode):
        raise ArrayFileError("is not a regular file")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArrayFileError(f"is damaged: not a zip archive ({type(exc).__name__})") from None
    with archive:
        members = {m.filename: m for m in archive.infolist()}
        count = len(members)
        names = [f"arr_{i}.npy" for i in range(count)]
        if sorted(members) != sorted(names):
            raise ArrayFileError("holds members other than the arr_0.npy, arr_1.npy, ... np.savez writes")
        if expect is not None and count != len(expect):
            raise ArrayFileError(f"holds {count} arrays, not the {len(expect)} expected")
        declared = sum(m.file_size for m in members.values())
        limit = max_bytes if expect is None else sum(nbytes(s, d) for s, d in expect) + count * MAX_HEADER
        if limit is not None and declared > limit:
            raise ArrayFileError(f"declares members that unpack to {size_text(declared)}, more than the "
                                 f"{size_text(limit)} it may hold (refused before inflating any)")
        try:
            return [_member(archive, members[name], None if expect is None else expect[i])
                    for i, name in enumerate(names)]
        # NotImplementedError: zipfile on a compression method it does not have (a member written by another tool)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
            raise ArrayFileError(f"is damaged ({type(exc).__name__})") from None


def _member(archive, member, expected) -> np.ndarray:
    with archive.open(member) as f:
        shape, fortran, dtype = npy_header(f)
        if expected is not None and (shape != tuple(expected[0]) or dtype != np.dtype(expected[1])):
            raise ArrayFileError(f"declares {dtype.name} {shape} in {member.filename}, not the expected "
                                 f"{np.dtype(expected[1]).name} {tuple(expected[0])}")
        if nbytes(shape, dtype) > member.file_size:
            raise ArrayFileError(f"declares {size_text(nbytes(shape, dtype))} of data in {member.filename}, a member "
                                 f"of {size_text(member.file_size)}")
        return read_npy_data(f, shape, fortran, dtype)

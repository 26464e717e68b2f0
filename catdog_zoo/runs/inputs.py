"""The images and options a command that scores a run is given, checked before TensorFlow loads.

``predict`` on a missing file, or ``--threshold`` on a three-class run, is answered in a tenth of a second:
nothing here imports TensorFlow (:mod:`.predict` does, for the scoring itself).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..data.splits import IMAGE_EXTENSIONS, describe_left_out, find_images
from ..errors import ZooError
from .layout import is_run_dir


def collect_images(paths, left_out=None) -> list:
    """Files as given, folders searched recursively for images; a missing path is an error; what in a folder
    cannot be read goes to ``left_out`` as ``(path, why)`` (without it: an error)."""
    found = []
    for p in map(Path, paths):
        if is_run_dir(p):
            raise ZooError(f"{p} is a run directory, not images: predict takes one RUN_DIR, then image files "
                           "or folders")
        if p.is_dir():
            found.extend(find_images(p, left_out))
        elif p.is_file():
            found.append(p)
        elif p.exists() or p.is_symlink():
            raise ZooError(f"{p} is not a regular file or folder")
        else:
            raise ZooError(f"no such file or folder: {p}")
    if not found:
        raise ZooError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found in {', '.join(map(str, paths))}")
    return found


def gather_images(paths, strict: bool = False) -> list:
    """:func:`collect_images`, what a folder could not give said in one warning (an error with ``strict``)."""
    left_out: list = []
    files = collect_images(paths, left_out)
    if left_out:
        if strict:
            raise ZooError(f"--strict: {describe_left_out(left_out)}")
        print(f"Warning: {describe_left_out(left_out)}", file=sys.stderr)
    return files


def check_threshold(threshold, class_names, run_dir) -> None:
    """``--threshold`` moves the decision between two classes: refused for any other number of classes."""
    if threshold is None:
        return
    if len(class_names) != 2:
        raise ZooError(f"--threshold applies to two-class models; {run_dir} has {len(class_names)} classes")
    if not 0 <= threshold <= 1:
        raise ZooError(f"--threshold must be between 0 and 1, got {threshold}")

"""What catdog-zoo wrote, and so may delete: the one answer, asked before anything is removed.

A folder the zoo writes into may hold a user's files too: a run's ``checkpoints/epoch-0002-my-backup/``, a
``.notes.tmp`` in the cache folder, ``export/mine.tflite``. Nothing is deleted on a guess from a loose
pattern (``epoch-*``, ``.*.tmp``). The zoo deletes only:

- **temporaries**, named by :func:`temp_prefix`: ``.STEM.zoo-tmp-XXXXXXXX[.SUFFIX]`` (``tempfile``'s eight
  random characters), a name nobody else makes (atomic writes, checkpoint and export staging, cache entries
  being written, the write probe);
- **checkpoints**: folders named exactly ``epoch-NNNN`` (digits only) inside a run's ``checkpoints/``;
- **exports**: a file or SavedModel folder with the record the zoo writes beside every export
  (``NAME.export.json``, written before the export is moved into place), together with that record and
  ``NAME.labels.txt``;
- **TensorBoard logs**: a stage's folder inside a run's ``tensorboard/`` (named after the stage, a plugin's
  too), holding ``train/`` and ``validation/`` folders and nothing else.

Symbolic links are never followed: a link is removed as a link, never what it points to.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

TEMP_MARK = ".zoo-tmp-"
_TEMPORARY = re.compile(r"^\.[^/]*\.zoo-tmp-[a-z0-9_]{8}(?:\.[A-Za-z0-9]{1,12})?$")  # tempfile: 8 of [a-z0-9_]
_CHECKPOINT = re.compile(r"^epoch-\d{4,}$")
TENSORBOARD_SPLITS = ("train", "validation")  # the folders in each stage's tensorboard/STAGE/
EXPORT_RECORD = ".export.json"  # NAME.export.json beside the export NAME
EXPORT_LABELS = ".labels.txt"  # NAME.labels.txt beside a TFLite export NAME
KINDS = ("temporary", "checkpoint", "export", "tensorboard")


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def temp_prefix(stem: str) -> str:
    """The ``prefix`` for ``tempfile.mkstemp``/``mkdtemp`` of everything temporary the zoo makes."""
    return f".{stem}{TEMP_MARK}"


def checkpoint_name(epoch: int) -> str:
    return f"epoch-{epoch:04d}"


def export_record(path) -> Path:
    """``NAME.export.json`` beside the export ``NAME``: the zoo's record that it wrote ``NAME``."""
    path = Path(path)
    return path.with_name(path.name + EXPORT_RECORD)


def is_ours(path, kind: str) -> bool:
    """Whether catdog-zoo wrote ``path`` as a ``kind`` (:data:`KINDS`): the only test before a deletion."""
    path = Path(path)
    if kind == "temporary":
        return bool(_TEMPORARY.match(path.name))
    if kind == "checkpoint":
        return bool(_CHECKPOINT.match(path.name)) and path.is_dir() and not path.is_symlink()
    if kind == "export":  # the export, or what is left of it: its record (written first) is the proof
        record = export_record(path)
        return (record.is_file() and not record.is_symlink()
                and (not path.is_symlink() and (path.is_file() or path.is_dir() or not path.exists())))
    if kind == "tensorboard":  # any stage's name: known by what it holds, so a user's file inside keeps it
        return _real_dir(path) and all(_real_dir(p) and p.name in TENSORBOARD_SPLITS for p in path.iterdir())
    raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")


def remove_ours(path, kind: str) -> bool:
    """Delete ``path`` if :func:`is_ours` says so (an export with its record and labels); True if removed.

    Anything else stays where it is. Errors (already gone, no permission) are left to the next attempt."""
    path = Path(path)
    if not is_ours(path, kind):
        return False
    targets = [path]
    if kind == "export":
        targets += [path.with_name(path.name + EXPORT_LABELS), export_record(path)]  # the record last
    for target in targets:
        try:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        except OSError:
            return False
    return True

"""The run directory's layout: its file names, and creating one without losing anything.

A run directory holds ``config.yaml`` (the resolved config), ``model.keras`` (the whole model,
images in and logits out), ``history.csv`` (per-epoch metrics), the report (five PNGs and
``report.html``), optionally ``tensorboard/`` and ``export/``, and ``metrics.json``
(:mod:`.record`), written last: its presence marks a finished run. Every file is written whole
(:mod:`catdog_zoo.util.files`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import ConfigError
from ..util.locks import LOCK_FILE
from ..util.owned import is_ours, remove_ours, temp_prefix
from ..util.system import unwritable

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
NOVELTY_FILE = "novelty.npy"  # the training photos' features, for rejecting what is neither class (runs/rejection.py)
CHECKPOINTS_DIR = "checkpoints"
# Written by catdog_zoo.reports.run_report just before metrics.json:
CURVES_FILE = "learning_curves.png"
CONFUSION_FILE = "confusion_matrix.png"
ERRORS_FILE = "errors.png"
CALIBRATION_FILE = "calibration.png"  # the reliability diagram, before and after temperature scaling
PR_ROC_FILE = "pr_roc.png"  # precision-recall and ROC curves per class
REPORT_FILE = "report.html"
REPORT_FILES = (CURVES_FILE, CONFUSION_FILE, ERRORS_FILE, CALIBRATION_FILE, PR_ROC_FILE, REPORT_FILE)
TRACKED_FILES = (CONFIG_FILE, MODEL_FILE, HISTORY_FILE, METRICS_FILE, REPORT_FILE)  # what trackers get as artifacts
TENSORBOARD_DIR = "tensorboard"  # with --tensorboard
EXPORT_DIR = "export"  # catdog-zoo export's default destination

RUN_FILES = (CONFIG_FILE, MODEL_FILE, HISTORY_FILE, METRICS_FILE, NOVELTY_FILE, CHECKPOINTS_DIR, TENSORBOARD_DIR, EXPORT_DIR,
             *REPORT_FILES, LOCK_FILE)
# What catdog-zoo writes inside its folders (catdog_zoo.util.owned); --overwrite removes these and nothing else.
OWN_INSIDE = {CHECKPOINTS_DIR: ("checkpoint", "temporary"), TENSORBOARD_DIR: ("tensorboard",),
              EXPORT_DIR: ("export", "temporary")}


def recorded_in(run_dir) -> str:
    """``recorded in RUN/config.yaml``: where a run's recorded settings are, for a message."""
    return f"recorded in {Path(run_dir) / CONFIG_FILE}"


def is_leftover(path: Path) -> bool:
    """A temporary file or folder a catdog-zoo process left in a run folder when it was killed (atomic
    writes, checkpoint or export staging, the write probe; named by :func:`catdog_zoo.util.owned.temp_prefix`):
    never a user's file, and removed by the next process that holds the folder's lock."""
    return is_ours(path, "temporary")


def remove_run_leftovers(folder: Path) -> None:
    """Remove :func:`is_leftover` files (call with the folder's lock held: no live process owns them)."""
    for path in Path(folder).iterdir() if Path(folder).is_dir() else ():
        if is_leftover(path):
            _remove(path)


def _remove(path: Path) -> None:
    try:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot remove {path}: {exc.strerror or exc}") from None


def is_run_dir(path) -> bool:
    """Whether ``path`` looks like a run directory (finished or not)."""
    return (Path(path) / CONFIG_FILE).is_file()


def check_run_dir(run_dir, overwrite: bool = False) -> None:
    """Refuse, before any work, a ``--run-dir`` that would lose something."""
    if not run_dir:
        return
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--run-dir {path} is a file, not a folder")
    if not path.is_dir():
        return
    entries = [p for p in path.iterdir() if p.name != LOCK_FILE and not is_leftover(p)]
    if not entries:
        return
    foreign = sorted(p.name for p in entries if p.name not in RUN_FILES)
    if foreign and (overwrite or (path / CONFIG_FILE).is_file()):
        raise ConfigError(f"run directory {path} holds files catdog-zoo did not write ({', '.join(foreign[:3])}); "
                          "--overwrite only replaces a run's own files: choose another --run-dir")
    if foreign:
        raise ConfigError(f"run directory {path} is not empty and not a run; choose another --run-dir")
    if overwrite:
        return
    if (path / METRICS_FILE).is_file():
        raise ConfigError(f"run directory {path} holds a finished run; pass --overwrite to replace it")
    raise ConfigError(f"run directory {path} holds an unfinished run; continue it with "
                      f"'catdog-zoo train --resume {path}' or pass --overwrite")


def create_run_dir(model_name: str, run_dir=None, runs_root="runs", overwrite: bool = False) -> Path:
    """A run directory ready to write: new, or (``overwrite``) emptied of a previous run's files only."""
    if run_dir:
        check_run_dir(run_dir, overwrite)
        path = Path(run_dir)
        remove_run_leftovers(path)
        if overwrite and path.is_dir():
            _remove_own_files(path)
    else:
        path = Path(runs_root)  # named in the error below if no run folder can be made there
    try:
        if not run_dir:
            path = _new_run_dir(Path(runs_root), model_name.replace(":", "_").replace("/", "_"))
        path.mkdir(parents=True, exist_ok=True)
        # A real write, not os.access: root passes access checks on read-only mounts too.
        fd, probe = tempfile.mkstemp(prefix=temp_prefix("write-test"), dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"cannot write to run directory {path}: {exc.strerror or exc}") from None
    return path


def check_runs_root(runs_root) -> None:
    """Refuse, before any work, a folder in which no new run folder can be made (``train`` without ``--run-dir``
    in a read-only current folder decoded every image first, then failed)."""
    why = unwritable(runs_root)
    if why:
        raise ConfigError(f"cannot make a run folder in {runs_root}: {why}; pass --run-dir DIR to write elsewhere")


def _new_run_dir(root: Path, name: str) -> Path:
    """``ROOT/NAME-YYYYmmdd-HHMMSS[-n]``, created here: two runs started in the same second get two folders."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = root / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"cannot make a new run folder in {root}")


def _remove_own_files(path: Path) -> None:
    """What a previous run wrote in ``path`` (``--overwrite``); inside its folders only what
    :func:`catdog_zoo.util.owned.is_ours` proves the zoo wrote, and a folder only once it is empty: a user's
    ``export/mine.tflite`` and ``checkpoints/epoch-0002-my-backup/`` stay."""
    for name in RUN_FILES:
        target = path / name
        if name == LOCK_FILE or not (target.exists() or target.is_symlink()):
            continue
        if target.is_dir() and not target.is_symlink():
            _remove_ours_inside(target, OWN_INSIDE.get(name, ()))
        else:
            _remove(target)  # a top-level run file (a link is removed as a link)


def _remove_ours_inside(folder: Path, kinds) -> None:
    """Everything of ``kinds`` in ``folder`` and below (a SavedModel in ``serving/MODEL/VERSION``), then each
    folder left empty."""
    for inner in sorted(folder.iterdir()):
        if any(remove_ours(inner, kind) for kind in kinds):
            continue
        if inner.is_dir() and not inner.is_symlink() and "export" in kinds:
            _remove_ours_inside(inner, kinds)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when nothing of the user's is left in it

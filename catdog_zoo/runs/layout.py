"""The run directory's layout: its file names, and creating one without losing anything.

A run directory holds ``config.yaml`` (the resolved config), ``model.keras`` (the whole model,
images in and logits out), ``history.csv`` (per-epoch metrics), the report (three PNGs and
``report.html``), optionally ``tensorboard/`` and ``export/``, and ``metrics.json``
(:mod:`.record`), written last: its presence marks a finished run. Every file is written whole
(:mod:`catdog_zoo.util.files`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import ConfigError

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
CHECKPOINTS_DIR = "checkpoints"
# Written by catdog_zoo.reports.run_report just before metrics.json:
CURVES_FILE = "learning_curves.png"
CONFUSION_FILE = "confusion_matrix.png"
ERRORS_FILE = "errors.png"
REPORT_FILE = "report.html"
REPORT_FILES = (CURVES_FILE, CONFUSION_FILE, ERRORS_FILE, REPORT_FILE)
TENSORBOARD_DIR = "tensorboard"  # with --tensorboard
EXPORT_DIR = "export"  # catdog-zoo export's default destination

RUN_FILES = (CONFIG_FILE, MODEL_FILE, HISTORY_FILE, METRICS_FILE, CHECKPOINTS_DIR, TENSORBOARD_DIR, EXPORT_DIR,
             *REPORT_FILES)


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
    if not path.is_dir() or not any(path.iterdir()):
        return
    foreign = sorted(p.name for p in path.iterdir() if p.name not in RUN_FILES)
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
        for name in RUN_FILES if overwrite and path.is_dir() else ():
            target = path / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe = model_name.replace(":", "_").replace("/", "_")
        path = Path(runs_root) / f"{safe}-{stamp}"
        n = 2
        while path.exists():
            path = Path(runs_root) / f"{safe}-{stamp}-{n}"
            n += 1
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A real write, not os.access: root passes access checks on read-only mounts too.
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"cannot write to run directory {path}: {exc.strerror or exc}") from None
    return path

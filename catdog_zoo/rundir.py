"""The run directory: every file is written whole or not at all (write to a temp name, then rename).

A run directory holds ``config.yaml`` (the resolved config), ``model.keras`` (the whole model,
images in and logits out), ``history.csv`` (per-epoch metrics), the report (three PNGs and
``report.html``), optionally ``tensorboard/``, and ``metrics.json``. The ``metrics.json`` file is
written last, so its presence marks a finished run.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import shutil
import os
import tempfile
import time
from pathlib import Path

import yaml

from .errors import ConfigError, ZooError

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
# Written by catdog_zoo.report just before metrics.json:
CURVES_FILE = "learning_curves.png"
CONFUSION_FILE = "confusion_matrix.png"
ERRORS_FILE = "errors.png"
REPORT_FILE = "report.html"
REPORT_FILES = (CURVES_FILE, CONFUSION_FILE, ERRORS_FILE, REPORT_FILE)
TENSORBOARD_DIR = "tensorboard"  # with --tensorboard
EXPORT_DIR = "export"  # catdog-zoo export's default destination

RUN_FILES = (CONFIG_FILE, MODEL_FILE, HISTORY_FILE, METRICS_FILE, "checkpoints", TENSORBOARD_DIR, EXPORT_DIR,
             *REPORT_FILES)
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
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
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
        if _no_space(exc):
            raise ZooError(f"cannot write {path}: no space left on the device (earlier files and "
                           "checkpoints are kept)") from None
        raise


def _no_space(exc) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def write_text(path, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    atomic_write(Path(path), write)


def write_json(path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_yaml(path, data) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_history(path, history: dict) -> None:
    """``{"loss": [...], "val_loss": [...], ...}`` as CSV with an ``epoch`` column (1-based).

    Numbers are written with 6 significant digits; other values (a ``stage`` name) as they are.
    """
    columns = list(history)
    rows = zip(*(history[c] for c in columns)) if columns else []
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["epoch", *columns])
    for i, row in enumerate(rows, start=1):
        writer.writerow([i, *(f"{v:.6g}" if isinstance(v, (int, float)) else v for v in row)])
    write_text(path, buf.getvalue())


def save_model(model, path) -> None:
    # Keras picks the format from the suffix, so the temporary file keeps ".keras".
    atomic_write(Path(path), model.save)


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


def read_run(run_dir) -> tuple:
    """``(config, metrics)`` of a finished run, with a clear error for anything else."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ZooError(f"run directory not found: {path}")
    metrics_path = path / METRICS_FILE
    if not metrics_path.is_file():
        hint = (f"; continue it with 'catdog-zoo train --resume {path}'" if (path / CONFIG_FILE).is_file() else "")
        raise ZooError(f"{path} is not a finished run (no {METRICS_FILE}){hint}")
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        config = yaml.safe_load((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ZooError(f"cannot read run {path}: {exc}") from None
    return config, metrics

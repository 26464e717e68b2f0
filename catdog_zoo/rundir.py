"""The run directory: every file is written whole or not at all (write to a temp name, then rename).

A run directory holds ``config.yaml`` (the resolved config), ``model.keras`` (the whole model,
images in and logits out), ``history.csv`` (per-epoch metrics) and ``metrics.json``. The
``metrics.json`` file is written last, so its presence marks a finished run.
"""

from __future__ import annotations

import csv
import io
import json
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


def _atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    _atomic(Path(path), write)


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
    _atomic(Path(path), model.save)


def create_run_dir(model_name: str, run_dir=None, runs_root="runs") -> Path:
    """A new, empty run directory; refuses one that already holds files."""
    if run_dir:
        path = Path(run_dir)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--run-dir {path} is a file, not a folder")
        if path.is_dir() and any(path.iterdir()):
            raise ConfigError(f"run directory {path} is not empty; choose another --run-dir")
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
    except OSError as exc:
        raise ConfigError(f"cannot create run directory {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"run directory {path} is not writable")
    return path


def read_run(run_dir) -> tuple:
    """``(config, metrics)`` of a finished run, with a clear error for anything else."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ZooError(f"run directory not found: {path}")
    metrics_path = path / METRICS_FILE
    if not metrics_path.is_file():
        raise ZooError(f"{path} is not a finished run (no {METRICS_FILE})")
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        config = yaml.safe_load((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ZooError(f"cannot read run {path}: {exc}") from None
    return config, metrics

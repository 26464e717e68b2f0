"""Per-epoch checkpoints in a run directory, for ``catdog-zoo train --resume``.

``RUN_DIR/checkpoints/epoch-NNNN/`` holds ``weights.npz`` (every variable of the model, trainable or
not, in ``model.weights`` order), ``optimizer.npz`` (the variables of the optimizer that was training:
the full model's, or the cached-feature head's) and ``state.json`` (stage, epochs done, history so
far, seconds spent). Resuming rebuilds the architecture from its spec and assigns the weights: cheaper
per epoch than a full ``.keras`` save, which only the finished run gets. Each is written into a temporary
folder renamed into place, so a checkpoint is complete or absent whatever moment a process dies; older
checkpoints are removed only after a newer one exists.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ZooError
from ..runs.layout import CHECKPOINTS_DIR as FOLDER
from ..util.files import no_space

BEST_FILE = "best-weights.npz"


def save(run_dir, epoch: int, model, optimizer, state: dict, best_weights=None) -> Path:
    """Checkpoint after ``epoch`` (1-based); ``best_weights``: early stopping's best epoch, to restore at the end."""
    root = Path(run_dir) / FOLDER
    root.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".epoch-", dir=root))
    try:
        np.savez(staging / "weights.npz", *[np.asarray(w.numpy()) for w in model.weights])
        np.savez(staging / "optimizer.npz", *[np.asarray(v.numpy()) for v in optimizer.variables])
        if best_weights is not None:
            np.savez(staging / BEST_FILE, *best_weights)
        (staging / "state.json").write_text(json.dumps({**state, "epoch": epoch}))
        for f in staging.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        target = root / f"epoch-{epoch:04d}"
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if no_space(exc):
            kept = latest(run_dir)
            raise ZooError(f"no space left on the device for the epoch {epoch} checkpoint"
                           + (f"; {kept.name} is kept" if kept else "") +
                           f"; free some space and continue with 'catdog-zoo train --resume {run_dir}'") from None
        raise
    for old in [*root.glob("epoch-*"), *root.glob(".epoch-*")]:  # older epochs, a killed process's staging
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest(run_dir):
    """The newest complete checkpoint folder, or None."""
    found = sorted((Path(run_dir) / FOLDER).glob("epoch-[0-9]*"))
    return found[-1] if found else None


def load_state(folder: Path) -> dict:
    try:
        return json.loads((folder / "state.json").read_text())
    except (OSError, ValueError) as exc:
        raise ZooError(f"checkpoint {folder} is unreadable: {exc}") from None


def _arrays(path: Path) -> list:
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def best_weights(folder: Path):
    """Early stopping's best weights saved with the checkpoint ``folder``, or None."""
    return _arrays(folder / BEST_FILE) if (folder / BEST_FILE).is_file() else None


def restore_weights(model, folder: Path) -> None:
    values = _arrays(folder / "weights.npz")
    if len(values) != len(model.weights) or any(v.shape != tuple(w.shape) for v, w in zip(values, model.weights)):
        raise ZooError(f"checkpoint {folder} does not match the model built from this run's config")
    for variable, value in zip(model.weights, values):
        variable.assign(value)


def restore_optimizer(optimizer, trainable_variables, folder: Path) -> None:
    """Give a freshly compiled model's optimizer the saved variables (same model, same stage)."""
    values = _arrays(folder / "optimizer.npz")
    optimizer.build(trainable_variables)
    if len(values) != len(optimizer.variables):
        raise ZooError(f"checkpoint {folder} does not match this model's optimizer "
                       f"({len(values)} saved variables, {len(optimizer.variables)} expected)")
    for variable, value in zip(optimizer.variables, values):
        variable.assign(value)


def remove(run_dir) -> None:
    shutil.rmtree(Path(run_dir) / FOLDER, ignore_errors=True)

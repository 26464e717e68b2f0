"""Per-epoch checkpoints in a run directory, for ``catdog-zoo train --resume``.

``RUN_DIR/checkpoints/epoch-NNNN/`` holds ``weights.npz`` (every variable of the model, trainable or
not, in ``model.weights`` order), ``optimizer.npz`` (the variables of the optimizer that was training:
the full model's, or the cached-feature head's) and ``state.json`` (stage, epochs done, history so
far, seconds spent). Resuming rebuilds the architecture from its spec and assigns the weights: cheaper
per epoch than a full ``.keras`` save, which only the finished run gets. Each is written into a temporary
folder renamed into place, so a checkpoint is complete or absent whatever moment a process dies; older
checkpoints are removed only after a newer one exists. Only folders named exactly ``epoch-NNNN`` are
checkpoints (:mod:`catdog_zoo.util.owned`): a user's ``epoch-0002-my-backup/`` beside them is neither
resumed from nor deleted, and a ``checkpoints`` folder that leads out of the run (a symbolic link) is refused.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ZooError
from ..runs.confine import confined
from ..runs.layout import CHECKPOINTS_DIR as FOLDER
from ..util.arrays import ArrayFileError, declared_npz_bytes, load_npz
from ..util.files import no_space
from ..util.owned import checkpoint_name, is_ours, remove_ours, temp_prefix
from ..util.reading import read_small_text
from ..util.system import problem

BEST_FILE = "best-weights.npz"
KEEP = 2  # checkpoints kept: the newest, and the one before as its fallback
MAX_STATE_BYTES = 64 << 20


def save(run_dir, epoch: int, model, optimizer, state: dict, best_weights=None) -> Path:
    """Checkpoint after ``epoch`` (1-based); ``best_weights``: early stopping's best epoch, to restore at the end."""
    root = confined(run_dir, Path(run_dir) / FOLDER)
    root.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=temp_prefix("epoch"), dir=root))
    try:
        np.savez(staging / "weights.npz", *[np.asarray(w.numpy()) for w in model.weights])
        np.savez(staging / "optimizer.npz", *[np.asarray(v.numpy()) for v in optimizer.variables])
        if best_weights is not None:
            np.savez(staging / BEST_FILE, *best_weights)
        (staging / "state.json").write_text(json.dumps({**state, "epoch": epoch}))
        for f in staging.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        target = root / checkpoint_name(epoch)
        if target.exists() or target.is_symlink():
            if not remove_ours(target, "checkpoint"):
                raise ZooError(f"{target} is in the way of the epoch {epoch} checkpoint and is not one catdog-zoo "
                               "wrote; move it and resume")
        staging.rename(target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if no_space(exc):
            kept = latest(run_dir)
            raise ZooError(f"cannot write the epoch {epoch} checkpoint: {problem(exc)}"
                           + (f"; {kept.name} is kept" if kept else "") +
                           f"; {'raise the limit' if 'may write' in problem(exc) else 'free some space'} and continue "
                           f"with 'catdog-zoo train --resume {run_dir}'") from None
        raise
    # Keep this epoch and the one before (the fallback if this one is found damaged); remove older epochs and
    # a killed process's staging.
    # (Numbered above this one: checkpoints a resume passed over as damaged; they must not outlive good ones.)
    keep = [p for p in _checkpoints(run_dir) if int(p.name[6:]) <= epoch][-KEEP:]
    for old in _checkpoints(run_dir) + _staging(root):
        if old not in keep:
            remove_ours(old, "checkpoint" if old.name.startswith("epoch") else "temporary")
    return target


def _checkpoints(run_dir) -> list:
    """The run's checkpoint folders, oldest first: ``epoch-NNNN`` folders only."""
    root = Path(run_dir) / FOLDER
    if not root.is_dir() or root.is_symlink():
        return []
    return sorted((p for p in root.iterdir() if is_ours(p, "checkpoint")), key=lambda p: int(p.name[6:]))


def _staging(root: Path) -> list:
    """Checkpoint staging folders a killed process left (``.epoch.zoo-tmp-XXXXXXXX``)."""
    return [p for p in root.glob(".epoch*") if is_ours(p, "temporary")] if root.is_dir() else []


def latest(run_dir):
    """The newest complete checkpoint folder, or None."""
    found = _checkpoints(run_dir)
    return found[-1] if found else None


def restore_latest_usable(run_dir, model, warn) -> tuple:
    """Give ``model`` the weights of the newest checkpoint that reads back whole and fits it; its
    ``(folder, state)``, or ``(None, None)``: a damaged one (truncated weights, a deleted or edited file) is
    passed over after one ``warn`` line naming it and what is used instead."""
    found = _checkpoints(run_dir)[::-1]
    for i, folder in enumerate(found):
        try:
            state = load_state(folder)
            values = _arrays(folder / "weights.npz", _bytes_of(model.weights))
            _fits(values, model, folder)
            _arrays(folder / "optimizer.npz", _optimizer_bytes(model.weights))
            best_weights(folder)
            for variable, value in zip(model.weights, values):
                variable.assign(value)
            return folder, state
        except ZooError as exc:
            instead = f"checkpoint {found[i + 1].name}" if i + 1 < len(found) else "the start"
            warn(f"Warning: {exc}; resuming from {instead} instead")
    return None, None


def load_state(folder: Path) -> dict:
    """``state.json``, checked: what a resumed run trusts to pick its stage, epoch and history."""
    try:
        state = json.loads(read_small_text(folder / "state.json", MAX_STATE_BYTES, "checkpoint state",
                                           follow_symlinks=False))
    except (ValueError, RecursionError) as exc:  # RecursionError: nested thousands deep
        raise ZooError(f"checkpoint {folder} is unreadable: state.json is not JSON ({str(exc)[:100]})") from None
    except ZooError as exc:
        raise ZooError(f"checkpoint {folder} is unreadable: {exc}") from None
    epoch = state.get("epoch") if isinstance(state, dict) else None
    history = state.get("history") if isinstance(state, dict) else None
    if not (isinstance(epoch, int) and epoch >= 1 and isinstance(state.get("stage"), str)
            and isinstance(history, dict) and all(isinstance(v, list) and len(v) == epoch for v in history.values())
            and all(_history_ok(key, values) for key, values in history.items())
            and isinstance(state.get("stages"), dict) and isinstance(state.get("seconds"), (int, float))
            and folder.name == f"epoch-{epoch:04d}" and _early_stopping_ok(state.get("early_stopping"))
            and _plan_ok(state.get("plan"))):
        raise ZooError(f"checkpoint {folder} is unreadable: state.json does not describe epoch {folder.name[6:]}")
    return state


def _history_ok(key: str, values: list) -> bool:
    """A history column: stage names, or numbers (None where a stage had no such metric; NaN where a run
    diverged, as Keras logs it)."""
    if key == "stage":
        return all(isinstance(v, str) for v in values)
    return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)


def _plan_ok(saved) -> bool:
    """The plan a run was made with (``training.plan.names``): [[stage, epochs], ...]; None before it was recorded."""
    return saved is None or (isinstance(saved, list) and all(
        isinstance(s, list) and len(s) == 2 and isinstance(s[0], str) and isinstance(s[1], int)
        and not isinstance(s[1], bool) for s in saved))


def _early_stopping_ok(saved) -> bool:
    keys = {"stage", "best_loss", "best_epoch", "best_logs", "wait", "stopped"}
    return saved is None or (isinstance(saved, dict) and keys <= set(saved) and isinstance(saved["wait"], int)
                             and isinstance(saved["best_logs"], (dict, type(None))))


def _arrays(path: Path, max_bytes: int) -> list:
    """The arrays of ``path``, whose zip directory and array headers may declare at most ``max_bytes`` (checked
    before anything is inflated: a deflate bomb is refused from its directory)."""
    try:
        return load_npz(path, max_bytes=max_bytes)
    except FileNotFoundError:
        reason = "is missing"
    except ArrayFileError as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - truncated or not an npz: zipfile, OSError, ValueError...
        reason = f"is damaged ({type(exc).__name__})"
    raise ZooError(f"checkpoint {path.parent} is unreadable: {path.name} {reason}")


def _bytes_of(variables) -> int:
    """What ``variables`` take as arrays, with room for the .npy headers."""
    return sum(math.prod(v.shape) * np.dtype(getattr(v.dtype, "name", v.dtype)).itemsize + 4096 for v in variables)


def _optimizer_bytes(variables) -> int:
    """At most what an optimizer keeps for ``variables`` (Adam: two slots per variable) and its counters."""
    return 3 * _bytes_of(variables) + (1 << 20)


def _fits(values: list, model, folder: Path) -> None:
    if len(values) != len(model.weights) or any(v.shape != tuple(w.shape) for v, w in zip(values, model.weights)):
        raise ZooError(f"checkpoint {folder} does not match the model built from this run's config")
    _sane(values, [w.dtype for w in model.weights], folder, "weights.npz")


def _sane(values: list, dtypes, folder: Path, name: str) -> None:
    """Every saved array of the variable's dtype, and finite: NaN weights train on in silence."""
    for value, dtype in zip(values, dtypes):
        wanted = getattr(dtype, "name", str(dtype))
        if value.dtype.name != wanted or (value.dtype.kind == "f" and not np.isfinite(value).all()):
            raise ZooError(f"checkpoint {folder} is unreadable: {name} holds "
                           f"{'non-finite values' if value.dtype.name == wanted else value.dtype.name + ' arrays'}")


def best_weights(folder: Path):
    """Early stopping's best weights saved with the checkpoint ``folder``, or None (at most the size of the
    checkpoint's whole-model weights, which were checked against the model)."""
    if not (folder / BEST_FILE).is_file():
        return None
    try:
        limit = declared_npz_bytes(folder / "weights.npz")
    except (ArrayFileError, OSError):
        limit = 0
    return _arrays(folder / BEST_FILE, limit + (1 << 20))


def restore_optimizer(optimizer, trainable_variables, folder: Path) -> None:
    """Give a freshly compiled model's optimizer the saved variables (same model, same stage)."""
    values = _arrays(folder / "optimizer.npz", _optimizer_bytes(trainable_variables))
    optimizer.build(trainable_variables)
    if len(values) != len(optimizer.variables) or any(
            v.shape != tuple(w.shape) for v, w in zip(values, optimizer.variables)):
        raise ZooError(f"checkpoint {folder} does not match this model's optimizer (delete the folder "
                       f"{folder.name} to resume from the checkpoint before it)")
    _sane(values, [w.dtype for w in optimizer.variables], folder, "optimizer.npz")
    if any(v.ndim == 0 and v.dtype.kind in "iu" and v < 0 for v in values):
        raise ZooError(f"checkpoint {folder} is unreadable: optimizer.npz holds a negative step count")
    for variable, value in zip(optimizer.variables, values):
        variable.assign(value)


def remove(run_dir) -> None:
    """The run's checkpoints (it finished); anything else a user put in the folder stays, and so does the
    folder then."""
    root = Path(run_dir) / FOLDER
    if root.is_symlink():
        return
    for folder in _checkpoints(run_dir) + _staging(root):
        remove_ours(folder, "checkpoint" if folder.name.startswith("epoch") else "temporary")
    try:
        root.rmdir()
    except OSError:
        pass

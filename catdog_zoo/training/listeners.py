"""Per-epoch concerns as listeners, as Keras callbacks are: each hears ``epoch_begin(stage, epoch)`` and
``epoch_end(stage, epoch, model, logs)`` (True: end the stage now) from either loop (:mod:`.loops`).

The runner calls them in order: reseeding, progress, the history, trackers, early stopping, then the
checkpoint, which saves what the others hold after the epoch.
"""

from __future__ import annotations

import time

from ..models.seeding import epoch_seed, reseed
from . import checkpoints


class Reseed:
    """Dropout and augmentation draws depend on (seed, epoch) only, so a resumed epoch repeats them."""

    def __init__(self, net, seed: int):
        self.net, self.seed = net, seed

    def epoch_begin(self, stage: str, epoch: int) -> None:
        reseed(self.net.layers, epoch_seed(self.seed, epoch))

    def epoch_end(self, stage, epoch, model, logs) -> bool:
        return False


class EpochLines:
    """One line per epoch for the replicated loop (Keras' ``fit`` prints its own)."""

    def __init__(self, say, last_epoch):
        self.say, self.last_epoch, self.started = say, last_epoch, 0.0

    def epoch_begin(self, stage: str, epoch: int) -> None:
        self.started = time.perf_counter()

    def epoch_end(self, stage, epoch, model, logs) -> bool:
        self.say(f"Epoch {epoch + 1}/{self.last_epoch()} - {time.perf_counter() - self.started:.1f}s - "
                 + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        return False


class History:
    """``history.csv``'s columns: one row per epoch, the stage's name first."""

    def __init__(self, columns: dict | None = None):
        self.columns = columns or {}
        self.last_row = {}

    def epoch_begin(self, stage: str, epoch: int) -> None:
        pass

    def epoch_end(self, stage, epoch, model, logs) -> bool:
        n = len(self.columns.get("stage", []))
        row = {"stage": stage, **{k: float(v) for k, v in logs.items()}}
        for key, value in row.items():
            self.columns.setdefault(key, [None] * n).append(value)
        self.last_row = row
        return False


class EarlyStop:
    """:class:`.early_stopping.EarlyStopping` as a listener: patience counted within the current stage."""

    def __init__(self, early, history: History, net, say):
        self.early, self.history, self.net, self.say = early, history, net, say

    def epoch_begin(self, stage: str, epoch: int) -> None:
        pass

    def epoch_end(self, stage, epoch, model, logs) -> bool:
        stop = self.early.update(len(self.history.columns["stage"]) - 1, self.history.last_row, self.net)
        if stop:
            self.say(f"Early stopping: no lower val_loss for {self.early.patience} epochs; keeping epoch "
                     f"{self.early.best_epoch + 1}")
        return stop


class Checkpoint:
    """A checkpoint after every epoch: weights, optimizer, and ``state()`` (history, stages, plan, ...)."""

    def __init__(self, run_dir, net, state, early=None):
        self.run_dir, self.net, self.state, self.early = run_dir, net, state, early

    def epoch_begin(self, stage: str, epoch: int) -> None:
        pass

    def epoch_end(self, stage, epoch, model, logs) -> bool:
        checkpoints.save(self.run_dir, epoch + 1, self.net, model.optimizer, self.state(stage),
                         self.early.best_weights if self.early is not None else None)
        return False

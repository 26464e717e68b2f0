"""Keeping the best epoch: patience on validation loss, as ``keras.callbacks.EarlyStopping(patience=N,
restore_best_weights=True)`` does, but for any stage and either loop, and carried through checkpoints so
a resumed run stops and keeps exactly what the uninterrupted one would have."""

from __future__ import annotations

import math

import numpy as np


class EarlyStopping:
    """Watches ``val_loss`` within one stage at a time; :meth:`EarlyStopping.finish` puts the best epoch's
    weights back."""

    def __init__(self, patience: int):
        self.patience = patience
        self.stage = None
        self._reset()

    def _reset(self) -> None:
        self.best_loss, self.best_epoch, self.best_logs = math.inf, None, None
        self.wait, self.stopped, self.best_weights = 0, False, None

    def begin(self, stage: str) -> None:
        """Start watching ``stage`` (a stage resumed from a checkpoint keeps what was loaded)."""
        if stage != self.stage:
            self.stage = stage
            self._reset()

    def update(self, epoch: int, logs: dict, model) -> bool:
        """Take epoch ``epoch``'s logs; True when the stage should stop now."""
        loss = float(logs.get("val_loss", math.inf))
        if loss < self.best_loss:
            self.best_loss, self.best_epoch, self.best_logs, self.wait = loss, epoch, dict(logs), 0
            self.best_weights = [np.array(w) for w in model.get_weights()]
        else:
            self.wait += 1
        self.stopped = self.wait >= self.patience
        return self.stopped

    def finish(self, model, last_epoch: int) -> dict:
        """Restore the best weights when a later epoch was worse; facts for the stage's record."""
        if self.best_epoch is None:
            return {}
        if self.best_epoch != last_epoch:
            model.set_weights(self.best_weights)
        return {"kept_epoch": self.best_epoch + 1, "stopped_early": self.stopped}

    def state(self) -> dict:
        return {"stage": self.stage, "best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
                "best_epoch": self.best_epoch, "best_logs": self.best_logs, "wait": self.wait, "stopped": self.stopped}

    def load(self, state: dict, best_weights) -> None:
        self.stage = state["stage"]
        self.best_loss = math.inf if state["best_loss"] is None else state["best_loss"]
        self.best_epoch, self.best_logs = state["best_epoch"], state["best_logs"]
        self.wait, self.stopped, self.best_weights = state["wait"], state["stopped"], best_weights

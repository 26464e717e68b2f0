"""What a stage may read and use (:class:`StageContext`), and what it hands back (:class:`StageResult`).

A stage never reaches into the runner: it trains through ``context.fit`` (so every epoch goes to the run's
listeners: history, checkpoint, early stopping, trackers) and returns what it made. The runner keeps the
results; the finish reads them, not the stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..data.batches import batches
from ..models.heads import compile_model
from .distribute import scaled_learning_rate


@dataclass
class StageContext:
    """One run's inputs as a stage sees them. ``fit(model, first, last, train, validation, checkpoint,
    fast_epochs=False)`` trains epochs ``first..last-1`` under this stage's name (the runner binds it)."""

    spec: object  # the model's ModelSpec
    cfg: object  # the resolved TrainConfig
    net: object  # the run's Keras model: what is saved, unless a stage's result says otherwise
    splits: object
    decoded: dict  # split name -> catdog_zoo.data.decode.Decoded
    cluster: object
    say: Callable
    progress: Callable
    fit: Callable = None

    def compile(self, model, learning_rate: float, steps_per_execution: int = 1) -> None:
        with self.cluster.scope():  # the optimizer's variables are mirrored too
            compile_model(model, self.cfg.optimizer,
                          scaled_learning_rate(learning_rate, self.cluster, self.cfg.scale_learning_rate),
                          steps_per_execution=steps_per_execution)

    def images(self, name, shuffle=False, first_epoch=0):
        return batches(self.decoded[name], self.cfg.batch_size, shuffle=shuffle, seed=self.cfg.seed,
                       first_epoch=first_epoch)

    def labels(self, name) -> np.ndarray:
        return np.asarray(self.decoded[name].split.labels, np.int32)


@dataclass
class StageResult:
    """What a stage made: ``facts`` for its entry in the run record's ``stages``; ``scorer``, a cheaper way to
    score the trained model than running it on images (a later stage's result replaces it, None included);
    ``cache_report``, the feature cache's report when the stage trained on cached features."""

    facts: dict = field(default_factory=dict)
    scorer: Optional[object] = None
    cache_report: Optional[object] = None

"""The runner: a run's stages in order, every epoch recorded and checkpointed, then the finish.

Data order and random layers are seeded per ``(seed, epoch)``, so a run resumed from the checkpoint of
epoch ``e`` repeats exactly what the interrupted run would have done from there.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from ..data.batches import batches
from ..data.entries import BlockCheck
from ..models.heads import compile_model
from ..models.seeding import epoch_seed, reseed
from ..util.names import lines, terminal
from ..util.progress import progress_factory
from . import checkpoints
from .distribute import Cluster, scaled_learning_rate
from .early_stopping import EarlyStopping
from .finish import finish
from .loops import fit_keras, fit_replicated, keras_verbosity
from .stages import plan
from .tensorboard import ReplicatedSummaries, keras_callbacks


@dataclass
class Setup:
    """Everything a run needs before its first epoch (made by :mod:`.session`)."""

    spec: object
    cfg: object
    net: object  # the Keras model, built (and restored from a checkpoint when resuming)
    splits: object
    decoded: dict  # split name -> catdog_zoo.data.decode.Decoded
    run_dir: Path
    cluster: Cluster
    quiet: bool
    fine_tune_from: int | None
    decode_seconds: float = 0.0
    stages: list | None = None  # planned already (and perhaps prepared early); else planned here


def say_to(quiet: bool):
    """What a run tells its user, on stdout (names in it through ``terminal``; ``lines`` guards the rest)."""
    def say(text):
        if not quiet:
            print(lines(text), flush=True)
    return say


class Runner:
    """One process's share of a run: the stages still to do, a checkpoint after every epoch."""

    def __init__(self, setup: Setup):
        self.spec, self.cfg, self.net = setup.spec, setup.cfg, setup.net
        self.splits, self.decoded = setup.splits, setup.decoded
        self.run_dir, self.cluster = setup.run_dir, setup.cluster
        quiet = setup.quiet or not self.cluster.is_chief  # one voice per run: the chief's
        self.say, self.verbose, self.progress = say_to(quiet), keras_verbosity(quiet), progress_factory(quiet)
        self.stages = setup.stages or plan(self.spec, self.cfg, setup.fine_tune_from)
        self.history: dict = {}
        self.summaries: dict = {}  # stage name -> what the run record says of it
        self.cache_report = None  # set by a stage that used the feature cache
        chief_logs = self.cfg.tensorboard and self.cluster.distributed and self.cluster.is_chief
        self.tensorboard = ReplicatedSummaries(self.run_dir) if chief_logs else None
        self.early = EarlyStopping(self.cfg.early_stopping) if self.cfg.early_stopping else None
        self.timings = {"decode_s": round(setup.decode_seconds, 2), "epochs_s": 0.0}
        self._stage = None

    def run(self, state=None, checkpoint=None):
        """Run the stages from the start, or from a checkpoint's ``state``; then finish the run."""
        if state:
            self.history, self.summaries = state["history"], state["stages"]
            if self.early is not None and state.get("early_stopping"):
                self.early.load(state["early_stopping"], checkpoints.best_weights(checkpoint))
        self.started = time.perf_counter() - (state["seconds"] if state else 0.0)
        resume_stage, done = (state["stage"], state["epoch"]) if state else (self.stages[0].name, 0)
        sizes = ", ".join(f"{len(self.decoded[name].split)} {name}" for name in ("train", "validation", "test"))
        self.say(terminal(f"Training {self.spec.name} on {self.splits.root}: {sizes} images, "
                          f"classes {', '.join(self.splits.class_names)}"))  # one line, whatever the names hold
        scorer, first, reached = None, 0, False
        for stage in self.stages:
            last = first + stage.epochs
            reached = reached or stage.name == resume_stage  # stages before the checkpoint's are done
            if reached:
                resumes = stage.name == resume_stage and done > first
                scorer = self._run_stage(stage, max(first, done), last, checkpoint if resumes else None)
            first = last
        return finish(self, scorer)

    def _run_stage(self, stage, first: int, last: int, checkpoint):
        started = time.perf_counter()
        if self.early is not None:
            self.early.begin(stage.name)
            if self.early.stopped:  # it had stopped before the checkpoint: nothing left to train
                first = last
        scorer = stage.run(self, first, last, checkpoint)
        seconds = self.summaries.get(stage.name, {}).get("seconds", 0) + time.perf_counter() - started
        val_accuracy = self.history["val_accuracy"][-1]
        kept = {}
        if self.early is not None:
            kept = self.early.finish(self.net, last_epoch=len(self.history["stage"]) - 1)
            val_accuracy = self.early.best_logs["val_accuracy"] if kept else val_accuracy
        self.summaries[stage.name] = {"epochs": stage.epochs, **stage.facts(), "seconds": round(seconds, 2),
                                      "val_accuracy": val_accuracy, **kept}
        return scorer

    # -- what stages use ------------------------------------------------------------------
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

    def fit(self, model, stage: str, first: int, last: int, train, validation, checkpoint,
            fast_epochs: bool = False) -> None:
        """Train ``model`` for epochs ``first..last-1`` (continuing ``checkpoint``'s optimizer state);
        ``fast_epochs`` (cached inputs, about a second each): one line per epoch, no progress bar."""
        if first >= last:
            return
        if checkpoint is not None:
            with self.cluster.scope():
                checkpoints.restore_optimizer(model.optimizer, model.trainable_variables, checkpoint)
        self._stage = stage
        started = time.perf_counter()
        if self.cluster.distributed:
            fit_replicated(self.cluster, model, self.cfg.batch_size, first, last, train, validation, self, self.say)
        else:
            verbose = (2 if self.verbose else 0) if fast_epochs else self.verbose  # 2: Keras' one line per epoch
            BlockCheck.failure = None
            try:
                fit_keras(model, first, last, train, validation, self, verbose,
                          keras_callbacks(self.run_dir, stage, self.cfg.tensorboard))
            except tf.errors.OpError:  # batches come through tf.data, which wraps what went wrong reading them
                if BlockCheck.failure is not None:
                    raise BlockCheck.failure from None
                raise
        self.timings["epochs_s"] = round(self.timings["epochs_s"] + time.perf_counter() - started, 2)

    # -- every epoch ----------------------------------------------------------------------
    def epoch_begin(self, epoch: int) -> None:
        # Dropout and augmentation draws depend on (seed, epoch) only, so a resumed epoch repeats them.
        reseed(self.net.layers, epoch_seed(self.cfg.seed, epoch))

    def epoch_end(self, epoch: int, model, logs: dict) -> bool:
        """Record and checkpoint epoch ``epoch``; True when early stopping ends the stage here."""
        n = len(self.history.get("stage", []))
        row = {"stage": self._stage, **{k: float(v) for k, v in logs.items()}}
        for key, value in row.items():
            self.history.setdefault(key, [None] * n).append(value)
        if self.tensorboard is not None:
            self.tensorboard.write(self._stage, epoch, logs)
        stop = self.early.update(n, row, self.net) if self.early is not None else False
        state = {"stage": self._stage, "history": self.history, "stages": self.summaries,
                 "seconds": time.perf_counter() - self.started}
        if self.early is not None:
            state["early_stopping"] = self.early.state()
        checkpoints.save(self.run_dir, epoch + 1, self.net, model.optimizer, state,
                         self.early.best_weights if self.early is not None else None)
        if stop:
            self.say(f"Early stopping: no lower val_loss for {self.cfg.early_stopping} epochs; keeping epoch "
                     f"{self.early.best_epoch + 1}")
        return stop


def warn(text: str) -> None:
    """A warning: one line on stderr, whatever the names in it hold."""
    print(terminal(text), file=sys.stderr, flush=True)

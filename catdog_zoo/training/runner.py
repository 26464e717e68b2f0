"""The runner: a run's planned stages in order, each epoch heard by the run's listeners, then the finish.

Data order and random layers are seeded per ``(seed, epoch)``, so a run resumed from the checkpoint of
epoch ``e`` repeats exactly what the interrupted run would have done from there.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from ..data.entries import BlockCheck
from ..errors import ZooError, first_line
from ..util.names import lines, terminal
from ..util.system import problem
from ..util.progress import progress_factory
from . import checkpoints
from .context import StageContext, StageResult
from .distribute import Cluster
from .early_stopping import EarlyStopping
from .finish import Trained, finish
from .listeners import Checkpoint, EarlyStop, EpochLines, History, Reseed
from .loops import fit_keras, fit_replicated, keras_verbosity
from .plan import names


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
    stages: list  # the plan (.plan), made once when the model was built
    decode_seconds: float = 0.0
    trackers: object = None  # .trackers.Trackers on the chief, when the run tracks anything


def say_to(quiet: bool):
    """What a run tells its user, on stdout (names in it through ``terminal``; ``lines`` guards the rest)."""
    def say(text):
        if not quiet:
            print(lines(text), flush=True)
    return say


class Runner:
    """One process's share of a run: the stages still to do, the listeners of every epoch."""

    def __init__(self, setup: Setup):
        self.spec, self.cfg, self.net = setup.spec, setup.cfg, setup.net
        self.splits, self.decoded = setup.splits, setup.decoded
        self.run_dir, self.cluster, self.stages = setup.run_dir, setup.cluster, setup.stages
        quiet = setup.quiet or not self.cluster.is_chief  # one voice per run: the chief's
        self.say, self.verbose, self.progress = say_to(quiet), keras_verbosity(quiet), progress_factory(quiet)
        self.history = History()
        self.summaries: dict = {}  # stage name -> what the run record says of it
        self.cache_report = None  # the feature cache's report, from the stage that trained on cached features
        self.trackers = setup.trackers
        self.early = EarlyStopping(self.cfg.early_stopping) if self.cfg.early_stopping else None
        self.timings = {"decode_s": round(setup.decode_seconds, 2), "epochs_s": 0.0}
        self.context = StageContext(self.spec, self.cfg, self.net, self.splits, self.decoded, self.cluster,
                                    self.say, self.progress)
        self._end = 0  # the last epoch of the fit under way, for the replicated loop's epoch lines

    def listeners(self) -> list:
        """Who hears every epoch, in the order they are told."""
        found = [Reseed(self.net, self.cfg.seed)]
        if self.cluster.distributed:
            found.append(EpochLines(self.say, lambda: self._end))
        found.append(self.history)
        if self.trackers is not None:
            found.append(self.trackers)
        if self.early is not None:
            found.append(EarlyStop(self.early, self.history, self.net, self.say))
        return found + [Checkpoint(self.run_dir, self.net, self._state, self.early)]

    def _state(self, stage: str) -> dict:
        state = {"stage": stage, "history": self.history.columns, "stages": self.summaries,
                 "seconds": time.perf_counter() - self.started, "plan": names(self.stages)}
        if self.early is not None:
            state["early_stopping"] = self.early.state()
        return state

    def run(self, state=None, checkpoint=None):
        """Run the stages from the start, or from a checkpoint's ``state``; then finish the run."""
        if state:
            self.history.columns, self.summaries = state["history"], state["stages"]
            if self.early is not None and state.get("early_stopping"):
                self.early.load(state["early_stopping"], checkpoints.best_weights(checkpoint))
        self.started = time.perf_counter() - (state["seconds"] if state else 0.0)
        self._listeners = self.listeners()
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
        return finish(Trained(self.context, self.net, self.run_dir, self.stages, self.history.columns, self.summaries,
                              self.cache_report, self.timings, time.perf_counter() - self.started, self.trackers),
                      scorer)

    def _run_stage(self, stage, first: int, last: int, checkpoint):
        started = time.perf_counter()
        if self.early is not None:
            self.early.begin(stage.name)
            if self.early.stopped:  # it had stopped before the checkpoint: nothing left to train
                first = last
        self.context.fit = lambda model, *args, **kwargs: self._fit(stage.name, model, *args, **kwargs)
        result = _ran(stage, lambda: stage.run(self.context, first, last, checkpoint), self.run_dir)
        if result.cache_report is not None:
            self.cache_report = result.cache_report
        seconds = self.summaries.get(stage.name, {}).get("seconds", 0) + time.perf_counter() - started
        val_accuracy = self.history.columns["val_accuracy"][-1]
        kept = {}
        if self.early is not None:
            kept = self.early.finish(self.net, last_epoch=len(self.history.columns["stage"]) - 1)
            val_accuracy = self.early.best_logs["val_accuracy"] if kept else val_accuracy
        self.summaries[stage.name] = {"epochs": stage.epochs, **result.facts, "seconds": round(seconds, 2),
                                      "val_accuracy": val_accuracy, **kept}
        return result.scorer

    def _fit(self, stage: str, model, first: int, last: int, train, validation, checkpoint,
             fast_epochs: bool = False) -> None:
        """Train ``model`` for epochs ``first..last-1`` (continuing ``checkpoint``'s optimizer state);
        ``fast_epochs`` (cached inputs, about a second each): one line per epoch, no progress bar."""
        if first >= last:
            return
        if checkpoint is not None:
            with self.cluster.scope():
                checkpoints.restore_optimizer(model.optimizer, model.trainable_variables, checkpoint)
        started, self._end = time.perf_counter(), last
        events = _Epochs(stage, self._listeners)
        if self.cluster.distributed:
            fit_replicated(self.cluster, model, self.cfg.batch_size, first, last, train, validation, events)
        else:
            verbose = (2 if self.verbose else 0) if fast_epochs else self.verbose  # 2: Keras' one line per epoch
            BlockCheck.failure = None
            try:
                fit_keras(model, first, last, train, validation, events, verbose)
            except tf.errors.OpError:  # batches come through tf.data, which wraps what went wrong reading them
                if BlockCheck.failure is not None:
                    raise BlockCheck.failure from None
                raise
        self.timings["epochs_s"] = round(self.timings["epochs_s"] + time.perf_counter() - started, 2)


class _Epochs:
    """The loops' two calls, handed to every listener with the stage's name; any listener may end the stage."""

    def __init__(self, stage: str, listeners: list):
        self.stage, self.listeners = stage, listeners

    def epoch_begin(self, epoch: int) -> None:
        for listener in self.listeners:
            listener.epoch_begin(self.stage, epoch)

    def epoch_end(self, epoch: int, model, logs: dict) -> bool:
        return any([listener.epoch_end(self.stage, epoch, model, logs) for listener in self.listeners])


def warn(text: str) -> None:
    """A warning: one line on stderr, whatever the names in it hold."""
    print(terminal(text), file=sys.stderr, flush=True)


def _ran(stage, run, run_dir):
    """``run()``'s :class:`StageResult`; a plugin stage's exception (or anything else than a result) is one line
    naming the stage and its distribution. The built-in stages' errors, and the system's, keep their own words."""
    origin = getattr(stage, "origin", "")
    try:
        result = run()
    except Exception as exc:
        if not origin or isinstance(exc, (ZooError, tf.errors.OpError)) or problem(exc):
            raise
        raise ZooError(f"stage '{stage.name}' ({origin}) failed: {type(exc).__name__}: {first_line(exc, 300)}; the "
                       f"epochs before it are kept: 'catdog-zoo train --resume {terminal(str(run_dir))}' continues "
                       "once it is fixed") from exc
    if not isinstance(result, StageResult):
        raise ZooError(f"stage '{stage.name}' ({origin or 'catdog-zoo'}) returned {type(result).__name__}, not a "
                       "catdog_zoo.StageResult")
    return result

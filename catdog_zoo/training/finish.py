"""The end of a run: score the trained model, save it, write its record and report, and clean up.

On the chief only; every other worker says which weights it holds and leaves (see :func:`leave`).
``metrics.json`` is written last: its presence marks a finished run.
"""

from __future__ import annotations

import functools
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ..config import SPLITS, keys_that_apply
from ..data.splits import small_splits_warning
from ..models.heads import compile_model, probabilities
from ..models.saving import save_model, weights_digest
from ..reports.notebook import RunResult
from ..reports.run_report import write_run_report
from ..runs.calibration import calibration_summary, curves
from ..runs.layout import HISTORY_FILE, MODEL_FILE, TRACKED_FILES
from ..runs.portable import recorded_config
from ..runs.record import RunRecord, data_fingerprint, intervals, write_history, write_record
from ..util.confidence import interval_text
from ..runs.rejection import unavailable
from ..util.names import terminal
from ..util.version import __version__
from . import checkpoints
from .distribute import scaled_learning_rate
from .operating_point import fit_rejection
from .stages import Scorer


def versions() -> dict:
    return {"catdog_zoo": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


@dataclass(frozen=True)
class Trained:
    """What the stages made, as the runner hands it to :func:`finish`: the finish reads this, not the runner."""

    context: object  # the stages' StageContext: spec, cfg, the data, the cluster, say; images() and labels()
    net: object  # the run's model, as trained
    run_dir: Path
    stages: list  # the plan, each stage's ``prepare`` and ``drawn``
    history: dict  # history.csv's columns
    summaries: dict  # stage name -> what the record says of it
    cache_report: object  # the feature cache's report, when a stage trained on cached features
    timings: dict
    train_seconds: float
    trackers: object = None

    def __getattr__(self, name):  # spec, cfg, splits, decoded, cluster, say, images, labels: the context's
        if name == "context":  # not set yet (a copy being made): never ask the context for itself
            raise AttributeError(name)
        return getattr(self.context, name)


def finish(trained: Trained, scorer) -> RunResult:
    """Score, save and report the trained model (``scorer``: a stage's cheaper way to score it)."""
    finish_started = time.perf_counter()
    train_seconds = trained.train_seconds
    cluster, net = trained.cluster, trained.net
    if cluster.distributed:
        if not cluster.is_chief:
            return leave(trained)
        net, scorer = single_copy(trained), None  # evaluate, report and save as one process does
    write_history(trained.run_dir / HISTORY_FILE, trained.history)
    scorer = scorer or Scorer(net, trained.images)
    scores = {"validation": scorer.evaluate("validation")}
    has_test = len(trained.decoded["test"].split) > 0
    scores["test"] = scorer.evaluate("test") if has_test else {"accuracy": None, "loss": None}
    save_model(net, trained.run_dir / MODEL_FILE)
    record = make_record(trained, net, scores, train_seconds)
    record.intervals = intervals(record)
    held_out = "test" if has_test else "validation"
    logits = functools.cache(scorer.logits)  # each split predicted once, for calibration and the report
    record.calibration = _calibration(trained, logits, held_out)
    record.rejection = _rejection(trained, net, scorer)
    record.confusion_matrix = _report(trained, net, record, logits, held_out)
    record.timings["finish_s"] = round(time.perf_counter() - finish_started, 2)
    write_record(trained.run_dir, record)  # last: marks the run finished
    checkpoints.remove(trained.run_dir)
    if trained.trackers is not None:
        trained.trackers.artifacts(trained.run_dir / name for name in TRACKED_FILES)
        trained.trackers.finish("finished", record.to_dict())
    cluster.barrier()
    trained.say(f"Done in {train_seconds:.1f}s: val_accuracy {_scored(record, 'validation')}, "
                f"test_accuracy {_scored(record, 'test')}; run saved to {terminal(trained.run_dir)}")
    if record.baseline_note():
        warn(f"Warning: {record.baseline_note()}")
    return RunResult(trained.run_dir, record)


def _scored(record: RunRecord, split: str) -> str:
    """"0.9500 (95% CI 0.7639-0.9911, 20 images)", or "n/a" for an empty split."""
    accuracy = record.val_accuracy if split == "validation" else record.test_accuracy
    if accuracy is None:
        return "n/a"
    return f"{accuracy:.4f} ({interval_text(record.interval(split))}, {record.split_sizes.get(split)} images)"


def make_record(trained, net, scores: dict, train_seconds: float) -> RunRecord:
    spec, cfg, cluster = trained.spec, trained.cfg, trained.cluster
    last = {k: v[-1] for k, v in trained.history.items()}
    val, test = scores["validation"], scores["test"]

    def number(value):
        return None if value is None else float(value)
    return RunRecord(
        model=spec.name, plugin=spec.plugin, distribution=spec.distribution, plugin_version=spec.version,
        seed=cfg.seed, epochs=cfg.epochs, fine_tune_epochs=cfg.fine_tune_epochs,
        train_accuracy=last["accuracy"], train_loss=last["loss"],
        val_accuracy=float(val["accuracy"]), val_loss=float(val["loss"]),
        test_accuracy=number(test["accuracy"]), test_loss=number(test["loss"]),
        train_seconds=round(train_seconds, 2), stages=trained.summaries,
        feature_cache=trained.cache_report.as_dict() if trained.cache_report else {"used": False},
        num_params=int(net.count_params()),
        trainable_params=int(sum(int(w.numpy().size) for w in net.trainable_weights)),
        num_classes=len(trained.splits.class_names), class_names=list(trained.splits.class_names),
        image_size=list(cfg.image_size), data_root=trained.splits.root,
        split_sizes={name: len(trained.decoded[name].split) for name in SPLITS},
        data_fingerprint=data_fingerprint(trained.decoded[name].digest for name in SPLITS),
        majority_baseline=round(trained.splits.majority_baseline("validation"), 4),
        skipped_files=sum(len(trained.decoded[name].skipped) for name in SPLITS),
        versions=versions(),
        strategy={**cluster.describe(), "global_batch_size": cfg.batch_size * cluster.replicas,
                  "learning_rate": scaled_learning_rate(cfg.learning_rate, cluster, cfg.scale_learning_rate),
                  "weights_sha256": weights_digest(net)},
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        timings={**trained.timings,
                 "features_s": round(trained.cache_report.extract_seconds, 2) if trained.cache_report else 0.0},
    )


def _rejection(trained, net, scorer) -> dict:
    """The operating point of "unknown" answers; a failure is a warning, never the loss of a trained run."""
    try:
        return fit_rejection(trained, net, scorer)
    except Exception as exc:  # noqa: BLE001 - the model and metrics matter more
        warn(f"Warning: could not set up rejection of unknown images: {type(exc).__name__}: {exc}")
        return unavailable(f"setting it up failed at the end of training ({type(exc).__name__})")


def _calibration(trained, logits, split: str):
    """The record's ``calibration``: temperature scaling fitted on validation logits and judged on ``split``
    (ECE, NLL and reliability bins before and after), and ``split``'s PR and ROC curves per class.
    A failure is a warning and None, never the loss of a trained run."""
    try:
        held, labels = logits(split), trained.labels(split)
        summary = calibration_summary(logits("validation"), trained.labels("validation"), held, labels)
        keys = ("temperature", "ece_before", "ece_after", "nll_before", "nll_after", "bins_before", "bins_after")
        return {**{key: summary[key] for key in keys}, "split": split,
                "curves": curves(probabilities(held), labels, list(trained.splits.class_names))}
    except Exception as exc:  # noqa: BLE001 - the model and metrics matter more than this measurement
        warn(f"Warning: could not measure calibration: {type(exc).__name__}: {exc}")
        return None


def _report(trained, net, record: RunRecord, logits, split: str):
    """Figures and report.html; a plotting failure is a warning, never the loss of a trained run."""
    decoded = trained.decoded[split]
    shown = keys_that_apply(recorded_config(trained.cfg, trained.run_dir), trained.spec)  # a scratch CNN: no engine keys
    try:
        return write_run_report(trained.run_dir, shown, record, trained.history, {
            "split": split, "images": decoded.images, "labels": decoded.split.labels,
            "probs": probabilities(logits(split)), "paths": decoded.split.paths, "model": net,
            "stage_marks": {stage.name: stage.drawn for stage in trained.stages if getattr(stage, "drawn", "")},
            "small_data": small_splits_warning(trained.splits, record.split_sizes)})
    except Exception as exc:  # noqa: BLE001 - the model and metrics matter more than the pictures
        warn(f"Warning: could not write the run report: {type(exc).__name__}: {exc}")
        return None


def warn(text: str) -> None:
    """One line on stderr, whatever the exception's text holds (names of files, classes, layers)."""
    print(terminal(text), file=sys.stderr, flush=True)


def single_copy(trained):
    """The trained weights in a model built outside the strategy, for the chief's single-process finish."""
    copy = trained.spec.build(len(trained.splits.class_names), trained.cfg.image_size, weights=None)
    for stage in trained.stages:  # trainable as the stages left the run's model: the same weights, in order
        prepare = getattr(stage, "prepare", None)
        if prepare is not None:
            prepare(copy)
    copy.set_weights([np.asarray(w) for w in trained.net.get_weights()])
    compile_model(copy, trained.cfg.optimizer, trained.cfg.learning_rate)
    return copy


def leave(trained) -> RunResult:
    """A non-chief worker's end: say which weights it holds, then remove its scratch folder."""
    cluster = trained.cluster
    digest = weights_digest(trained.net)
    print(f"Worker {cluster.worker_index} of {cluster.workers} done: weights sha256 {digest}", flush=True)
    shutil.rmtree(trained.run_dir, ignore_errors=True)
    cluster.barrier()  # the chief meets us there once its run directory is complete
    return RunResult(None, None, {"worker_index": cluster.worker_index, "weights_sha256": digest})

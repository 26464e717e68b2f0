"""A finished run as typed records: :class:`RunRecord` (``metrics.json``) and the run's history.

Every writer and reader of ``metrics.json`` goes through :class:`RunRecord`, so its keys are named in
one place. Reading is lenient in one direction only: keys an older version did not write take their
defaults (old run directories still load), keys this version does not know are kept aside, and every
value that is there must have the right type.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

from ..config import KEYS, TrainConfig, config_from_run
from ..errors import ConfigError, ZooError
from ..util.confidence import LEVEL, accuracy_interval
from ..util.files import finite, write_json, write_text
from ..util.reading import read_small_text, read_yaml
from .layout import CONFIG_FILE, HISTORY_FILE, METRICS_FILE

MAX_RUN_FILE_BYTES = 16 << 20  # metrics.json and config.yaml are kilobytes; refuse anything absurd
MAX_HISTORY_ROWS = KEYS["epochs"].maximum + KEYS["fine_tune_epochs"].maximum


@dataclass
class RunRecord:
    """What ``metrics.json`` holds, in the order it is written."""

    model: str
    class_names: list
    val_accuracy: float
    plugin: str = ""
    distribution: str = ""
    plugin_version: str = ""
    seed: Optional[int] = None
    epochs: int = 0
    fine_tune_epochs: int = 0
    train_accuracy: Optional[float] = None
    train_loss: Optional[float] = None
    val_loss: Optional[float] = None
    test_accuracy: Optional[float] = None
    test_loss: Optional[float] = None
    # 95% Wilson intervals of the accuracies: {"method", "level", "val_accuracy": [low, high], "test_accuracy": ...}
    intervals: dict = field(default_factory=dict)
    train_seconds: Optional[float] = None
    stages: dict = field(default_factory=dict)  # stage name -> {epochs, seconds, val_accuracy, ...}
    feature_cache: dict = field(default_factory=lambda: {"used": False})
    num_params: Optional[int] = None
    trainable_params: Optional[int] = None
    num_classes: Optional[int] = None
    image_size: list = field(default_factory=list)
    data_root: str = ""
    split_sizes: dict = field(default_factory=dict)
    data_fingerprint: str = ""  # sha256 (16 hex) of every split's file contents: same data, same fingerprint
    majority_baseline: Optional[float] = None  # validation accuracy of always answering the commonest class
    skipped_files: int = 0
    versions: dict = field(default_factory=dict)
    strategy: dict = field(default_factory=dict)
    finished_at: str = ""
    timings: dict = field(default_factory=dict)  # this process's seconds: decode_s, features_s, epochs_s, finish_s
    confusion_matrix: Optional[dict] = None  # {split, class_names, matrix, worst_errors}
    per_class: dict = field(default_factory=dict)  # held-out split: class -> precision, recall, f1, support
    # held-out split: temperature, ece/nll/bins before and after it, split, curves (class -> AUC, AP, points)
    calibration: Optional[dict] = None
    rejection: dict = field(default_factory=dict)  # the operating point of "unknown" answers (runs/rejection.py)
    extra: dict = field(default_factory=dict)  # keys written by another version, kept as they were

    ORDER = ("model", "plugin", "distribution", "plugin_version", "seed", "epochs", "fine_tune_epochs",
             "train_accuracy", "train_loss", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
             "intervals", "train_seconds", "stages", "feature_cache", "num_params", "trainable_params", "num_classes",
             "class_names", "image_size", "data_root", "split_sizes", "data_fingerprint", "majority_baseline",
             "skipped_files", "versions", "strategy",
             "finished_at", "timings", "confusion_matrix", "per_class", "calibration", "rejection")

    @property
    def overfit_gap(self) -> Optional[float]:
        """Final training accuracy minus validation accuracy: large means memorising."""
        if self.train_accuracy is None or self.val_accuracy is None:
            return None
        return self.train_accuracy - self.val_accuracy

    def interval(self, split: str) -> Optional[list]:
        """The 95% interval of ``split``'s (``validation``, ``test``) accuracy, from its accuracy and number of
        images (runs of older versions have no ``intervals``; the rule is :mod:`catdog_zoo.util.confidence`'s)."""
        accuracy = self.val_accuracy if split == "validation" else self.test_accuracy
        return accuracy_interval(accuracy, self.split_sizes.get(split))

    @property
    def at_baseline(self) -> bool:
        """Whether the model does no better than always answering the commonest class (a collapsed model)."""
        return self.majority_baseline is not None and self.val_accuracy <= self.majority_baseline + 1e-9

    def baseline_note(self):
        """Why the accuracy means nothing when :attr:`RunRecord.at_baseline`, in words (None otherwise): said by ``train``,
        report.html and ``compare`` alike."""
        if not self.at_baseline:
            return None
        return (f"validation accuracy {self.val_accuracy:.2%} is at or below the majority-class baseline "
                f"{self.majority_baseline:.2%} (always answering the commonest class): the model learned nothing "
                "that shows on this split" + (" - with classes this imbalanced, add photos of the smaller ones"
                                              if self.majority_baseline >= 0.7 else ""))

    @property
    def total_epochs(self) -> int:
        """Every planned stage's epochs (a plugin's stages too); a record without stages: the two built-in ones."""
        planned = [s.get("epochs") for s in self.stages.values() if isinstance(s, dict)] if self.stages else []
        if planned and all(isinstance(e, int) and not isinstance(e, bool) for e in planned):
            return sum(planned)
        return (self.epochs or 0) + (self.fine_tune_epochs or 0)

    @property
    def origin(self) -> str:
        """The distribution (or plugin) that registered the model."""
        return self.distribution or self.plugin

    def to_dict(self) -> dict:
        return {**{name: finite(getattr(self, name)) for name in self.ORDER}, **self.extra}

    @classmethod
    def from_dict(cls, data, where: str = METRICS_FILE) -> "RunRecord":
        if not isinstance(data, dict):
            raise ZooError(f"{where} must be a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        missing = [name for name in ("model", "class_names", "val_accuracy") if data.get(name) is None]
        if missing:
            raise ZooError(f"{where} has no {missing[0]}; it was not written by a finished catdog-zoo run")
        values = {}
        for name, value in data.items():
            if name in known:
                values[name] = _typed(name, value, known[name].type, where)
        record = cls(**values)
        record.extra = {k: v for k, v in data.items() if k not in known}
        _check_ranges(record, where)
        return record


_FRACTIONS = ("train_accuracy", "val_accuracy", "test_accuracy", "majority_baseline")
_NON_NEGATIVE = ("train_loss", "val_loss", "test_loss", "train_seconds", "epochs", "fine_tune_epochs",
                 "num_params", "trainable_params", "skipped_files")


def _check_ranges(record: "RunRecord", where: str) -> None:
    """Values that could only come from an edit: refused, so a shared run is never ranked or used on them."""
    def bad(name, value, wanted):
        raise ZooError(f"{where}: '{name}' must be {wanted}, got {str(value)[:60]}")
    for name in _FRACTIONS:
        value = getattr(record, name)
        if value is not None and not 0 <= value <= 1:
            bad(name, value, "between 0 and 1")
    for name in _NON_NEGATIVE:
        value = getattr(record, name)
        if value is not None and not 0 <= value < 1e13:
            bad(name, value, "a non-negative number")
    names = record.class_names
    if not (len(names) >= 2 and all(isinstance(c, str) and c for c in names) and len(set(names)) == len(names)):
        bad("class_names", names, "two or more distinct class names")
    if record.num_classes is not None and record.num_classes != len(names):
        bad("num_classes", record.num_classes, f"{len(names)}, the number of class_names")
    if not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
               for k, v in record.split_sizes.items()):
        bad("split_sizes", record.split_sizes, "a mapping of split names to image counts")


_TYPES = {"str": str, "list": list, "dict": dict, "float": (int, float), "int": int}
_WORDS = {"str": "a string", "list": "a list", "dict": "a mapping", "float": "a finite number", "int": "an integer"}


def _typed(name: str, value, annotation: str, where: str):
    """``value`` if it has the declared type (None allowed for Optional fields), else one error line."""
    optional = annotation.startswith("Optional[")
    base = annotation.removeprefix("Optional[").rstrip("]")
    if value is None and optional:
        return None
    wanted = _TYPES[base]
    if isinstance(value, bool) or not isinstance(value, wanted) or (
            base == "float" and not math.isfinite(value)):
        raise ZooError(f"{where}: '{name}' must be {_WORDS[base]}, got {value!r}")
    return float(value) if base == "float" else value


def intervals(record: "RunRecord") -> dict:
    """The record's ``intervals``: each accuracy's 95% Wilson interval, computed from it and its split's size."""
    return {"method": "wilson", "level": LEVEL, "val_accuracy": record.interval("validation"),
            "test_accuracy": record.interval("test")}


def data_fingerprint(split_digests) -> str:
    """The ``data_fingerprint`` of a run: 16 hex of SHA-256 over its splits' content digests, in order."""
    return hashlib.sha256("".join(split_digests).encode()).hexdigest()[:16]


def write_record(run_dir, record: RunRecord) -> None:
    write_json(Path(run_dir) / METRICS_FILE, record.to_dict())


def read_run_file(path: Path) -> str:
    """A run file's text: a regular file (no symlink, FIFO or device) of sane size, or one error line."""
    return read_small_text(path, MAX_RUN_FILE_BYTES, "run file", follow_symlinks=False)


def read_run_config(path: Path):
    """A run's ``config.yaml``, parsed (checked by :func:`catdog_zoo.config.config_from_run`)."""
    return read_yaml(path, MAX_RUN_FILE_BYTES, "run file", follow_symlinks=False, error=ConfigError)


def read_run(run_dir) -> tuple[TrainConfig, RunRecord]:
    """``(config, record)`` of a finished run, both checked, with a clear error for anything else."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ZooError(f"run directory not found: {path}")
    metrics_path = path / METRICS_FILE
    if not metrics_path.exists():
        hint = (f"; continue it with 'catdog-zoo train --resume {path}'" if (path / CONFIG_FILE).is_file() else "")
        raise ZooError(f"{path} is not a finished run (no {METRICS_FILE}){hint}")
    try:
        metrics = json.loads(read_run_file(metrics_path))
    except (ValueError, RecursionError) as exc:
        raise ZooError(f"cannot read run {path}: {METRICS_FILE} is not JSON ({str(exc)[:200]})") from None
    config = read_run_config(path / CONFIG_FILE)
    return config_from_run(config, str(path / CONFIG_FILE)), RunRecord.from_dict(metrics, str(metrics_path))


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


def read_history(run_dir, columns=None) -> dict:
    """``history.csv`` as ``{column: [values]}`` (only ``columns``, when given); numbers as floats, empty cells
    as None. Bounded before it is parsed: a regular run file (16 MiB at most), one row per epoch a run can have,
    cells of CSV's usual size; anything else is one error line naming the file."""
    path = Path(run_dir) / HISTORY_FILE
    if not (path.exists() or path.is_symlink()):
        return {}
    text = read_run_file(path)
    history: dict = {}
    try:
        for number, row in enumerate(csv.DictReader(io.StringIO(text, newline=""))):
            if number >= MAX_HISTORY_ROWS:
                raise ZooError(f"{path} has more than {MAX_HISTORY_ROWS} rows, more epochs than a run can have")
            for key, value in row.items():
                if columns is not None and key not in columns:
                    continue
                try:
                    value = float(value) if value not in ("", None) else None
                except (ValueError, TypeError):
                    pass
                history.setdefault(key, []).append(value)
    except csv.Error as exc:
        raise ZooError(f"{path} is not a history CSV ({str(exc)[:100]})") from None
    return history

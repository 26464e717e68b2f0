"""Scoring a finished run's model on one split of its data, or on every image of another folder with its classes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..config import SPLITS
from ..data.decode import decode_split, describe_skipped
from ..data.prepare import load_splits
from ..data.splits import ALL, describe_left_out
from ..errors import ZooError
from ..models.heads import is_binary, loss_for, probabilities
from ..models.saving import load_model
from ..util.confidence import accuracy_interval
from ..util.locks import folder_lock
from ..util.names import terminal
from ..util.progress import SILENT
from .inference import open_run_model
from .layout import MODEL_FILE
from .portable import run_data
from .record import read_run
from .scores import cross_entropy, per_class


def load_run_model(run_dir):
    """A finished run's ``model.keras``, loaded in Keras safe mode."""
    return load_model(Path(run_dir) / MODEL_FILE)


def decode_run_split(config, split: str, splits=None, progress=SILENT) -> tuple:
    """``(splits, decoded)``: one split of a run's data, chosen with the run's own seed and fractions."""
    splits = splits or load_splits(config)
    return splits, decode_split(splits.get(split), config.image_size, progress, f"decoding {split}",
                                config.decoded_cache)


def evaluate(run_dir, *, data: str | None = None, split: str | None = None, batch_size: int | None = None,
             tta: bool = False, reject: bool = True, progress=SILENT) -> dict:
    """Accuracy and loss of a finished run's model on ``split`` of its data, chosen with the run's own
    seed and fractions; ``data`` scores another folder with the same class folders instead; ``tta``
    averages each image's probabilities with its mirror image's.

    ``split``: ``train``, ``validation``, ``test``, or ``all`` (every image of the folder). Default:
    ``validation`` of the run's own data (recorded, or moved and given as ``data``: recognised by its
    fingerprint, :mod:`.portable`), ``all`` of any other folder: new photos are scored whole.

    Returns ``{"run", "data", "own_data", "split", "num_images", "accuracy", "interval", "loss", "tta",
    "engine", "per_class", "rejection"}``: ``own_data`` whether ``data`` is the run's own; ``interval``
    the accuracy's 95% Wilson interval (:mod:`catdog_zoo.util.confidence`); ``engine`` what ran the frozen
    backbone (:mod:`.inference`); ``per_class`` maps each class to its precision, recall, F1 and support;
    ``accuracy`` counts every image, as without rejection, and ``rejection`` says how many images the run's
    operating point would answer "unknown" and the accuracy on the others (``{"available": False, "why"}``
    when it cannot, or ``reject`` is False).

    Holds the run's lock shared (:func:`catdog_zoo.util.locks.folder_lock`): beside other readers, never
    beside ``train`` or ``export`` of the run.
    """
    if split is not None and split not in (*SPLITS, ALL):
        raise ZooError(f"unknown split '{split}' (use {', '.join(SPLITS)} or {ALL})")
    with folder_lock(run_dir, shared=True):
        return _evaluate(run_dir, data, split, batch_size, tta, reject, progress)


def _evaluate(run_dir, data, split, batch_size, tta: bool, reject: bool, progress) -> dict:
    config, record = read_run(run_dir)
    found = run_data(run_dir, config, record, data)
    splits = found.splits
    if split is None:
        split = "validation" if found.own else ALL
    if found.note:
        print(f"Note: {found.note}; scoring {'all its images' if split == ALL else f'its {split} split'}"
              f"{'' if split == ALL else ' (--split all scores every image)'}", file=sys.stderr)
    model = load_run_model(run_dir)
    scorer, novelty, why = open_run_model(run_dir, config, record, model, reject)
    decoded = decode_run_split(config, split, splits, progress)[1]
    if decoded.skipped:
        print(f"Warning: {describe_skipped(decoded.skipped)}", file=sys.stderr)
    if splits.left_out:
        print(f"Warning: {describe_left_out(splits.left_out)}", file=sys.stderr)
    if not len(decoded.split):
        raise ZooError(f"the {split} split of {terminal(splits.root)} has no usable images")
    size = batch_size or config.batch_size
    labels = np.asarray(decoded.split.labels)
    ood = []

    def batches(score):
        with progress(f"scoring {split}", len(labels)) as bar:
            for i in range(0, len(labels), size):
                images = decoded.images[i:i + size]
                features = scorer.features(images) if novelty is not None else None
                if features is not None:
                    ood.append(novelty.scores(features))
                yield score(images, features)
                bar.advance(min(size, len(labels) - i))
    if tta:
        probs = np.concatenate(list(batches(lambda x, f: scorer.probabilities(x, tta=True, features=f))))
        loss = cross_entropy(probs, labels)
    else:  # one pass: the loss Keras trains with, on the logits
        logits = np.concatenate(list(batches(scorer.logits)))
        probs = probabilities(logits)
        targets = labels.astype(np.float32)[:, None] if is_binary(model) else labels
        loss = float(loss_for(model)(targets, logits))
    right = probs.argmax(axis=1) == labels
    return {"run": str(run_dir), "data": splits.root, "own_data": found.own, "split": split,
            "num_images": len(decoded.split), "accuracy": float(right.mean()),
            "interval": accuracy_interval(float(right.mean()), len(decoded.split)),
            "loss": loss, "tta": tta, "engine": scorer.engine,
            "per_class": per_class(labels, probs.argmax(axis=1), record.class_names),
            "rejection": rejection_summary(novelty, np.concatenate(ood) if ood else None, right,
                                           why or "turned off (--no-reject)")}


def rejection_summary(novelty, scores, right, why: str) -> dict:
    """How many images the operating point rejects, and the accuracy on those it accepts."""
    if novelty is None:
        return {"available": False, "why": why}
    rejected = scores > novelty.threshold
    accepted = ~rejected
    return {"available": True, "threshold": novelty.threshold, "rejected": int(rejected.sum()),
            "rejected_fraction": float(rejected.mean()) if len(rejected) else 0.0,
            "accepted_accuracy": float(right[accepted].mean()) if accepted.any() else None,
            "rejected_accuracy": float(right[rejected].mean()) if rejected.any() else None}

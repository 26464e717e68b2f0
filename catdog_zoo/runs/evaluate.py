"""Scoring a finished run's model on one split of its data (or of other data with the same classes)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.batches import batches
from ..data.decode import decode_split, describe_skipped
from ..data.prepare import load_splits
from ..errors import ZooError
from ..models.heads import compile_model, probabilities
from ..models.saving import load_model
from .layout import MODEL_FILE
from .record import read_run


def load_run_model(run_dir):
    """A finished run's ``model.keras``, loaded in Keras safe mode."""
    return load_model(Path(run_dir) / MODEL_FILE)


def decode_run_split(config, split: str, splits=None) -> tuple:
    """``(splits, decoded)``: one split of a run's data, chosen with the run's own seed and fractions."""
    splits = splits or load_splits(config)
    return splits, decode_split(splits.get(split), config.image_size)


def class_probabilities(model, images, tta: bool = False):
    """Per-class probabilities of float images; with ``tta``, the mean over the image and its mirror image
    (test-time augmentation with the one transform every model here trains with: a horizontal flip)."""
    probs = probabilities(model.predict_on_batch(images))
    if tta:
        probs = (probs + probabilities(model.predict_on_batch(images[:, :, ::-1]))) / 2
    return probs


def evaluate(run_dir, *, data: str | None = None, split: str = "validation", batch_size: int | None = None,
             tta: bool = False) -> dict:
    """Accuracy and loss of a finished run's model on ``split`` of its data, chosen with the run's own
    seed and fractions; ``data`` scores other data with the same classes instead; ``tta`` averages each
    image's probabilities with its mirror image's.

    Returns ``{"run", "split", "num_images", "accuracy", "loss", "tta"}``.
    """
    config, record = read_run(run_dir)
    if data is not None:
        config = replace(config, data=data)
    splits = load_splits(config)
    if list(splits.class_names) != list(record.class_names):
        raise ZooError(f"classes in {splits.root} ({', '.join(splits.class_names)}) differ from the run's "
                       f"({', '.join(record.class_names)})")
    model = compile_model(load_run_model(run_dir))
    decoded = decode_run_split(config, split, splits)[1]
    if decoded.skipped:
        print(f"Warning: {describe_skipped(decoded.skipped)}", file=sys.stderr)
    if not len(decoded.split):
        raise ZooError(f"the {split} split of {splits.root} has no usable images")
    if tta:
        result = _scores_with_tta(model, decoded, batch_size or config.batch_size)
    else:
        result = model.evaluate(batches(decoded, batch_size or config.batch_size), verbose=0, return_dict=True)
    return {"run": str(run_dir), "split": split, "num_images": len(decoded.split),
            "accuracy": float(result["accuracy"]), "loss": float(result["loss"]), "tta": tta}


def _scores_with_tta(model, decoded, batch_size: int) -> dict:
    """Accuracy and cross-entropy of the flip-averaged probabilities."""
    labels = np.asarray(decoded.split.labels)
    probs = np.concatenate([class_probabilities(model, decoded.images[i:i + batch_size].astype(np.float32), True)
                            for i in range(0, len(labels), batch_size)])
    right = probs.argmax(axis=1) == labels
    loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0))
    return {"accuracy": float(right.mean()), "loss": float(loss.mean())}

"""A run's data: its splits (from the run's data, seed and fractions), decoded once, problems reported."""

from __future__ import annotations

from ..config import SPLITS
from ..errors import ZooError
from ..util.names import terminal
from ..util.progress import SILENT
from .decode import decode_split, describe_skipped
from .sources import resolve_data
from .splits import DataSplits, describe_left_out, make_splits, missing_from_splits


# ImageNet's 1,000: every per-class figure, curve and count of a run stays bounded (metrics.json, report.html)
MAX_CLASSES = 1000


def load_splits(config) -> DataSplits:
    """The train/validation/test files of a config (a ``TrainConfig`` or a run's config mapping)."""
    get = config.get if isinstance(config, dict) else lambda k: getattr(config, k)
    splits = make_splits(resolve_data(get("data")), seed=get("seed"), val_fraction=get("val_fraction"),
                         test_fraction=get("test_fraction"))
    if len(splits.class_names) > MAX_CLASSES:  # said before any image is decoded
        raise ZooError(f"{splits.root} has {len(splits.class_names)} class folders; a run may have at most "
                       f"{MAX_CLASSES} classes (is --data the folder of class folders?)")
    return splits


def decode_splits(splits: DataSplits, image_size, strict: bool, warn, progress=SILENT, keep: str = "auto") -> dict:
    """Every split decoded once; unusable files and empty class folders warned about, or errors if strict.
    ``keep``: the ``decoded_cache`` policy."""
    decoded = {name: decode_split(splits.get(name), image_size, progress, f"decoding {name}", keep) for name in SPLITS}
    skipped = [item for name in SPLITS for item in decoded[name].skipped]
    problems = []
    if skipped:
        problems.append(describe_skipped(skipped))
    if splits.empty_classes:
        problems.append(f"left out {len(splits.empty_classes)} class folder(s) without images: "
                        f"{', '.join(map(terminal, splits.empty_classes[:3]))}")
    if splits.left_out:
        problems.append(describe_left_out(splits.left_out))
    if problems and strict:
        raise ZooError("--strict: " + "; ".join(problems))
    for problem in problems:
        warn(f"Warning: {problem}")
    empty = [c for i, c in enumerate(splits.class_names) if i not in set(decoded["train"].split.labels)]
    if empty:
        raise ZooError(f"class '{terminal(empty[0])}' has no usable training images in {terminal(splits.root)}")
    if not len(decoded["validation"].split):  # Keras' own word for it is "The PyDataset has length 0"
        raise ZooError(f"the validation split of {terminal(splits.root)} has no usable images "
                       f"({len(splits.validation)} chosen): add images, or a larger --val-fraction")
    for note in missing_from_splits(splits.class_names, {name: decoded[name].split for name in SPLITS}, True):
        warn(f"Warning: {note}")
    return decoded


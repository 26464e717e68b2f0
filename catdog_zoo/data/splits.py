"""Which image files are train, validation and test: deterministic, disjoint, fixed by the seed.

The reference notebook carved its test set with ``take``/``skip`` from a dataset that reshuffles
on every iteration, so test and validation overlapped. Here the split is made on file lists,
once, before any ``tf.data`` pipeline exists.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..config import SPLITS
from ..errors import ConfigError
from ..util.names import label_problem, terminal

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})


@dataclass(frozen=True)
class Split:
    paths: tuple = ()
    labels: tuple = ()

    def __len__(self):
        return len(self.paths)

    def counts(self, class_names) -> dict:
        counted = Counter(self.labels)
        return {name: counted.get(i, 0) for i, name in enumerate(class_names)}


@dataclass(frozen=True)
class DataSplits:
    root: str
    layout: str  # "train/validation" or "single folder"
    class_names: tuple
    train: Split
    validation: Split
    test: Split
    empty_classes: tuple = ()  # class folders without images, left out

    def get(self, name: str) -> Split:
        if name not in SPLITS:
            raise ConfigError(f"unknown split '{name}' (use train, validation or test)")
        return getattr(self, name)

    def majority_baseline(self, split: str = "validation") -> float:
        """Accuracy of always answering the most frequent training class (the reference's 50%)."""
        target = self.get(split)
        if not self.train.labels or not target.labels:
            return 0.0
        majority = Counter(self.train.labels).most_common(1)[0][0]
        return sum(1 for y in target.labels if y == majority) / len(target.labels)


def find_images(folder: Path) -> list:
    """Image files under ``folder``, recursively, sorted; hidden files and folders skipped."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            found.append(path)
    return sorted(found)


def scan_class_folders(folder: Path) -> tuple:
    """``({class_name: [image paths]}, [empty class folders])`` for the sub-folders of ``folder``."""
    classes, empty = {}, []
    for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = find_images(sub)
        if files:
            classes[sub.name] = files
        else:
            empty.append(str(sub))
    if not classes:
        raise ConfigError(f"no class folders with images in {terminal(folder)} (expected one sub-folder of images "
                          "per class)")
    if len(classes) < 2:
        raise ConfigError(f"only one class with images in {terminal(folder)} ({terminal(next(iter(classes)))}); "
                          "need at least two classes")
    return classes, empty


def _fraction_of(files: list, fraction: float, rng: random.Random) -> tuple:
    """Split ``files`` into (picked, rest) with ``round(len * fraction)`` picked at random."""
    shuffled = list(files)
    rng.shuffle(shuffled)
    n = round(len(shuffled) * fraction)
    return sorted(shuffled[:n]), sorted(shuffled[n:])


def _as_split(per_class: dict, class_names: tuple) -> Split:
    pairs = [(str(p), class_names.index(name)) for name, files in per_class.items() for p in files]
    pairs.sort()
    return Split(tuple(p for p, _ in pairs), tuple(y for _, y in pairs))


def make_splits(root, seed: int = 42, val_fraction: float = 0.2, test_fraction: float = 0.2) -> DataSplits:
    """Split ``root`` into train/validation/test, stratified per class.

    With ``train/`` and ``validation/`` inside ``root`` those are used as given; otherwise
    ``root`` holds the class folders and ``val_fraction`` of each class becomes validation.
    Either way ``test_fraction`` of each validation class is held out as the test split.
    """
    root = Path(root)
    rng = random.Random(seed)
    if (root / "train").is_dir() and (root / "validation").is_dir():
        layout = "train/validation"
        train, empty = scan_class_folders(root / "train")
        validation, empty_val = scan_class_folders(root / "validation")
        empty += empty_val
        extra = sorted(set(validation) - set(train))
        if extra:
            raise ConfigError(f"class '{terminal(extra[0])}' is in {terminal(root / 'validation')} but not in "
                              f"{terminal(root / 'train')}")
    else:
        if (root / "train").is_dir() and any(p.is_dir() for p in (root / "train").iterdir()):
            # train/ of class folders without validation/ (Kaggle's layout): said, not read as a class "train"
            raise ConfigError(f"{terminal(root)} has train/ but no validation/: use --data "
                              f"{terminal(root / 'train')} to split its class folders into train, validation and "
                              f"test, or add {terminal(root / 'validation')}/ with the same class folders")
        layout = "single folder"
        train, validation = {}, {}
        classes, empty = scan_class_folders(root)
        for name, files in classes.items():
            validation[name], train[name] = _fraction_of(files, val_fraction, rng)
    test = {}
    for name in list(validation):
        test[name], validation[name] = _fraction_of(validation[name], test_fraction, rng)
    class_names = tuple(train)
    return DataSplits(str(root), layout, class_names, _as_split(train, class_names),
                      _as_split(validation, class_names), _as_split(test, class_names), tuple(empty))


def unlabelable(splits: DataSplits) -> list:
    """``[(class folder, why)]`` for each class whose name cannot be one line of ``labels.txt`` written faithfully
    (a line break, carriage return, other control character, bidi control, or bytes that are not UTF-8:
    :func:`catdog_zoo.util.names.label_problem`). ``data stats`` and ``data check`` show them; training refuses them."""
    parent = Path(splits.root) / ("train" if splits.layout == "train/validation" else "")
    return [(str(parent / name), why) for name in splits.class_names
            if (why := label_problem(name)) is not None]


def check_labels(splits: DataSplits) -> None:
    """Refuse, in one line naming the folder, a class whose name cannot be a line of ``labels.txt``: a run's
    class names are written one per line beside every export, and read back by whatever serves it."""
    refused = unlabelable(splits)
    if refused:
        folder, why = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise ConfigError(f"class folder {terminal(folder)} cannot be a class: {why}, and labels.txt holds one "
                          f"class name per line{more}; rename the folder")

"""Which image files are train, validation and test: deterministic, disjoint, fixed by the seed.

The reference notebook carved its test set with ``take``/``skip`` from a dataset that reshuffles
on every iteration, so test and validation overlapped. Here the split is made on file lists,
once, before any ``tf.data`` pipeline exists.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..config import SPLITS
from ..errors import ConfigError
from ..util.confidence import small_splits_text
from ..util.names import label_problem, terminal
from ..util.system import problem

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
ALL = "all"  # every image of a folder, whichever split it falls in: scoring new photos (``evaluate --split all``)
# The test split's share of the validation files when --test-fraction is not given. With train/ and validation/
# folders a fifth of validation/ (the 3000-photo default: 800 validation, 200 test). A single folder is split
# 80/10/10: half of the held-out fifth each, so 120 photos leave 12 test images rather than 4.
TEST_FRACTION = {"train/validation": 0.2, "single folder": 0.5}


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
    left_out: tuple = ()  # (path, why): folders and files that could not be read, or links not followed
    val_fraction: float = 0.2  # the fractions the splits were made with (test_fraction resolved when not given)
    test_fraction: float = 0.2

    def get(self, name: str) -> Split:
        """One split by name, or with ``"all"`` every image of the folder (train, validation and test together)."""
        if name == ALL:
            pairs = sorted(zip(self.train.paths + self.validation.paths + self.test.paths,
                               self.train.labels + self.validation.labels + self.test.labels))
            return Split(tuple(p for p, _ in pairs), tuple(y for _, y in pairs))
        if name not in SPLITS:
            raise ConfigError(f"unknown split '{name}' (use train, validation, test or all)")
        return getattr(self, name)

    def majority_baseline(self, split: str = "validation") -> float:
        """Accuracy of always answering the most frequent training class (the reference's 50%)."""
        target = self.get(split)
        if not self.train.labels or not target.labels:
            return 0.0
        majority = Counter(self.train.labels).most_common(1)[0][0]
        return sum(1 for y in target.labels if y == majority) / len(target.labels)


def find_images(folder: Path, left_out=None) -> list:
    """Image files under ``folder``, recursively, sorted; hidden files and folders skipped.

    Links to folders inside it are not followed (a link back up would never end). What cannot be read (a
    folder that cannot be listed or entered, a name that cannot be looked at) is appended to ``left_out`` as
    ``(path, why)``, never skipped in silence (without ``left_out``: the first is an error).
    """
    found, pending = [], [Path(folder)]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)
        except OSError as exc:
            _left_out(left_out, current, exc)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                elif entry.is_symlink() and entry.is_dir():
                    _left_out(left_out, path, why="is a link to a folder; links inside a folder are not followed")
                elif path.suffix.lower() in IMAGE_EXTENSIONS and entry.is_file():
                    found.append(path)
            except OSError as exc:
                _left_out(left_out, path, exc)
    return sorted(found)


def _left_out(left_out, path: Path, exc=None, why: str = "") -> None:
    why = why or f"cannot be read ({problem(exc) or exc.strerror or exc})"
    if left_out is None:
        raise ConfigError(f"{path} {why}")
    left_out.append((str(path), why))


def _class_folders(folder: Path, left_out: list) -> list:
    """The class folders in ``folder``: its sub-folders (links to folders included), hidden ones and links to a
    folder that holds ``folder`` itself (``/``: the whole disk) left out."""
    try:
        names = sorted(p for p in Path(folder).iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise ConfigError(f"cannot read the data folder {folder}: {problem(exc) or exc.strerror or exc}") from None
    root = Path(folder).resolve()
    subs = []
    for sub in names:
        try:
            if not sub.is_dir():
                continue
            target = sub.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, before Python 3.13
            _left_out(left_out, sub, exc if isinstance(exc, OSError) else None,
                      "" if isinstance(exc, OSError) else "is a link that loops")
            continue
        if sub.is_symlink() and (target == root or target in root.parents):
            _left_out(left_out, sub, why=f"is a link to {target}, a folder holding the data folder itself; not read "
                      "(it would search the whole of it)")
            continue
        subs.append(sub)
    return subs


def scan_class_folders(folder: Path, left_out=None) -> tuple:
    """``({class_name: [image paths]}, [empty class folders])`` for the sub-folders of ``folder``; what could not
    be read goes to ``left_out`` (see :func:`find_images`)."""
    classes, empty = {}, []
    left_out = [] if left_out is None else left_out
    for sub in _class_folders(folder, left_out):
        files = find_images(sub, left_out)
        if files:
            classes[sub.name] = files
        else:
            empty.append(str(sub))
    if not classes:
        unread = f"; {terminal(left_out[0][0])} {left_out[0][1]}" if left_out else ""
        raise ConfigError(f"no class folders with images in {terminal(folder)} (expected one sub-folder of images "
                          "per class)" + unread)
    if len(classes) < 2:
        raise ConfigError(f"only one class with images in {terminal(folder)} ({terminal(next(iter(classes)))}); "
                          "need at least two classes")
    return classes, empty


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``; a folder that cannot be looked into is one error line, not a traceback."""
    try:
        return path.is_dir()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {problem(exc) or exc.strerror or exc}") from None


def _listing(folder: Path) -> list:
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise ConfigError(f"cannot read {folder}: {problem(exc) or exc.strerror or exc}") from None


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


def make_splits(root, seed: int = 42, val_fraction: float = 0.2, test_fraction=None) -> DataSplits:
    """Split ``root`` into train/validation/test, stratified per class.

    With ``train/`` and ``validation/`` inside ``root`` those are used as given; otherwise
    ``root`` holds the class folders and ``val_fraction`` of each class becomes validation.
    Either way ``test_fraction`` of each validation class is held out as the test split (None: the
    layout's :data:`TEST_FRACTION`; the result records the one used).
    """
    root = Path(root)
    rng = random.Random(seed)
    left_out: list = []
    if _is_dir(root / "train") and _is_dir(root / "validation"):
        layout = "train/validation"
        train, empty = scan_class_folders(root / "train", left_out)
        validation, empty_val = scan_class_folders(root / "validation", left_out)
        empty += empty_val
        extra = sorted(set(validation) - set(train))
        if extra:
            raise ConfigError(f"class '{terminal(extra[0])}' is in {terminal(root / 'validation')} but not in "
                              f"{terminal(root / 'train')}")
    else:
        if _is_dir(root / "train") and any(_is_dir(p) for p in _listing(root / "train")):
            # train/ of class folders without validation/ (Kaggle's layout): said, not read as a class "train"
            raise ConfigError(f"{terminal(root)} has train/ but no validation/: use --data "
                              f"{terminal(root / 'train')} to split its class folders into train, validation and "
                              f"test, or add {terminal(root / 'validation')}/ with the same class folders")
        layout = "single folder"
        train, validation = {}, {}
        classes, empty = scan_class_folders(root, left_out)
        for name, files in classes.items():
            validation[name], train[name] = _fraction_of(files, val_fraction, rng)
    test_fraction = TEST_FRACTION[layout] if test_fraction is None else test_fraction
    test = {}
    for name in list(validation):
        test[name], validation[name] = _fraction_of(validation[name], test_fraction, rng)
    class_names = tuple(train)
    return DataSplits(str(root), layout, class_names, _as_split(train, class_names),
                      _as_split(validation, class_names), _as_split(test, class_names), tuple(empty),
                      tuple(left_out), val_fraction, test_fraction)


def describe_left_out(left_out, shown: int = 3) -> str:
    """"left out 2 folder(s) or file(s) that could not be read: A (cannot be read (permission denied)), ..."."""
    named = ", ".join(f"{terminal(path)} {why}" for path, why in left_out[:shown])
    more = f" and {len(left_out) - shown} more" if len(left_out) > shown else ""
    return f"left out {len(left_out)} folder(s) or file(s): {named}{more}"


def missing_from_splits(class_names, splits: dict, empty_test: bool = False) -> list:
    """One line per split that has images but none of some class: its accuracy says nothing about that class
    (one image of a class, kept for training, scored validation accuracy 1.0 on the other class alone); with
    ``empty_test``, also a line when the test split is empty."""
    notes = []
    for name in ("validation", "test"):
        split = splits.get(name)
        if empty_test and split is not None and not len(split) and name == "test":
            notes.append("the test split is empty: the run has no held-out score (add images, or a larger "
                         "--test-fraction)")
        if split is None or not len(split):
            continue
        present = set(split.labels)
        missing = [c for i, c in enumerate(class_names) if i not in present]
        if missing:
            notes.append(f"the {name} split has no image of class {', '.join(repr(terminal(c)) for c in missing[:5])}"
                         f"{' and more' if len(missing) > 5 else ''}: its accuracy says nothing about "
                         f"{'that class' if len(missing) == 1 else 'those classes'} (add images, or use a larger "
                         "--val-fraction / --test-fraction)")
    return notes


def small_splits_warning(splits: DataSplits, sizes: dict):
    """One line when the validation or test split (``sizes``: usable images of each) is too small for its
    accuracy to mean much (:func:`catdog_zoo.util.confidence.too_small`), saying how to get a larger one; or None."""
    small = small_splits_text({name: sizes.get(name) for name in ("validation", "test")})
    return f"{small}: add photos{_larger_test_split(splits)}" if small else None


def _larger_test_split(splits: DataSplits) -> str:
    """``, or ...`` the flags that hold out a larger test split of these very folders (what it would give), or
    ``""`` when the fractions already give it what they can (60/20/20 for a single folder, half of validation/)."""
    per_class = [sum(1 for y in (*splits.train.labels, *splits.validation.labels, *splits.test.labels) if y == c)
                 for c in range(len(splits.class_names))]
    if splits.layout == "single folder":
        val_fraction, test_fraction = max(splits.val_fraction, 0.4), max(splits.test_fraction, 0.5)
        held = [round(n * val_fraction) for n in per_class]
        flags = f"--val-fraction {val_fraction:g} --test-fraction {test_fraction:g}"
    else:
        val_fraction, test_fraction = splits.val_fraction, max(splits.test_fraction, 0.5)
        held = [sum(1 for y in (*splits.validation.labels, *splits.test.labels) if y == c)
                for c in range(len(splits.class_names))]
        flags = f"--test-fraction {test_fraction:g}"
    test = sum(round(n * test_fraction) for n in held)
    if test <= len(splits.test):
        return ""
    return (f", or hold out more with {flags} (here: {sum(held) - test} validation and {test} test images, "
            f"{sum(per_class) - sum(held)} to train on)")


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

"""``catdog-zoo data check``: every problem in an image folder, found without training."""

from __future__ import annotations

from pathlib import Path

from ..config import KEYS, SPLITS
from ..errors import ConfigError
from ..util.progress import SILENT
from . import formats
from .decode import decode_split
from .splits import IMAGE_EXTENSIONS, make_splits, missing_from_splits, unlabelable

EXTENSION_FORMAT = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".gif": "gif", ".bmp": "bmp", ".webp": "webp"}


def content_format(path: Path):
    with open(path, "rb") as f:
        head = f.read(12)
    return formats.content_format(head)


def _listing(folder: Path) -> list:
    try:
        return list(folder.iterdir())
    except OSError:
        return []  # its images were listed a moment ago; what changed since is not this report's to say


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def decode_as_training(splits, progress=SILENT) -> dict:
    """``{split: Decoded}``: every split decoded as ``train`` decodes it, at its default size. What is a usable
    image is decided here, for ``data check`` and ``data stats`` alike (a file listed is not yet an image: it
    may be empty, truncated or not an image at all); the cache entry is shared by both and by such a run."""
    return {name: decode_split(splits.get(name), KEYS["image_size"].default, progress, f"checking {name}")
            for name in SPLITS}


def check_folder(root, progress=SILENT) -> dict:
    """``{"root", "class_names", "files", "usable", "problems": [{"path", "severity", "problem"}]}``.

    Severity ``error``: the file or folder is left out of training (``--strict`` refuses it), or a class folder
    training refuses (its name cannot be a line of ``labels.txt``);
    ``warning``: a file is ignored because of its extension; ``note``: usable, but not what it says.
    """
    root = Path(root)
    problems = []
    try:
        # The default splits and size of `catdog-zoo train`: what is decoded here is cached for it.
        splits = make_splits(root)
    except ConfigError as exc:
        return {"root": str(root), "class_names": [], "files": 0, "usable": 0,
                "problems": [{"path": str(root), "severity": "error", "problem": str(exc)}]}
    for folder in splits.empty_classes:
        problems.append({"path": folder, "severity": "error", "problem": "class folder without images"})
    for folder, why in unlabelable(splits):
        problems.append({"path": folder, "severity": "error", "problem": f"train refuses this class folder: {why} "
                         "(labels.txt holds one class name per line); rename it"})
    for path, why in splits.left_out:  # training leaves these out too: never "No problems" over them
        problems.append({"path": path, "severity": "error", "problem": f"left out: {why}"})
    decoded = list(decode_as_training(splits, progress).values())
    images = [p for d in decoded for p in d.split.paths] + [p for d in decoded for p, _ in d.skipped]
    for folder in sorted({Path(p).parent for p in images}):
        for other in sorted(_listing(folder)):
            if _is_file(other) and other.suffix.lower() not in IMAGE_EXTENSIONS and not other.name.startswith("."):
                problems.append({"path": str(other), "severity": "warning",
                                 "problem": f"ignored: '{other.suffix or other.name}' is not an image extension"})
    found = [{"path": path, "severity": "error", "problem": f"skipped: {reason}"}
             for d in decoded for path, reason in d.skipped]
    for path in (p for d in decoded for p in d.split.paths):
        actual, claimed = content_format(Path(path)), EXTENSION_FORMAT.get(Path(path).suffix.lower())
        if actual and claimed and actual != claimed:
            found.append({"path": path, "severity": "note",
                          "problem": f"a {actual.upper()} file named {Path(path).suffix}"})
    problems.extend(found)
    for note in missing_from_splits(splits.class_names, {name: d.split for name, d in zip(SPLITS, decoded)}):
        problems.append({"path": str(root), "severity": "warning", "problem": note})
    unusable = sum(1 for p in found if p["severity"] == "error")
    return {"root": str(root), "layout": splits.layout, "class_names": list(splits.class_names),
            "files": len(images), "usable": len(images) - unusable,
            "problems": sorted(problems, key=lambda p: (p["severity"] != "error", p["path"]))}

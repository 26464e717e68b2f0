"""Pictures of the data: the reference's sample grid, one row per class."""

from __future__ import annotations

import random
from pathlib import Path

from .rundir import atomic_write
from .splits import DataSplits


def sample_grid(splits: DataSplits, out, per_class: int = 3, seed: int = 42, split: str = "train",
                size=(160, 160)) -> Path:
    """Save a grid with ``per_class`` random images of each class (one row per class) to ``out``."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    from .pipeline import ImageError, decode_file

    chosen = splits.get(split)
    rng = random.Random(seed)
    rows = len(splits.class_names)
    fig, axes = plt.subplots(rows, per_class, figsize=(3 * per_class, 3 * rows), squeeze=False)
    for label, name in enumerate(splits.class_names):
        paths = [p for p, y in zip(chosen.paths, chosen.labels) if y == label]
        rng.shuffle(paths)
        pictures = []
        for path in paths:  # the first usable images of a random order: a broken file is passed over
            if len(pictures) == per_class:
                break
            try:
                pictures.append(decode_file(path, size))
            except ImageError:
                continue
        for col in range(per_class):
            ax = axes[label][col]
            ax.axis("off")
            if col < len(pictures):
                ax.imshow(pictures[col])
                ax.set_title(name)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=80))
    plt.close(fig)
    return out

"""Pictures of the data: the reference's sample grid, and what a model's augmentation does to an image."""

from __future__ import annotations

import random
from pathlib import Path

import keras
import numpy as np

from ..data.limits import ImageError
from ..data.pixels import decode_file
from ..data.splits import DataSplits
from ..errors import ZooError
from ..models.augment import augmentation_layers
from ..util.names import plot, terminal
from .plots import image_grid


def _first_usable(paths, count: int, size, keep_aspect: bool = False) -> list:
    """Up to ``count`` decoded images from ``paths`` in order, passing over broken files (``keep_aspect``: each
    fitted inside ``size`` with its proportions, see :func:`~catdog_zoo.data.pixels.decode_file`)."""
    pictures = []
    for path in paths:
        if len(pictures) == count:
            break
        try:
            pictures.append((path, decode_file(path, size, keep_aspect)))
        except ImageError:
            continue
    return pictures


def sample_grid(splits: DataSplits, out, per_class: int = 3, seed: int = 42, split: str = "train",
                size=(160, 160)) -> Path:
    """Save a grid with ``per_class`` random images of each class (one row per class) to ``out``: each photo
    with its own proportions, centred in its cell (letterboxed), not stretched to the cell's square."""
    chosen = splits.get(split)
    rng = random.Random(seed)
    images, titles = [], []
    for label, name in enumerate(splits.class_names):
        paths = [p for p, y in zip(chosen.paths, chosen.labels) if y == label]
        rng.shuffle(paths)
        row = [image for _, image in _first_usable(paths, per_class, size, keep_aspect=True)]
        images += row + [None] * (per_class - len(row))
        titles += [plot(name)] * len(row) + [""] * (per_class - len(row))
    return image_grid(images, titles, out, columns=per_class, cell=3.0)


def augment_preview(spec, splits: DataSplits, out, copies: int = 6, seed: int = 42, image_size=None,
                    note: str = "") -> Path:
    """One training image and ``copies`` augmented versions of it, through ``spec``'s own layers (``note``: a
    line under the title, such as that default training does not apply them).

    The model is built without pretrained weights (augmentation has none), so nothing is downloaded.
    Its Random* layers run in training mode on the image in [0, 255], in the order the model calls them.
    """
    size = tuple(image_size or spec.defaults.image_size)
    model = spec.build(len(splits.class_names), size, weights=None)
    layers = augmentation_layers(model)
    if not layers:
        raise ZooError(f"model '{terminal(spec.name)}' has no augmentation layers (Random*): nothing to preview")
    paths = list(splits.get("train").paths)
    random.Random(seed).shuffle(paths)
    found = _first_usable(paths, 1, size)
    if not found:
        raise ZooError(f"no usable training image in {terminal(splits.root)}")
    path, image = found[0]
    keras.utils.set_random_seed(seed)
    copies_made = []
    for _ in range(copies):
        x = np.asarray(image, np.float32)[None]
        for layer in layers:
            x = layer(x, training=True)
        copies_made.append(np.clip(keras.ops.convert_to_numpy(x)[0], 0, 255).astype(np.uint8))
    names = " + ".join(type(layer).__name__ for layer in layers)
    return image_grid([image] + copies_made, ["original"] + [f"augmented {i + 1}" for i in range(copies)], out,
                      columns=min(4, copies + 1), cell=2.6,
                      suptitle=f"{plot(spec.name)}: {names}\n{plot(Path(path).name)}" + (f"\n{note}" if note else ""))

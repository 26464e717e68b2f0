#!/usr/bin/env python
"""Do Grad-CAM heatmaps point at the photo? Each photo is pasted on one half of a blank canvas.

    KERAS_HOME=... .venv/bin/python bench/heatmap_check.py [--run RUN_DIR] [--data FOLDER] [--count 40]

For each of ``--count`` photos (taken in turn from the class folders of ``--data``, by default the real
validation photos in ../shared), the photo is scaled to fit one half of a grey (128) canvas of the model's
input size (224x224 for mobilenet_v2), the half cycling left, right, top, bottom, and centred in it. The
heatmap of the predicted class (``catdog_zoo.models.gradcam.heatmaps``, the raw grid upsampled bilinearly
to the canvas) should put most of its mass on the photo's half. Prints one line per photo and a summary:
the mean share of mass on the photo's half, and how many photos have more than 50% and 70% of it there.

``--run`` takes a finished run (its ``model.keras``): the real check, a classifier trained on cats and
dogs. Without it the script builds mobilenet_v2 with ImageNet weights and an untrained (seeded random)
head, and trains nothing. That is weaker: the "predicted class" is then a random direction in the
backbone's 1280 features, so the map shows where ImageNet features respond, not where a cat/dog decision
comes from; it checks the mechanism (the grid's orientation, upsampling, which half is which), not the
model. Offline, set KERAS_HOME to a seeded Keras cache for the ImageNet weights (../shared/README.md).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cats_and_dogs_filtered" / "validation"
HALVES = ("left", "right", "top", "bottom")
GREY = 128


def photos(folder: Path, count: int) -> list:
    """``count`` image files, taking one from each class folder in turn (cat, dog, cat, ...)."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    files = [sorted(f for f in c.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png")) for c in classes]
    picked = [f for row in zip(*files) for f in row][:count]
    if len(picked) < count:
        raise SystemExit(f"only {len(picked)} photos in {folder} taken in turn from {len(classes)} class folders")
    return picked


def half_box(half: str, height: int, width: int) -> tuple:
    """(top, left, bottom, right) of ``half`` of a height x width canvas."""
    return {"left": (0, 0, height, width // 2), "right": (0, width // 2, height, width),
            "top": (0, 0, height // 2, width), "bottom": (height // 2, 0, height, width)}[half]


def pasted(path: Path, half: str, height: int, width: int) -> np.ndarray:
    """The photo scaled (aspect kept) to fit ``half`` of a grey canvas, centred in that half."""
    from PIL import Image

    top, left, bottom, right = half_box(half, height, width)
    with Image.open(path) as image:
        photo = image.convert("RGB")
    scale = min((bottom - top) / photo.height, (right - left) / photo.width)
    photo = photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))),
                         Image.Resampling.BILINEAR)
    canvas = np.full((height, width, 3), GREY, np.uint8)
    y = top + (bottom - top - photo.height) // 2
    x = left + (right - left - photo.width) // 2
    canvas[y:y + photo.height, x:x + photo.width] = np.asarray(photo)
    return canvas


def share_on(grid: np.ndarray, half: str, height: int, width: int) -> float:
    """The share of the heatmap's mass (upsampled as ``overlay`` draws it) on ``half``; NaN for an empty map."""
    import tensorflow as tf

    full = tf.image.resize(grid[..., None], (height, width), method="bilinear").numpy()[..., 0]
    top, left, bottom, right = half_box(half, height, width)
    total = full.sum()
    return float(full[top:bottom, left:right].sum() / total) if total > 0 else float("nan")


def load(run: str | None):
    import keras

    if run:
        from catdog_zoo.models.saving import load_model
        return load_model(Path(run) / "model.keras")
    import catdog_zoo
    keras.utils.set_random_seed(0)  # the untrained head: the same random direction every time
    return catdog_zoo.create_model("mobilenet_v2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished run folder (model.keras); default: ImageNet backbone, random head")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="a folder of class folders of photos")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--pictures", help="also write each canvas with its heatmap overlaid into this folder")
    args = parser.parse_args()

    from catdog_zoo.models.gradcam import heatmaps, overlay

    model = load(args.run)
    height, width = (dim or 224 for dim in model.input_shape[1:3])
    files = photos(Path(args.data), args.count)
    halves = [HALVES[i % len(HALVES)] for i in range(len(files))]
    canvases = np.stack([pasted(f, h, height, width) for f, h in zip(files, halves)])
    logits = np.asarray(model.predict(canvases.astype(np.float32), verbose=0))
    predicted = (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else logits.argmax(axis=1)
    maps = heatmaps(model, canvases, predicted)
    shares = np.array([share_on(grid, half, height, width) for grid, half in zip(maps, halves)])

    name = args.run or "mobilenet_v2, ImageNet backbone, untrained head"
    print(f"model: {name}; grid {maps.shape[1]}x{maps.shape[2]}")
    for i, (f, half, cls, share) in enumerate(zip(files, halves, predicted, shares)):
        print(f"{i:3d} {f.parent.name}/{f.name:<16} {half:<6} predicted {cls}  mass on its half {share:6.1%}")
        if args.pictures:
            from PIL import Image
            Path(args.pictures).mkdir(parents=True, exist_ok=True)
            Image.fromarray(overlay(canvases[i], maps[i])).save(Path(args.pictures) / f"{i:03d}-{half}-{f.stem}.png")
    valid = shares[~np.isnan(shares)]
    print(f"summary: {len(shares)} photos, mean mass on the photo's half {valid.mean():.1%}; "
          f"> 50%: {(valid > 0.5).sum()}/{len(shares)}; > 70%: {(valid > 0.7).sum()}/{len(shares)}; "
          f"empty maps: {len(shares) - len(valid)}")
    for half in HALVES:
        mine = shares[np.array(halves) == half]
        print(f"  {half:<6} {len(mine):3d} photos, mean {np.nanmean(mine):.1%}")


if __name__ == "__main__":
    main()

"""Small generated image folders for fast tests: each class has its own colour, so a few epochs learn it."""

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = [(200, 60, 50), (50, 80, 210), (60, 190, 70), (220, 200, 40)]


def write_images(folder: Path, label: int, count: int, size: int, rng, fmt: str = "JPEG") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    base = np.array(COLOURS[label % len(COLOURS)], dtype=np.float32)
    for i in range(count):
        noise = rng.normal(0, 40, size=(size, size, 3))
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        ext = "jpg" if fmt == "JPEG" else fmt.lower()
        Image.fromarray(pixels).save(folder / f"img_{i:03d}.{ext}", format=fmt)


def make_image_folder(root: Path, classes=("cats", "dogs"), n_train=12, n_val=10, size=40,
                      layout="train/validation", seed=0) -> Path:
    """``root/train/<class>`` + ``root/validation/<class>``, or ``root/<class>`` for layout="single"."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        if layout == "single":
            write_images(root / name, label, n_train + n_val, size, rng)
        else:
            write_images(root / "train" / name, label, n_train, size, rng)
            write_images(root / "validation" / name, label, n_val, size, rng)
    return root

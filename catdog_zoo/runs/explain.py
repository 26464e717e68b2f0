"""``predict --explain DIR``: for each image, where the model found its evidence (Grad-CAM, ``models.gradcam``).

Each image gets a picture in DIR (the photo under its heatmap for the class predicted) and its raw grid in the
prediction (``heatmap``: rows of numbers in [0, 1], top row first, at the model's last feature map's
resolution: 7x7 for MobileNetV2 at 224 px). Picture names are made by the zoo (``0007-photo_name.png``: the
image's number, then the letters, digits, dots and dashes of its name), never taken whole from the input.
DIR is checked like every output (:func:`.confine.check_output`): never a run folder or inside one, never
among the images predicted (the pictures would be predicted next time); an existing picture of the same name
is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ZooError
from ..models.gradcam import heatmaps, overlay
from .confine import check_output


def picture_name(number: int, path) -> str:
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in Path(str(path)).stem)[:60]
    return f"{number:04d}-{stem.strip('.') or 'image'}.png"


class Explainer:
    """Heatmaps of a run's model (``model``, set before ``explain`` is called), written into ``folder`` as pictures
    named by :func:`picture_name`; ``reads``: the run and the images (never written into)."""

    def __init__(self, folder, files, reads=(), overwrite: bool = False, model=None):
        self.model, self.folder = model, Path(folder)
        check_output(self.folder, flag="--explain", reads=reads, folder=True)
        self.names = {str(f): picture_name(k, f) for k, f in enumerate(files, start=1)}
        for name in self.names.values():
            if not os.path.lexists(self.folder / name):
                continue  # a new file in a folder already checked
            if not overwrite:
                raise ZooError(f"--explain {folder} already holds {name}: pass --overwrite to replace the pictures "
                               "of the same names, or choose an empty or new folder")
            check_output(self.folder / name, flag="--explain", overwrite=True, reads=reads)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ZooError(f"cannot write --explain {folder}: {exc.strerror or exc}") from None

    def explain(self, images, classes, files) -> list:
        """The grids (lists of rows) of ``images`` for ``classes``; each picture written beside."""
        import tensorflow as tf

        from ..util.files import atomic_write

        grids = heatmaps(self.model, images, class_indices=classes)
        for image, grid, f in zip(images, grids, files):
            data = tf.io.encode_png(overlay(image, grid)).numpy()
            atomic_write(self.folder / self.names[str(f)], lambda tmp, data=data: Path(tmp).write_bytes(data))
        return [[[round(float(v), 4) for v in row] for row in grid] for grid in grids]

    def picture(self, path) -> str:
        return str(self.folder / self.names[str(path)])

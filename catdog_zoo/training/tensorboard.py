"""TensorBoard logs of a run (``--tensorboard``): one log folder per stage, train and validation inside."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from ..runs.layout import TENSORBOARD_DIR


def keras_callbacks(run_dir: Path, stage: str, enabled: bool) -> list:
    """Keras' own TensorBoard callback for ``model.fit``."""
    if not enabled:
        return []
    # One log folder per stage: the fine-tuning stage is a different model.fit with other weights.
    return [keras.callbacks.TensorBoard(log_dir=str(Path(run_dir) / TENSORBOARD_DIR / stage))]


class ReplicatedSummaries:
    """Epoch scalars for the replicated loop, laid out as Keras' TensorBoard callback does."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._writers = {}

    def write(self, stage: str, epoch: int, logs: dict) -> None:
        for split in ("train", "validation"):
            key = (stage, split)
            if key not in self._writers:
                self._writers[key] = tf.summary.create_file_writer(str(self.run_dir / TENSORBOARD_DIR / stage / split))
            with self._writers[key].as_default():
                for name, value in logs.items():
                    if name.startswith("val_") == (split == "validation"):
                        tf.summary.scalar(f"epoch_{name.removeprefix('val_')}", value, step=epoch)
            self._writers[key].flush()

"""The built-in ``tensorboard`` tracker (``--track tensorboard``, or ``--tensorboard``): epoch scalars in
``RUN_DIR/tensorboard/<stage>/train|validation``, laid out as Keras' TensorBoard callback lays them out.

Registered through the ``register_trackers`` hook as a plugin's tracker is (docs/plugins.md#trackers);
TensorFlow is imported when a run starts the tracker, never when the plugins are listed.
"""

from __future__ import annotations

from pathlib import Path

from ..extensions import TrackerSpec
from ..hookspecs import hookimpl
from ..runs.layout import TENSORBOARD_DIR


class TensorBoardTracker:
    """One event folder per stage (each stage is another model.fit with other weights) and split."""

    def __init__(self, run_dir: Path):
        import tensorflow as tf
        self._tf = tf
        self.root = Path(run_dir) / TENSORBOARD_DIR
        self._writers = {}

    def epoch(self, stage: str, epoch: int, logs: dict) -> None:
        for split in ("train", "validation"):
            key = (stage, split)
            if key not in self._writers:
                self._writers[key] = self._tf.summary.create_file_writer(str(self.root / stage / split))
            with self._writers[key].as_default():
                for name, value in logs.items():
                    if name.startswith("val_") == (split == "validation"):
                        self._tf.summary.scalar(f"epoch_{name.removeprefix('val_')}", value, step=epoch)
            self._writers[key].flush()

    def finish(self, status: str, metrics: dict) -> None:
        for writer in self._writers.values():
            writer.close()


@hookimpl
def register_trackers(register):
    register(TrackerSpec(name="tensorboard", summary="TensorBoard event files in RUN_DIR/tensorboard (pip install "
                         "'catdog-zoo[tensorboard]' to view them)", start=lambda run_dir, config:
                         TensorBoardTracker(run_dir)))

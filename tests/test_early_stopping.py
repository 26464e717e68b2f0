"""--early-stopping N: the best validation-loss epoch is kept, in the record and in model.keras, and an
interrupted run resumes to exactly the same result."""

import csv

import numpy as np
import pytest

import catdog_zoo
from catdog_zoo.training import checkpoints

OPTIONS = dict(epochs=10, image_size=40, batch_size=8, learning_rate=0.02, early_stopping=2, seed=5, quiet=True)


def val_losses(run_dir):
    with open(run_dir / "history.csv") as f:
        return [float(row["val_loss"]) for row in csv.DictReader(f)]


def test_the_best_epoch_is_kept_and_a_resumed_run_ends_identically(tiny_data, tmp_path, monkeypatch):
    straight = catdog_zoo.train("baseline", data=str(tiny_data), run_dir=str(tmp_path / "a"), **OPTIONS)
    head = straight.record.stages["head"]
    losses = val_losses(straight.run_dir)
    assert head["kept_epoch"] == int(np.argmin(losses)) + 1
    if head["stopped_early"]:
        assert len(losses) == head["kept_epoch"] + OPTIONS["early_stopping"] < OPTIONS["epochs"]
    # model.keras holds the kept epoch's weights: it scores what that epoch scored.
    assert straight.record.val_loss == pytest.approx(losses[head["kept_epoch"] - 1], rel=1e-4)

    real_save = checkpoints.save

    def save_then_stop(run_dir, epoch, *args, **kwargs):
        path = real_save(run_dir, epoch, *args, **kwargs)
        if epoch == 2:
            raise KeyboardInterrupt  # as if Ctrl-C came right after the epoch-2 checkpoint
        return path
    monkeypatch.setattr(checkpoints, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        catdog_zoo.train("baseline", data=str(tiny_data), run_dir=str(tmp_path / "b"), **OPTIONS)
    monkeypatch.setattr(checkpoints, "save", real_save)
    resumed = catdog_zoo.resume(tmp_path / "b", quiet=True)
    assert resumed.record.stages["head"]["kept_epoch"] == head["kept_epoch"]
    assert resumed.record.val_accuracy == straight.record.val_accuracy
    assert resumed.record.strategy["weights_sha256"] == straight.record.strategy["weights_sha256"]
    assert val_losses(resumed.run_dir) == losses


def test_without_early_stopping_every_epoch_runs_and_the_last_is_kept(tiny_data, tmp_path):
    run = catdog_zoo.train("baseline", data=str(tiny_data), run_dir=str(tmp_path / "r"),
                           **{**OPTIONS, "early_stopping": 0, "epochs": 3})
    assert len(val_losses(run.run_dir)) == 3 and "kept_epoch" not in run.record.stages["head"]

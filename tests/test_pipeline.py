"""Decoding once (validated, cached) and epoch batches whose order depends only on (seed, epoch)."""

import numpy as np

from catdog_zoo.data.batches import EpochBatches, batches
from catdog_zoo.data.decode import decode_split
from catdog_zoo.data.splits import make_splits


def epoch_labels(ds):
    return np.concatenate([ds[i][1] for i in range(len(ds))])


def epoch_means(ds):
    return np.concatenate([ds[i][0].mean(axis=(1, 2, 3)) for i in range(len(ds))])


def test_batches_have_requested_size_dtype_and_range(tiny_data):
    decoded = decode_split(make_splits(tiny_data).train, (24, 32))
    assert decoded.images.shape == (32, 24, 32, 3) and decoded.images.dtype == np.uint8 and not decoded.skipped
    images, labels = batches(decoded, 5)[0]
    assert images.shape == (5, 24, 32, 3) and images.dtype == np.float32 and labels.dtype == np.int32
    assert 0.0 <= images.min() and images.max() <= 255.0
    # The generator colours "cats" red, "dogs" blue: decoding kept the channels in RGB order.
    means = images.mean(axis=(1, 2))
    for m, y in zip(means, labels):
        assert (m[0] > m[2]) == (y == 0)


def test_decoding_is_cached_on_disk(tiny_data, zoo_cache_dir):
    split = make_splits(tiny_data).validation
    first = decode_split(split, (20, 20))
    entries = {p.name for p in zoo_cache_dir.iterdir()}
    again = decode_split(split, (20, 20))
    assert {p.name for p in zoo_cache_dir.iterdir()} == entries and np.array_equal(first.images, again.images)
    decode_split(split, (21, 20))
    assert len({p.name for p in zoo_cache_dir.iterdir()} - entries) == 1  # one file: images and their verdicts


def test_epoch_order_is_a_function_of_seed_and_epoch(tiny_data):
    decoded = decode_split(make_splits(tiny_data).train, (16, 16))
    ds = batches(decoded, 4, shuffle=True, seed=3)
    ds.on_epoch_begin()  # Keras calls it before every epoch; the first keeps the planned epoch
    epoch0 = epoch_means(ds)
    ds.on_epoch_end()  # Keras also calls this once before training: it must not move the plan
    ds.on_epoch_begin()
    epoch1 = epoch_means(ds)
    assert not np.allclose(epoch0, epoch1) and np.allclose(sorted(epoch0), sorted(epoch1))
    resumed = batches(decoded, 4, shuffle=True, seed=3, first_epoch=1)  # a new process resuming at epoch 1
    np.testing.assert_array_equal(epoch_means(resumed), epoch1)
    assert sorted(epoch_labels(ds)) == sorted(decoded.split.labels)
    np.testing.assert_array_equal(epoch_labels(batches(decoded, 4)), decoded.split.labels)


def test_views_are_drawn_per_item():
    views = np.stack([np.full((6, 2), v, np.float32) for v in range(3)])  # view v holds the value v
    ds = EpochBatches(views, np.zeros(6), 6, shuffle=True, seed=0)
    drawn = set()
    for _ in range(5):
        x, _ = ds[0]
        drawn |= set(x[:, 0].tolist())
        ds.on_epoch_begin()
    assert drawn == {0.0, 1.0, 2.0}


def test_a_cache_that_cannot_be_written_is_skipped_not_fatal(tiny_data, tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    monkeypatch.setenv("CATDOG_ZOO_CACHE", str(blocker / "cache"))  # mkdir fails: cache unusable
    decoded = decode_split(make_splits(tiny_data).test, (16, 16))
    assert decoded.images.shape == (4, 16, 16, 3)

"""The tf.data pipeline: decoded once, resized, seeded reshuffling every epoch."""

import numpy as np

from catdog_zoo.pipeline import make_dataset
from catdog_zoo.splits import make_splits


def labels_of(ds):
    return np.concatenate([y.numpy() for _, y in ds])


def image_means(ds):
    return np.concatenate([x.numpy().mean(axis=(1, 2, 3)) for x, _ in ds])


def test_batches_have_requested_size_dtype_and_range(tiny_data):
    split = make_splits(tiny_data).train
    images, labels = next(iter(make_dataset(split, (24, 32), batch_size=5)))
    assert images.shape == (5, 24, 32, 3) and images.dtype.name == "float32" and labels.dtype.name == "int32"
    assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 255.0
    # The generator colours "cats" red, "dogs" blue: decoding kept the channels in RGB order.
    means = images.numpy().mean(axis=(1, 2))
    for m, y in zip(means, labels.numpy()):
        assert (m[0] > m[2]) == (y == 0)


def test_shuffle_changes_order_per_epoch_but_is_reproducible(tiny_data):
    split = make_splits(tiny_data).train
    ds = make_dataset(split, (16, 16), batch_size=4, shuffle=True, seed=3)
    first, second = labels_of(ds), labels_of(ds)
    again = make_dataset(split, (16, 16), batch_size=4, shuffle=True, seed=3)
    assert sorted(first) == sorted(second) == sorted(split.labels)
    epoch1, epoch2 = image_means(ds), image_means(ds)
    assert not np.allclose(epoch1, epoch2) and np.allclose(sorted(epoch1), sorted(epoch2))
    assert list(first) == list(labels_of(again))
    unshuffled = labels_of(make_dataset(split, (16, 16), batch_size=4))
    assert list(unshuffled) == list(split.labels)

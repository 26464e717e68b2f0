"""Grad-CAM heatmaps: they point at the evidence, they have the documented shape and range, and they work
on the zoo's model structures (a plain CNN, a Sequential with augmentation, a frozen nested backbone)."""

import keras
import numpy as np
import pytest

from catdog_zoo import augmentation, small_cnn
from catdog_zoo.models.gradcam import heatmaps, overlay

SIZE = 32


def square_images(rng, count: int, square: bool, side: str = "left") -> np.ndarray:
    """Dark noise; with ``square``, a bright 8x8 square somewhere in the ``side`` half."""
    images = rng.uniform(0, 60, size=(count, SIZE, SIZE, 3))
    if square:
        for image in images:
            top = rng.integers(0, SIZE - 8)
            left = rng.integers(0, SIZE // 2 - 8) + (SIZE // 2 if side == "right" else 0)
            image[top:top + 8, left:left + 8] = 240
    return images.astype(np.uint8)


def tiny_cnn(outputs: int = 1, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(outputs)(x), name="tiny_cnn")


def left_share(maps) -> np.ndarray:
    half = maps.shape[2] // 2
    return maps[:, :, :half].sum(axis=(1, 2)) / maps.sum(axis=(1, 2))


def test_the_heatmap_of_a_learned_class_sits_on_its_evidence():
    """Class 1 is "a bright square in the left half"; a model that learned it is explained by the square."""
    rng = np.random.default_rng(0)
    x = np.concatenate([square_images(rng, 64, True), square_images(rng, 64, False)])
    y = np.array([1] * 64 + [0] * 64, np.float32)
    model = tiny_cnn()
    model.compile(keras.optimizers.Adam(0.02), keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x.astype(np.float32), y, epochs=8, batch_size=32, verbose=0)
    test = square_images(np.random.default_rng(1), 16, True)
    maps = heatmaps(model, test, class_indices=[1] * 16)
    share = left_share(maps)
    assert share.mean() > 0.85 and (share > 0.6).all(), share  # flipped or uniform maps give 0.15 or 0.5
    # Convolutions and average pooling learn "a bright square" wherever it is: the map follows it to the right.
    right = square_images(np.random.default_rng(2), 16, True, side="right")
    assert left_share(heatmaps(model, right, class_indices=[1] * 16)).mean() < 0.15
    # The hottest cell lies on the square (within one cell of the 16x16 grid), image by image.
    for image, grid in zip(test, maps):
        row, col = np.unravel_index(grid.argmax(), grid.shape)
        rows, cols = np.nonzero(image[::2, ::2, 0] == 240)
        assert rows.min() - 1 <= row <= rows.max() + 1 and cols.min() - 1 <= col <= cols.max() + 1


def test_shapes_range_and_an_all_black_image():
    model = tiny_cnn()
    images = np.random.default_rng(0).uniform(0, 255, size=(20, SIZE, SIZE, 3)).astype(np.float32)
    images[3] = 0
    maps = heatmaps(model, images)  # 20 images: two chunks, the last one short
    assert maps.shape == (20, SIZE // 2, SIZE // 2) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert np.all(maps[3] == 0)  # zero activations (no bias yet): no evidence, and no 0/0
    assert np.allclose(maps[np.arange(20) != 3].max(axis=(1, 2)), 1.0)


def test_class_indices_are_honoured_for_one_logit_and_several():
    images = np.random.default_rng(0).uniform(0, 255, size=(4, SIZE, SIZE, 3)).astype(np.uint8)
    binary = tiny_cnn(outputs=1)
    as_one, as_zero = heatmaps(binary, images, [1] * 4), heatmaps(binary, images, [0] * 4)
    assert not np.allclose(as_one, as_zero)  # +logit and -logit: the evidence for and against class 1
    predicted = (binary.predict(images.astype(np.float32), verbose=0)[:, 0] > 0).astype(int)
    assert np.allclose(heatmaps(binary, images), np.where(predicted[:, None, None] == 1, as_one, as_zero))
    three = tiny_cnn(outputs=3)
    per_class = [heatmaps(three, images, [c] * 4) for c in range(3)]
    assert not np.allclose(per_class[0], per_class[1]) and not np.allclose(per_class[1], per_class[2])
    predicted = three.predict(images.astype(np.float32), verbose=0).argmax(axis=1)
    assert np.allclose(heatmaps(three, images), np.stack([per_class[c][i] for i, c in enumerate(predicted)]))
    with pytest.raises(ValueError, match="class_indices"):
        heatmaps(three, images, [3] * 4)


def test_a_frozen_nested_backbone_matches_grad_cam_by_hand():
    """mobilenet_v2's structure in small: scaling, a frozen sub-model named backbone, pooling, dropout, one logit.
    With average pooling and a dense logit, Grad-CAM is ReLU(+-sum_k w_k A_k) up to scale: checked exactly."""
    keras.utils.set_random_seed(0)
    inner = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.Conv2D(6, 3, strides=4, padding="same", activation="relu")(inner)
    backbone = keras.Model(inner, features, name="backbone")
    backbone.trainable = False
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = augmentation(flip="horizontal", rotation=0.3)(x)
    x = keras.layers.GlobalAveragePooling2D()(backbone(x, training=False))
    x = keras.layers.Dropout(0.2)(x)
    dense = keras.layers.Dense(1)
    model = keras.Model(inputs, dense(x), name="nested")
    images = np.random.default_rng(0).uniform(0, 255, size=(3, SIZE, SIZE, 3)).astype(np.float32)
    maps = heatmaps(model, images, class_indices=[1, 0, 1])
    assert maps.shape == (3, SIZE // 4, SIZE // 4)
    activations = backbone.predict(images / 127.5 - 1, verbose=0)
    evidence = activations @ keras.ops.convert_to_numpy(dense.kernel)[:, 0]
    for grid, a, sign in zip(maps, evidence, (1, -1, 1)):
        expected = np.maximum(sign * a, 0)
        assert np.allclose(grid, expected / expected.max(), atol=1e-5)


def test_a_sequential_cnn_with_augmentation_is_explained_at_its_last_convolution():
    model = small_cnn(2, (SIZE, SIZE), front=[augmentation(rotation=0.2)], dropout_at=("pool2",))
    images = np.random.default_rng(0).uniform(0, 255, size=(2, SIZE, SIZE, 3))
    maps = heatmaps(model, images)
    assert maps.shape == (2, 4, 4)  # 32 -> conv 30 -> pool 15 -> conv 13 -> pool 6 -> conv 4
    assert np.allclose(maps, heatmaps(model, images))  # inference mode: the random layers are the identity


def test_channel_weights_are_the_spatial_mean_of_the_gradients():
    """Behind Flatten and a dense logit the gradient differs cell by cell (unlike behind average pooling):
    Grad-CAM weighs channel k by the mean over cells of the dense weights that read it."""
    keras.utils.set_random_seed(0)
    conv, dense = keras.layers.Conv2D(5, 3, strides=2, activation="relu"), keras.layers.Dense(1)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255), conv,
                              keras.layers.Flatten(), dense])
    images = np.random.default_rng(0).uniform(0, 255, size=(2, SIZE, SIZE, 3)).astype(np.float32)
    maps = heatmaps(model, images, class_indices=[1, 1])
    activations = keras.ops.convert_to_numpy(conv(images / 255))
    weights = keras.ops.convert_to_numpy(dense.kernel).reshape(activations.shape[1:]).mean(axis=(0, 1))
    for grid, a in zip(maps, activations):
        expected = np.maximum(a @ weights, 0)
        assert np.allclose(grid, expected / expected.max(), atol=1e-5)


def test_a_model_that_is_not_a_chain_is_refused():
    inputs = keras.Input((SIZE, SIZE, 3))
    a = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same")(a)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a, b]))
    model = keras.Model(inputs, keras.layers.Dense(1)(x), name="skip")
    with pytest.raises(ValueError, match="not a chain"):
        heatmaps(model, np.zeros((1, SIZE, SIZE, 3)))


def test_overlay_is_a_uint8_picture_of_the_image_size():
    image = np.full((50, 70, 3), 128, np.uint8)
    grid = np.zeros((7, 7), np.float32)
    grid[0, 0] = 1.0
    picture = overlay(image, grid)
    assert picture.shape == (50, 70, 3) and picture.dtype == np.uint8
    assert not np.array_equal(picture[0, 0], picture[-1, -1])  # the hot corner is coloured differently
    assert np.array_equal(overlay(image, grid, alpha=0.0), image)

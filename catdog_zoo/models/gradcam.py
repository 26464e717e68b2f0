"""Class-activation heatmaps (Grad-CAM): where in an image a model found its evidence for a class.

Grad-CAM (Selvaraju et al., 2017) weighs each channel of a convolutional feature map by the spatial mean
of the class score's gradient with respect to that channel, sums the weighted channels and keeps the
positive part. The feature map here is the output of the model's last top-level layer whose output is
spatial (4-D): the nested ``backbone`` of a transfer model (MobileNetV2: 7x7 at 224 px), the last
convolution of a from-scratch CNN. A heatmap is a grid at that resolution before it is a picture;
:func:`overlay` makes the picture.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from .heads import is_binary

CHUNK = 16  # images per forward and gradient pass: memory stays that of a small batch


def heatmaps(model, images, class_indices=None) -> np.ndarray:
    """Grad-CAM heatmaps of ``images`` (N, H, W, 3; uint8 or float pixels in [0, 255], as the zoo's models take).

    Returns (N, h, w) float32 in [0, 1]: the raw grid at the feature map's resolution (h x w, top row first,
    oriented as the image), each map divided by its own maximum; a map with no positive evidence stays all
    zeros. ``class_indices`` (N integers) says which class to explain per image; None explains the predicted
    class. A one-logit model's logit is the evidence for class 1, so class 1 scores ``+logit`` and class 0
    ``-logit``. The model runs in inference mode (augmentation is the identity, dropout off), read as the
    chain of its top-level layers; a model whose top level is not a chain is refused (ValueError).
    """
    images = np.asarray(images, np.float32)
    layers, cut = _chain(model, images.shape[1:])
    binary = is_binary(model)
    classes = None if class_indices is None else _checked_classes(class_indices, len(images), binary,
                                                                   model.output_shape[-1])
    maps = [_grad_cam(layers, cut, images[start:start + CHUNK],
                      None if classes is None else classes[start:start + CHUNK], binary)
            for start in range(0, len(images), CHUNK)]
    if not maps:
        return np.zeros((0, *layers[cut].output.shape[1:3]), np.float32)
    return np.concatenate(maps)


def feature_map(model, image_shape) -> tuple[str, tuple[int, int]]:
    """``(layer name, (h, w))``: the layer whose output :func:`heatmaps` explains ``model`` at, and that
    output's resolution, for images of ``image_shape`` (H, W, 3); ValueError where :func:`heatmaps` raises it."""
    layers, cut = _chain(model, tuple(image_shape))
    h, w = layers[cut].output.shape[1:3]
    return layers[cut].name, (int(h), int(w))


_CHECKED = weakref.WeakKeyDictionary()  # model -> {image shape: (layers, cut)}: the probe runs once per model


def _chain(model, image_shape):
    """The model's top-level layers and the index of the last one whose output is a spatial map.

    A Sequential model is a chain by construction; any other is checked on a random probe image, so a
    branch or skip connection around the feature map is refused rather than explained wrongly.
    """
    known = _CHECKED.setdefault(model, {})
    if tuple(image_shape) not in known:
        known[tuple(image_shape)] = _checked_chain(model, tuple(image_shape))
    return known[tuple(image_shape)]


def _checked_chain(model, image_shape):
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    spatial = [i for i, layer in enumerate(layers) if len(getattr(layer.output, "shape", ())) == 4]
    if not spatial or spatial[-1] == len(layers) - 1:
        raise ValueError(f"{model.name} has no spatial (4-D) feature map before its output: nothing for Grad-CAM")
    if not isinstance(model, keras.Sequential):
        probe = np.random.default_rng(0).uniform(0, 255, size=(1, *image_shape)).astype(np.float32)
        x = probe
        try:
            for layer in layers:
                x = layer(x, training=False)
            chain = np.allclose(keras.ops.convert_to_numpy(x),
                                keras.ops.convert_to_numpy(model(probe, training=False)), rtol=1e-4, atol=1e-4)
        except (ValueError, TypeError):  # a merge layer handed one tensor, shapes that do not follow
            chain = False
        if not chain:
            raise ValueError(f"{model.name}'s top-level layers are not a chain (a branch or skip connection): "
                             "Grad-CAM here reads a model as one")
    return layers, spatial[-1]


def _checked_classes(class_indices, count: int, binary: bool, outputs: int) -> np.ndarray:
    classes = np.asarray(class_indices, np.int64).reshape(-1)
    num_classes = 2 if binary else outputs
    if len(classes) != count:
        raise ValueError(f"class_indices has {len(classes)} entries for {count} images")
    if len(classes) and (classes.min() < 0 or classes.max() >= num_classes):
        raise ValueError(f"class_indices must be in [0, {num_classes}), got {sorted(set(classes.tolist()))}")
    return classes


def _grad_cam(layers, cut: int, images, classes, binary: bool):
    """One forward and gradient pass over a chunk of images: their heatmaps."""
    x = tf.constant(images)
    for layer in layers[:cut + 1]:  # below the feature map nothing needs a gradient: outside the tape
        x = layer(x, training=False)
    features = x
    with tf.GradientTape() as tape:
        # A watched activation, not a weight: a frozen (trainable=False) backbone changes nothing here.
        tape.watch(features)
        for layer in layers[cut + 1:]:
            x = layer(x, training=False)
        logits = x
        if classes is None:
            classes = (logits[:, 0] > 0) if binary else tf.argmax(logits, axis=-1)
        classes = tf.cast(classes, tf.int32)
        if binary:
            scores = tf.where(classes == 1, logits[:, 0], -logits[:, 0])
        else:
            scores = tf.gather(logits, classes, axis=1, batch_dims=1)
        # Images do not interact in inference mode, so the gradient of the sum is each image's own gradient.
        total = tf.reduce_sum(scores)
    grads = tape.gradient(total, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
    cam = tf.math.divide_no_nan(cam, tf.reduce_max(cam, axis=(1, 2), keepdims=True))
    return cam.numpy().astype(np.float32)


def overlay(image, grid, alpha: float = 0.45, colormap: str = "jet") -> np.ndarray:
    """``image`` (H, W, 3; pixels in [0, 255]) with ``grid`` (h, w in [0, 1]) upsampled bilinearly to its size
    and blended over it as ``colormap`` (matplotlib's), ``alpha`` the colour's share: uint8 (H, W, 3)."""
    from matplotlib import colormaps  # only pictures need matplotlib

    image = np.asarray(image, np.float32)
    grid = np.clip(np.asarray(grid, np.float32), 0.0, 1.0)
    upsampled = tf.image.resize(grid[..., None], image.shape[:2], method="bilinear").numpy()[..., 0]
    colour = colormaps[colormap](np.clip(upsampled, 0.0, 1.0))[..., :3] * 255.0
    return np.clip(np.rint((1.0 - alpha) * image + alpha * colour), 0, 255).astype(np.uint8)

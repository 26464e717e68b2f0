"""Layer blocks shared by the zoo's architectures, defined once here (public: exported by ``catdog_zoo``).

Every model takes float images in [0, 255]; these blocks are the only place that
knows how the reference workflow augments, rescales and stacks its small CNN.
"""

from __future__ import annotations

import keras

from .heads import logit_units

__all__ = ["DROPOUT_POSITIONS", "augmentation", "logit_units", "mobilenet_v2_preprocessing", "small_cnn"]

DROPOUT_POSITIONS = ("pool1", "pool2", "flatten", "dense")


def mobilenet_v2_preprocessing(name: str = "mobilenet_v2_preprocess") -> keras.layers.Layer:
    """[0, 255] -> [-1, 1], exactly ``keras.applications.mobilenet_v2.preprocess_input``.

    A ``Rescaling`` layer rather than a ``Lambda`` so that saved models load in Keras safe mode.
    """
    return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name=name)


def augmentation(flip: str = "horizontal_and_vertical", rotation: float = 0.2,
                 name: str = "augmentation") -> keras.Sequential:
    """Random flips and rotations, active only while training (identity at inference)."""
    return keras.Sequential([keras.layers.RandomFlip(flip), keras.layers.RandomRotation(rotation)], name=name)


def small_cnn(num_classes: int, image_size, *, front=(), dropout_at=(), dropout_rate: float = 0.2,
              name: str = "small_cnn") -> keras.Sequential:
    """The reference's from-scratch CNN: three 3x3 convolutions, two poolings, a 64-unit dense layer.

    ``front`` layers (augmentation, preprocessing) come first; ``dropout_at`` names where
    ``Dropout(dropout_rate)`` goes: after the first or second pooling, after flatten, after dense.
    """
    unknown = set(dropout_at) - set(DROPOUT_POSITIONS)
    if unknown:
        raise ValueError(f"unknown dropout position(s) {sorted(unknown)}; use {DROPOUT_POSITIONS}")

    def dropout_if(position):
        return [keras.layers.Dropout(dropout_rate)] if position in dropout_at else []

    L = keras.layers
    stack = [
        keras.Input(shape=tuple(image_size) + (3,)),
        *front,
        L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2), *dropout_if("pool1"),
        L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2), *dropout_if("pool2"),
        L.Conv2D(64, 3, activation="relu"), L.Flatten(), *dropout_if("flatten"),
        L.Dense(64, activation="relu"), *dropout_if("dense"),
        L.Dense(num_classes),
    ]
    return keras.Sequential(stack, name=name)

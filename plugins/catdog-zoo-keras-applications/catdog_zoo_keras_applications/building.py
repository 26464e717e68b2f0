"""Every row of :mod:`.table` as a spec, and the one builder behind them all.

The builder puts every backbone in the same model as ``mobilenet_v2``: its preprocessing, augmentation, the
frozen backbone named ``backbone`` (so the trainer caches its features and fine-tunes its top), average pooling,
Dropout(0.2), logits. Keras is imported inside the builder only, so that registering the whole table costs no
TensorFlow start-up.
"""

from __future__ import annotations

import functools

from catdog_zoo import ConfigError, ModelSpec, TrainingDefaults

from .table import FAMILIES, Backbone

TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def register_family(register, family: str) -> None:
    for backbone in FAMILIES[family]:
        register(spec_of(backbone))


def spec_of(backbone: Backbone) -> ModelSpec:
    return ModelSpec(
        name=backbone.name,
        summary=f"Frozen ImageNet {backbone.constructor} (keras.applications) + pooling + dropout + linear head",
        builder=functools.partial(build, backbone),
        defaults=TrainingDefaults(image_size=(backbone.size, backbone.size)),
        tags=("transfer", "pretrained", "augmentation", "keras-applications"),
        pretrained="imagenet",
        weights_licence=backbone.licence,
        frozen_backbone="backbone",  # lets the trainer cache its features and fine-tune its top
        imagenet_top1=backbone.top1,
    )


def build(backbone: Backbone, num_classes, image_size, weights="imagenet"):
    """Preprocessing, flip and rotation (0.3), the frozen backbone, average pool, Dropout(0.2), logits.

    ``weights`` goes to the ``keras.applications`` constructor: "imagenet", a local no-top weights file, or
    ``None`` for random initialisation (what the tests and ``models --bench`` use: the speed is the same).
    """
    if min(image_size) < backbone.min_size:
        raise ConfigError(f"model '{backbone.name}' needs image_size of at least {backbone.min_size} "
                          f"(keras.applications.{backbone.constructor}), got {'x'.join(map(str, image_size))}")
    import keras

    from catdog_zoo import ZooError, augmentation, logit_units

    constructor = getattr(keras.applications, backbone.constructor, None)
    if constructor is None:  # the table is Keras 3's (checked with 3.15); an older or newer one may lack a row
        raise ZooError(f"model '{backbone.name}' needs keras.applications.{backbone.constructor}, which Keras "
                       f"{keras.__version__} does not have")
    shape = tuple(image_size) + (3,)
    net = constructor(input_shape=shape, include_top=False, weights=weights)
    # Named after it is built: EfficientNetV2 reads its own name (which preprocessing, which weights file)
    net.name = "backbone"
    net.trainable = False
    inputs = keras.Input(shape=shape)
    x = preprocessed(backbone.preprocessing, inputs)
    x = augmentation(flip="horizontal", rotation=0.3)(x)
    x = net(x, training=False)  # inference mode while frozen; fine-tuning keeps BatchNorm frozen
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(logit_units(num_classes))(x)
    return keras.Model(inputs, outputs, name=backbone.name)


def preprocessed(kind: str, x):
    """``x`` through the backbone's ``preprocess_input``, as layers that save and load in safe mode."""
    import keras
    import numpy as np

    from catdog_zoo import mobilenet_v2_preprocessing

    if kind == "inside":
        return x
    if kind == "tf":
        return mobilenet_v2_preprocessing(name="preprocess")(x)  # the same [-1, 1] as MobileNetV2's
    if kind == "torch":  # (x / 255 - mean) / std, as one Normalization of the [0, 255] pixels
        mean, std = 255 * np.array(TORCH_MEAN), 255 * np.array(TORCH_STD)
        return keras.layers.Normalization(mean=mean, variance=std ** 2, name="preprocess")(x)
    # caffe: a fixed 1x1 mix that swaps red and blue (weights 0 and 1: exact) and subtracts the mean
    swap = keras.layers.Dense(3, trainable=False, name="preprocess")
    out = swap(x)
    swap.set_weights([np.eye(3, dtype="float32")[::-1], -np.array(CAFFE_MEAN_BGR, dtype="float32")])
    return out

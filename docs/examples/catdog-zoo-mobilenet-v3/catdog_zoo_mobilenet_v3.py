"""Example outside plugin: transfer learning on a frozen ImageNet MobileNetV3Small.

Not installed by default; ``pip install docs/examples/catdog-zoo-mobilenet-v3`` adds it. Online, the
weights download into the Keras cache like any keras.applications model; offline with nothing cached,
catdog-zoo stops with one line asking for ``--weights PATH`` or a connection.
"""

from catdog_zoo import ModelSpec, TrainingDefaults, hookimpl

CATDOG_ZOO_API_VERSION = 2


def build_mobilenet_v3_small(num_classes, image_size, weights="imagenet"):
    """Flip, rotate (0.2), frozen MobileNetV3Small (it scales [0, 255] itself), pool, Dropout(0.2), logits."""
    import warnings

    import keras

    from catdog_zoo import augmentation, logit_units

    shape = tuple(image_size) + (3,)
    with warnings.catch_warnings():
        # MobileNetV3 has 224x224 ImageNet weights only; Keras warns at any other size. The
        # convolutional weights transfer to other sizes, which is what this model relies on.
        warnings.filterwarnings("ignore", message=".*Weights for input shape", category=UserWarning)
        backbone = keras.applications.MobileNetV3Small(input_shape=shape, include_top=False, weights=weights,
                                                       include_preprocessing=True, name="backbone")
    backbone.trainable = False
    inputs = keras.Input(shape=shape)
    x = augmentation(flip="horizontal", rotation=0.2)(inputs)
    x = backbone(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(logit_units(num_classes))(x), name="mobilenet_v3_small")


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="mobilenet_v3_small_example",
        summary="Frozen ImageNet MobileNetV3Small + pooling + dropout + linear head (example outside plugin)",
        builder=build_mobilenet_v3_small,
        defaults=TrainingDefaults(image_size=(160, 160), epochs=10),
        tags=("transfer", "pretrained", "augmentation"),
        pretrained="imagenet",
        weights_licence="Apache-2.0 (keras-applications ImageNet checkpoints)",
        frozen_backbone="backbone",
    ))

"""model4: transfer learning on a frozen ImageNet MobileNetV2, as in the TensorFlow tutorial."""

from catdog_zoo import ModelSpec, TrainingDefaults, hookimpl

CATDOG_ZOO_API_VERSION = 2


def build_mobilenet_v2(num_classes, image_size, weights="imagenet"):
    """Scale, flip horizontally, rotate (0.3), frozen MobileNetV2, average pool, Dropout(0.2), logits.

    ``weights`` is passed to ``keras.applications.MobileNetV2``: "imagenet" (Keras cache or
    download), a local ``.h5`` file of the no-top weights, or ``None`` for random initialisation.
    """
    import keras

    from catdog_zoo import augmentation, logit_units, mobilenet_v2_preprocessing

    shape = tuple(image_size) + (3,)
    backbone = keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights=weights,
                                               name="backbone")
    backbone.trainable = False
    inputs = keras.Input(shape=shape)
    x = mobilenet_v2_preprocessing()(inputs)
    x = augmentation(flip="horizontal", rotation=0.3)(x)
    x = backbone(x, training=False)  # inference mode while frozen; fine-tuning keeps BatchNorm frozen
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(logit_units(num_classes))(x)
    return keras.Model(inputs, outputs, name="mobilenet_v2")


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="mobilenet_v2",
        summary="Frozen ImageNet MobileNetV2 + pooling + dropout + linear head (reference model4)",
        builder=build_mobilenet_v2,
        defaults=TrainingDefaults(image_size=(224, 224)),  # the ImageNet checkpoint's own size (docs/performance.md)
        tags=("transfer", "pretrained", "augmentation", "preprocessing"),
        pretrained="imagenet",
        weights_licence="Apache-2.0 (keras-applications ImageNet checkpoints)",
        frozen_backbone="backbone",  # lets the trainer cache its features and fine-tune its top
        imagenet_top1=71.3,  # published for the 224 checkpoint (keras.io/api/applications)
    ))

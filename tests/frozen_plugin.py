"""A plugin model with a tiny frozen convolutional "pretrained" backbone, for tests of what needs one (cached
features, rejection, audit) without real weights: install it with ``install_frozen(site, name, ...)``."""

from conftest import install_dist

SOURCE = """
    from catdog_zoo import ModelSpec, TrainingDefaults, hookimpl

    SEED = {seed!r}

    def build(num_classes, image_size, weights="init"):
        import keras
        from catdog_zoo import logit_units
        shape = tuple(image_size) + (3,)
        if SEED is not None:
            keras.utils.set_random_seed(SEED)  # the same "pretrained" backbone at every build, as real weights
        backbone = keras.Sequential([keras.Input(shape), keras.layers.Conv2D({filters}, 3, activation="relu"),
                                     keras.layers.Conv2D({filters}, 3, strides=2, activation="relu"),
                                     *[keras.layers.Conv2D({filters}, 3, activation="relu") for _ in range({more})],
                                     keras.layers.BatchNormalization()], name="backbone")
        backbone.trainable = False
        inputs = keras.Input(shape)
        x = keras.layers.Rescaling(1 / 255)(inputs)
        x = backbone(x, training=False)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(logit_units(num_classes))(x))

    @hookimpl
    def register_models(register):
        register(ModelSpec(name="{name}", summary="tiny frozen backbone", builder=build, pretrained="init",
                           frozen_backbone="backbone", defaults=TrainingDefaults(image_size=({size}, {size}))))
"""


def install_frozen(site, name: str, size: int = 48, filters: int = 8, seed=None, more_convs: int = 0) -> None:
    """Install a distribution registering model ``name`` (input ``size`` x ``size``; its backbone two
    convolutions, ``more_convs`` more, then BatchNormalization)."""
    module = f"{name}_mod"
    install_dist(site, name.replace("_", "-"), "0.1", {name: module},
                 {module: SOURCE.format(name=name, size=size, filters=filters, seed=seed, more=more_convs)})

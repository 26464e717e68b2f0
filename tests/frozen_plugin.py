"""A plugin model with a tiny frozen convolutional "pretrained" backbone, for tests of what needs one (cached
features, rejection, audit) without real weights: install it with ``install_frozen(site, name, ...)``, or put
``frozen_source(...)`` into a distribution of your own (``install_dist``)."""

from conftest import install_dist

SOURCE = """
    from catdog_zoo import ModelSpec, TrainingDefaults, hookimpl

    SEED = {seed!r}
    SUMMARY, TAGS, DEFAULTS = "tiny frozen backbone", (), {{}}  # frozen_source may set them again below

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
        register(ModelSpec(name={name!r}, summary=SUMMARY, builder=build, pretrained="init",
                           frozen_backbone="backbone", tags=TAGS,
                           defaults=TrainingDefaults(image_size=({size}, {size}), **DEFAULTS)))
"""


def frozen_source(name: str, size: int = 48, filters: int = 8, seed=None, more_convs: int = 0,
                  summary: str = "tiny frozen backbone", tags: tuple = (), **defaults) -> str:
    """The plugin module registering model ``name`` (input ``size`` x ``size``; its backbone two convolutions,
    ``more_convs`` more, then BatchNormalization); ``defaults``: more ``TrainingDefaults`` (``epochs=1``)."""
    source = SOURCE.format(name=name, size=size, filters=filters, seed=seed, more=more_convs)
    return source + f"    SUMMARY, TAGS, DEFAULTS = {summary!r}, {tuple(tags)!r}, {defaults!r}\n"


def install_frozen(site, name: str, size: int = 48, filters: int = 8, seed=None, more_convs: int = 0) -> None:
    """Install a distribution registering model ``name`` (:func:`frozen_source`)."""
    module = f"{name}_mod"
    install_dist(site, name.replace("_", "-"), "0.1", {name: module},
                 {module: frozen_source(name, size, filters, seed, more_convs)})


def trained_run(site, where, name: str, strangers: int = 10, epochs: int = 3) -> tuple:
    """``(run_dir, data, strangers)``: model ``name`` (32 px, fixed "pretrained" backbone) installed in ``site``
    and trained on two colour classes in ``where``; ``strangers`` holds photos of two colours of neither class."""
    import numpy as np
    from imagefactory import make_image_folder, write_images

    import catdog_zoo
    from catdog_zoo.plugins import reset_zoo

    install_frozen(site, name, size=32, filters=16, seed=7)
    reset_zoo()
    data = make_image_folder(where / "data", n_train=30, n_val=20, size=32)
    rng = np.random.default_rng(5)
    write_images(where / "strangers" / "green", 2, strangers, 32, rng)
    write_images(where / "strangers" / "yellow", 3, strangers, 32, rng)
    run = catdog_zoo.train(name, data=str(data), epochs=epochs, batch_size=8, learning_rate=0.05,
                           run_dir=str(where / "run"), quiet=True).run_dir
    return run, data, where / "strangers"

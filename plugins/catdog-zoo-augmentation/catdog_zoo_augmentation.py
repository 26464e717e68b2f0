"""model2: the baseline CNN behind random flips (both axes) and rotations of up to 0.2 turns."""

from catdog_zoo import ModelSpec, hookimpl

CATDOG_ZOO_API_VERSION = 2


def build_augmentation(num_classes, image_size):
    from catdog_zoo import augmentation, small_cnn
    return small_cnn(num_classes, image_size, front=[augmentation(rotation=0.2)], name="augmentation")


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="augmentation",
        summary="Baseline CNN behind RandomFlip + RandomRotation(0.2) (reference model2)",
        builder=build_augmentation,
        tags=("scratch", "cnn", "augmentation"),
    ))

"""model3: MobileNetV2 input scaling to [-1, 1], flips and rotations of up to 0.4 turns, the dropout CNN."""

from catdog_zoo import ModelSpec, hookimpl

CATDOG_ZOO_API_VERSION = 2


def build_preprocess(num_classes, image_size):
    from catdog_zoo import augmentation, mobilenet_v2_preprocessing, small_cnn
    front = [mobilenet_v2_preprocessing(), augmentation(rotation=0.4)]
    return small_cnn(num_classes, image_size, front=front, dropout_at=("pool2",), name="preprocess")


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="preprocess",
        summary="Scale to [-1,1] + flips + RandomRotation(0.4) + dropout CNN (reference model3)",
        builder=build_preprocess,
        tags=("scratch", "cnn", "augmentation", "preprocessing"),
    ))

"""model1_1: the baseline CNN with one Dropout(0.2) after the second pooling."""

from catdog_zoo import ModelSpec, hookimpl

CATDOG_ZOO_API_VERSION = 2


def build_dropout(num_classes, image_size):
    from catdog_zoo import small_cnn
    return small_cnn(num_classes, image_size, dropout_at=("pool2",), name="dropout")


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="dropout",
        summary="Baseline CNN + one Dropout(0.2) after the second pooling (reference model1_1)",
        builder=build_dropout,
        tags=("scratch", "cnn", "dropout"),
    ))

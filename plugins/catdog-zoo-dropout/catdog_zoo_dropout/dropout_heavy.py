"""model1_2: the baseline CNN with Dropout(0.2) after both poolings, after flatten and after dense."""

from catdog_zoo import ModelSpec, hookimpl

CATDOG_ZOO_API_VERSION = 2


def build_dropout_heavy(num_classes, image_size):
    from catdog_zoo import DROPOUT_POSITIONS, small_cnn
    return small_cnn(num_classes, image_size, dropout_at=DROPOUT_POSITIONS, name="dropout_heavy")


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="dropout_heavy",
        summary="Baseline CNN + Dropout(0.2) after each pooling, flatten and dense (reference model1_2)",
        builder=build_dropout_heavy,
        tags=("scratch", "cnn", "dropout"),
    ))

"""The reference's first model (model1): a plain from-scratch CNN, the baseline every other model beats."""

from catdog_zoo import ModelSpec, hookimpl

CATDOG_ZOO_API_VERSION = 2


def build_baseline(num_classes, image_size):
    from catdog_zoo import small_cnn
    return small_cnn(num_classes, image_size, name="baseline")


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="baseline",
        summary="Plain CNN from scratch: 3 conv + 2 pool + dense 64 (reference model1)",
        builder=build_baseline,
        tags=("scratch", "cnn"),
    ))

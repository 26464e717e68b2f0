"""EfficientNetV2 B0 to B3, S, M and L (2021): preprocessing inside the Keras model, 224 to 480 px."""

from catdog_zoo import hookimpl

from .building import register_family

CATDOG_ZOO_API_VERSION = 3


@hookimpl
def register_models(register):
    register_family(register, "efficientnet_v2")

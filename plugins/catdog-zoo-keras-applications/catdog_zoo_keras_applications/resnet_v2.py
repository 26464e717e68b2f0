"""ResNet 50, 101 and 152 v2 (pre-activation, 2016): [-1, 1] preprocessing, 224 px."""

from catdog_zoo import hookimpl

from .building import register_family

CATDOG_ZOO_API_VERSION = 3


@hookimpl
def register_models(register):
    register_family(register, "resnet_v2")

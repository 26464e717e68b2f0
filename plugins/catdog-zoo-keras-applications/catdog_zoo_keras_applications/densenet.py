"""DenseNet 121, 169 and 201 (2017): torch-style preprocessing (ImageNet mean and deviation), 224 px."""

from catdog_zoo import hookimpl

from .building import register_family

CATDOG_ZOO_API_VERSION = 3


@hookimpl
def register_models(register):
    register_family(register, "densenet")

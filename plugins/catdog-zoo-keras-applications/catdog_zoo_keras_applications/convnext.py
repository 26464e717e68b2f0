"""ConvNeXt Tiny to XLarge (2022): its own preprocessing inside the Keras model, 224 px."""

from catdog_zoo import hookimpl

from .building import register_family

CATDOG_ZOO_API_VERSION = 3


@hookimpl
def register_models(register):
    register_family(register, "convnext")

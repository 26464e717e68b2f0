"""NASNet-A Mobile (224 px) and Large (331 px) (2018): [-1, 1] preprocessing."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3

BACKBONES = (
    Backbone("nasnet_mobile", "NASNetMobile", 224, 74.4, "tf"),
    Backbone("nasnet_large", "NASNetLarge", 331, 82.5, "tf"),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

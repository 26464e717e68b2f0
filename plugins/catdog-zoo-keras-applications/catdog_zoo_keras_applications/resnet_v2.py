"""ResNet 50, 101 and 152 v2 (pre-activation, 2016): [-1, 1] preprocessing, 224 px."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3

BACKBONES = (
    Backbone("resnet50_v2", "ResNet50V2", 224, 76.0, "tf"),
    Backbone("resnet101_v2", "ResNet101V2", 224, 77.2, "tf"),
    Backbone("resnet152_v2", "ResNet152V2", 224, 78.0, "tf"),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

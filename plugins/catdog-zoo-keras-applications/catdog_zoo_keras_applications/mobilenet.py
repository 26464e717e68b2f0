"""MobileNet (v1, 2017; [-1, 1] preprocessing) and MobileNetV3 Small and Large (2019; preprocessing inside), 224 px.

MobileNetV2 is the core's own mobilenet_v2 (plugins/catdog-zoo-mobilenet-v2), so it is not registered here."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3

BACKBONES = (
    Backbone("mobilenet_v1", "MobileNet", 224, 70.4, "tf"),
    # MobileNetV3 is not in the keras.io table: top-1 of the 1.0 224 checkpoints from keras.applications.mobilenet_v3
    Backbone("mobilenet_v3_small", "MobileNetV3Small", 224, 68.1, "inside"),
    Backbone("mobilenet_v3_large", "MobileNetV3Large", 224, 75.6, "inside"),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

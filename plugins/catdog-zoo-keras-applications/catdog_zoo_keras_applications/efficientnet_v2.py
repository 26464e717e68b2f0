"""EfficientNetV2 B0 to B3, S, M and L (2021): preprocessing inside the Keras model, 224 to 480 px."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3

BACKBONES = (
    Backbone("efficientnet_v2_b0", "EfficientNetV2B0", 224, 78.7, "inside"),
    Backbone("efficientnet_v2_b1", "EfficientNetV2B1", 240, 79.8, "inside"),
    Backbone("efficientnet_v2_b2", "EfficientNetV2B2", 260, 80.5, "inside"),
    Backbone("efficientnet_v2_b3", "EfficientNetV2B3", 300, 82.0, "inside"),
    Backbone("efficientnet_v2_s", "EfficientNetV2S", 384, 83.9, "inside"),
    Backbone("efficientnet_v2_m", "EfficientNetV2M", 480, 85.3, "inside"),
    Backbone("efficientnet_v2_l", "EfficientNetV2L", 480, 85.7, "inside"),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

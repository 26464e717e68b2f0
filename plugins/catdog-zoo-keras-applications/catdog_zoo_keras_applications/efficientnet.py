"""EfficientNet B0 to B5 (2019): preprocessing inside the Keras model, each at its own size (224 to 456 px).

B6 and B7 are left out: catalogue.SKIPPED says why."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3

BACKBONES = (
    Backbone("efficientnet_b0", "EfficientNetB0", 224, 77.1, "inside"),
    Backbone("efficientnet_b1", "EfficientNetB1", 240, 79.1, "inside"),
    Backbone("efficientnet_b2", "EfficientNetB2", 260, 80.1, "inside"),
    Backbone("efficientnet_b3", "EfficientNetB3", 300, 81.6, "inside"),
    Backbone("efficientnet_b4", "EfficientNetB4", 380, 82.9, "inside"),
    Backbone("efficientnet_b5", "EfficientNetB5", 456, 83.6, "inside"),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

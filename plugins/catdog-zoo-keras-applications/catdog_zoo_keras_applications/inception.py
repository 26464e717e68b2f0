"""InceptionV3 (2015) and Inception-ResNet-v2 (2016): [-1, 1] preprocessing, 299 px, at least 75 px."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3

BACKBONES = (
    Backbone("inception_v3", "InceptionV3", 299, 77.9, "tf", min_size=75),
    Backbone("inception_resnet_v2", "InceptionResNetV2", 299, 80.3, "tf", min_size=75),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

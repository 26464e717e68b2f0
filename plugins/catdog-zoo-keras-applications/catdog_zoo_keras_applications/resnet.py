"""ResNet 50, 101 and 152 (2015): caffe-style preprocessing (BGR, ImageNet mean subtracted), 224 px."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3
RESNET_WEIGHTS = "MIT (KaimingHe/deep-residual-networks checkpoints)"

BACKBONES = (
    Backbone("resnet50", "ResNet50", 224, 74.9, "caffe", RESNET_WEIGHTS),
    Backbone("resnet101", "ResNet101", 224, 76.4, "caffe", RESNET_WEIGHTS),
    Backbone("resnet152", "ResNet152", 224, 76.6, "caffe", RESNET_WEIGHTS),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

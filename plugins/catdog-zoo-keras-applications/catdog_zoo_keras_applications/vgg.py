"""VGG16 and VGG19 (2014): caffe-style preprocessing (BGR, ImageNet mean subtracted), 224 px."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3
VGG_WEIGHTS = "CC BY 4.0 (Oxford VGG checkpoints)"

BACKBONES = (
    Backbone("vgg16", "VGG16", 224, 71.3, "caffe", VGG_WEIGHTS),
    Backbone("vgg19", "VGG19", 224, 71.3, "caffe", VGG_WEIGHTS),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

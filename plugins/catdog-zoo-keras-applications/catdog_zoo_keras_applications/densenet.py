"""DenseNet 121, 169 and 201 (2017): torch-style preprocessing (ImageNet mean and deviation), 224 px."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3
DENSENET_WEIGHTS = "BSD-3-Clause (liuzhuang13/DenseNet checkpoints)"

BACKBONES = (
    Backbone("densenet121", "DenseNet121", 224, 75.0, "torch", DENSENET_WEIGHTS),
    Backbone("densenet169", "DenseNet169", 224, 76.2, "torch", DENSENET_WEIGHTS),
    Backbone("densenet201", "DenseNet201", 224, 77.3, "torch", DENSENET_WEIGHTS),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

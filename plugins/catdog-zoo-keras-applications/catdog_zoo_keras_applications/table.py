"""The table: one row per ``keras.applications`` backbone this plugin registers, and the ones it leaves out.

A row says what differs between backbones (family, constructor, native input size, published accuracy,
preprocessing, weights licence, smallest input); :mod:`.building` turns each into a spec and a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# Where each backbone's own preprocess_input is done. "inside": the Keras model starts with its own
# Rescaling/Normalization layers and takes [0, 255] pixels. The others become layers (building.preprocessed):
# "tf" [-1, 1]; "torch" [0, 1] then the ImageNet mean and deviation per channel; "caffe" RGB -> BGR then the
# ImageNet mean subtracted, in [0, 255].
PREPROCESSING = ("inside", "tf", "torch", "caffe")

KERAS_WEIGHTS = "Apache-2.0 (keras-applications ImageNet checkpoints)"
CONVNEXT_WEIGHTS = "MIT (facebookresearch/ConvNeXt checkpoints)"
DENSENET_WEIGHTS = "BSD-3-Clause (liuzhuang13/DenseNet checkpoints)"
RESNET_WEIGHTS = "MIT (KaimingHe/deep-residual-networks checkpoints)"
VGG_WEIGHTS = "CC BY 4.0 (Oxford VGG checkpoints)"


@dataclass(frozen=True)
class Backbone:
    name: str  # the zoo's model name
    constructor: str  # the keras.applications function
    size: int  # the ImageNet checkpoint's input size: the model's default --image-size
    top1: float  # published ImageNet top-1 accuracy, % (keras.io/api/applications; README.md)
    preprocessing: str
    licence: Optional[str] = KERAS_WEIGHTS
    min_size: int = 32  # what keras.applications accepts without the classifier top

    def __post_init__(self):
        if self.preprocessing not in PREPROCESSING:
            raise ValueError(f"{self.name}: preprocessing must be one of {PREPROCESSING}")


# Family (one entry point module each) -> its backbones.
FAMILIES = {
    "convnext": (
        Backbone("convnext_tiny", "ConvNeXtTiny", 224, 81.3, "inside", CONVNEXT_WEIGHTS),
        Backbone("convnext_small", "ConvNeXtSmall", 224, 82.3, "inside", CONVNEXT_WEIGHTS),
        Backbone("convnext_base", "ConvNeXtBase", 224, 85.3, "inside", CONVNEXT_WEIGHTS),
        Backbone("convnext_large", "ConvNeXtLarge", 224, 86.3, "inside", CONVNEXT_WEIGHTS),
        Backbone("convnext_xlarge", "ConvNeXtXLarge", 224, 86.7, "inside", CONVNEXT_WEIGHTS),
    ),
    "densenet": (
        Backbone("densenet121", "DenseNet121", 224, 75.0, "torch", DENSENET_WEIGHTS),
        Backbone("densenet169", "DenseNet169", 224, 76.2, "torch", DENSENET_WEIGHTS),
        Backbone("densenet201", "DenseNet201", 224, 77.3, "torch", DENSENET_WEIGHTS),
    ),
    "efficientnet": (
        Backbone("efficientnet_b0", "EfficientNetB0", 224, 77.1, "inside"),
        Backbone("efficientnet_b1", "EfficientNetB1", 240, 79.1, "inside"),
        Backbone("efficientnet_b2", "EfficientNetB2", 260, 80.1, "inside"),
        Backbone("efficientnet_b3", "EfficientNetB3", 300, 81.6, "inside"),
        Backbone("efficientnet_b4", "EfficientNetB4", 380, 82.9, "inside"),
        Backbone("efficientnet_b5", "EfficientNetB5", 456, 83.6, "inside"),
    ),
    "efficientnet_v2": (
        Backbone("efficientnet_v2_b0", "EfficientNetV2B0", 224, 78.7, "inside"),
        Backbone("efficientnet_v2_b1", "EfficientNetV2B1", 240, 79.8, "inside"),
        Backbone("efficientnet_v2_b2", "EfficientNetV2B2", 260, 80.5, "inside"),
        Backbone("efficientnet_v2_b3", "EfficientNetV2B3", 300, 82.0, "inside"),
        Backbone("efficientnet_v2_s", "EfficientNetV2S", 384, 83.9, "inside"),
        Backbone("efficientnet_v2_m", "EfficientNetV2M", 480, 85.3, "inside"),
        Backbone("efficientnet_v2_l", "EfficientNetV2L", 480, 85.7, "inside"),
    ),
    "inception": (
        Backbone("inception_v3", "InceptionV3", 299, 77.9, "tf", min_size=75),
        Backbone("inception_resnet_v2", "InceptionResNetV2", 299, 80.3, "tf", min_size=75),
    ),
    "mobilenet": (
        Backbone("mobilenet_v1", "MobileNet", 224, 70.4, "tf"),
        # Not in the keras.io table: top-1 of the 1.0 224 checkpoints, from keras.applications.mobilenet_v3
        Backbone("mobilenet_v3_small", "MobileNetV3Small", 224, 68.1, "inside"),
        Backbone("mobilenet_v3_large", "MobileNetV3Large", 224, 75.6, "inside"),
    ),
    "nasnet": (
        Backbone("nasnet_mobile", "NASNetMobile", 224, 74.4, "tf"),
        Backbone("nasnet_large", "NASNetLarge", 331, 82.5, "tf"),
    ),
    "resnet": (
        Backbone("resnet50", "ResNet50", 224, 74.9, "caffe", RESNET_WEIGHTS),
        Backbone("resnet101", "ResNet101", 224, 76.4, "caffe", RESNET_WEIGHTS),
        Backbone("resnet152", "ResNet152", 224, 76.6, "caffe", RESNET_WEIGHTS),
    ),
    "resnet_v2": (
        Backbone("resnet50_v2", "ResNet50V2", 224, 76.0, "tf"),
        Backbone("resnet101_v2", "ResNet101V2", 224, 77.2, "tf"),
        Backbone("resnet152_v2", "ResNet152V2", 224, 78.0, "tf"),
    ),
    "vgg": (
        Backbone("vgg16", "VGG16", 224, 71.3, "caffe", VGG_WEIGHTS),
        Backbone("vgg19", "VGG19", 224, 71.3, "caffe", VGG_WEIGHTS),
    ),
    "xception": (
        Backbone("xception", "Xception", 299, 79.0, "tf", min_size=71),
    ),
}

# keras.applications backbones not registered, and why (README.md lists them; a test checks that every backbone
# of the installed Keras is either registered or here).
SKIPPED = {
    "MobileNetV2": "the core's own mobilenet_v2 (plugins/catdog-zoo-mobilenet-v2)",
    "EfficientNetB6": "its native 528 px is above the zoo's image_size limit of 512 (config.py)",
    "EfficientNetB7": "its native 600 px is above the zoo's image_size limit of 512 (config.py)",
}

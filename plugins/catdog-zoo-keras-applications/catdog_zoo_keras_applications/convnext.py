"""ConvNeXt Tiny to XLarge (2022): its own preprocessing inside the Keras model, 224 px."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3
CONVNEXT_WEIGHTS = "MIT (facebookresearch/ConvNeXt checkpoints)"

BACKBONES = (
    Backbone("convnext_tiny", "ConvNeXtTiny", 224, 81.3, "inside", CONVNEXT_WEIGHTS),
    Backbone("convnext_small", "ConvNeXtSmall", 224, 82.3, "inside", CONVNEXT_WEIGHTS),
    Backbone("convnext_base", "ConvNeXtBase", 224, 85.3, "inside", CONVNEXT_WEIGHTS),
    Backbone("convnext_large", "ConvNeXtLarge", 224, 86.3, "inside", CONVNEXT_WEIGHTS),
    Backbone("convnext_xlarge", "ConvNeXtXLarge", 224, 86.7, "inside", CONVNEXT_WEIGHTS),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

"""MobileNet (v1, 2017; [-1, 1] preprocessing) and MobileNetV3 Small and Large (2019; preprocessing inside), 224 px.

MobileNetV2 is the core's own mobilenet_v2 (plugins/catdog-zoo-mobilenet-v2), so it is not registered here."""

from catdog_zoo import hookimpl

from .building import register_family

CATDOG_ZOO_API_VERSION = 3


@hookimpl
def register_models(register):
    register_family(register, "mobilenet")

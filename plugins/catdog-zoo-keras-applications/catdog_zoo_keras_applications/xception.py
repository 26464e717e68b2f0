"""Xception (2017): [-1, 1] preprocessing, 299 px, at least 71 px."""

from catdog_zoo import hookimpl

from .catalogue import Backbone, register_all

CATDOG_ZOO_API_VERSION = 3

BACKBONES = (
    Backbone("xception", "Xception", 299, 79.0, "tf", min_size=71),
)


@hookimpl
def register_models(register):
    register_all(register, BACKBONES)

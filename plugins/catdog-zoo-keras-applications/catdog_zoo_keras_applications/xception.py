"""Xception (2017): [-1, 1] preprocessing, 299 px, at least 71 px."""

from catdog_zoo import hookimpl

from .building import register_family

CATDOG_ZOO_API_VERSION = 3


@hookimpl
def register_models(register):
    register_family(register, "xception")

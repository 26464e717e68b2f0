"""NASNet-A Mobile (224 px) and Large (331 px) (2018): [-1, 1] preprocessing."""

from catdog_zoo import hookimpl

from .building import register_family

CATDOG_ZOO_API_VERSION = 3


@hookimpl
def register_models(register):
    register_family(register, "nasnet")

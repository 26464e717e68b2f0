"""EfficientNet B0 to B5 (2019): preprocessing inside the Keras model, each at its own size (224 to 456 px).

B6 and B7 are left out: table.SKIPPED says why."""

from catdog_zoo import hookimpl

from .building import register_family

CATDOG_ZOO_API_VERSION = 3


@hookimpl
def register_models(register):
    register_family(register, "efficientnet")

"""The core's own plugin: registers the default data source through the public hook."""

from .hookspecs import hookimpl
from .sources import DEFAULT_SOURCE, DataSource, fetch_cats_and_dogs


@hookimpl
def register_datasets(register):
    register(DataSource(DEFAULT_SOURCE, "Cats vs dogs, 2000 train + 1000 validation JPEGs (TensorFlow tutorials)",
                        fetch_cats_and_dogs))

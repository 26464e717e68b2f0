"""The default data source, registered through the public hook like any plugin's."""

from ..data.sources import DEFAULT_SOURCE, fetch_cats_and_dogs
from ..hookspecs import hookimpl
from ..registry import DataSource


@hookimpl
def register_datasets(register):
    register(DataSource(DEFAULT_SOURCE, "Cats vs dogs, 2000 train + 1000 validation JPEGs (TensorFlow tutorials)",
                        fetch_cats_and_dogs))

"""catdog-zoo: a model zoo of image classifiers as plugins, with a CLI to list, train, evaluate and predict.

The Python API mirrors the CLI::

    import catdog_zoo
    catdog_zoo.list_models("mobile*")
    run = catdog_zoo.train("mobilenet_v2", epochs=2)
    catdog_zoo.evaluate(run.run_dir, split="test")
    catdog_zoo.predict(run.run_dir, ["my_cat.jpg"])
"""

__version__ = "0.1.0"

from .errors import ConfigError, ZooError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .registry import ModelSpec, TrainingDefaults  # noqa: E402


def list_models(pattern=None):
    """Registered model specs, sorted by name, filtered by an fnmatch ``pattern`` ("mobile*")."""
    from .plugins import get_zoo
    return get_zoo().models.list(pattern)


def get_model_spec(name):
    """The spec registered under ``name`` (or ``distribution:name``)."""
    from .plugins import get_zoo
    return get_zoo().models.get(name)


def create_model(name, num_classes=2, image_size=None, weights="default"):
    """Build a registered architecture as an uncompiled ``keras.Model`` (images in, logits out)."""
    return get_model_spec(name).build(num_classes, image_size, weights=weights)


def train(model, **kwargs):
    """Train ``model`` and write a run directory; see :func:`catdog_zoo.training.train`."""
    from .training import train as _train
    return _train(model, **kwargs)


def train_resume(run_dir, **kwargs):
    """Continue a stopped run from its last checkpoint; see :func:`catdog_zoo.training.resume`."""
    from .training import resume
    return resume(run_dir, **kwargs)


def evaluate(run_dir, **kwargs):
    from .inference import evaluate as _evaluate
    return _evaluate(run_dir, **kwargs)


def predict(run_dir, paths, **kwargs):
    from .inference import predict as _predict
    return _predict(run_dir, paths, **kwargs)


__all__ = ["ConfigError", "ModelSpec", "TrainingDefaults", "ZooError", "create_model", "evaluate",
           "get_model_spec", "hookimpl", "list_models", "predict", "train", "train_resume", "__version__"]

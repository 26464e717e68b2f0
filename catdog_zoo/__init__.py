"""catdog-zoo: a model zoo of image classifiers as plugins, with a CLI to list, train, evaluate and predict.

Everything a notebook or a plugin needs is exported here (see ``__all__``); the subpackages are
internal and may change between releases. The Python API mirrors the CLI::

    import catdog_zoo
    catdog_zoo.list_models("mobile*")
    run = catdog_zoo.train("mobilenet_v2", epochs=2)   # a RunResult: shown in Jupyter with its curves
    catdog_zoo.evaluate(run.run_dir, split="test")
    catdog_zoo.predict(run.run_dir, ["my_cat.jpg"])
    catdog_zoo.compare(runs_dir="runs")                 # the leaderboard, as a table in Jupyter

Names backed by TensorFlow are imported on first use, so ``import catdog_zoo`` (and the CLI's
start-up) stays instant. TensorFlow's C++ start-up lines (absl, oneDNN, CUDA probing) are kept off
stderr while those names load and while their calls run, as the CLI does; the caller's own logging and
warnings are untouched (``CATDOG_ZOO_TF_LOGS=1`` shows TensorFlow's lines).
"""

import functools as _functools

from .config import TrainConfig
from .errors import ConfigError, UnknownModelError, ZooError
from .extensions import EngineSpec, ExporterSpec, StageSpec, TrackerSpec
from .hookspecs import PLUGIN_API_VERSION, hookimpl
from .plugins import get_zoo
from .registry import DEFAULT_WEIGHTS, DataSource, ModelSpec, TrainingDefaults
from .util.quiet import tensorflow_noise_filtered as _tensorflow_quiet
from .util.version import __version__

# name -> module that defines it, imported when the name is first used (they import Keras).
_LAZY = {
    "train": "catdog_zoo.training.session",
    "resume": "catdog_zoo.training.session",
    "evaluate": "catdog_zoo.runs.evaluate",
    "predict": "catdog_zoo.runs.predict",
    "export": "catdog_zoo.runs.export",
    "compile_model": "catdog_zoo.models.heads",
    "compare": "catdog_zoo.reports.notebook",
    "zoo": "catdog_zoo.training.zoo_sweep",
    "RunRecord": "catdog_zoo.runs.record",
    "StageResult": "catdog_zoo.training.context",
    "RunResult": "catdog_zoo.reports.notebook",
    "Leaderboard": "catdog_zoo.reports.notebook",
    "augmentation": "catdog_zoo.models.blocks",
    "mobilenet_v2_preprocessing": "catdog_zoo.models.blocks",
    "small_cnn": "catdog_zoo.models.blocks",
    "logit_units": "catdog_zoo.models.heads",
    "DROPOUT_POSITIONS": "catdog_zoo.models.blocks",
    "check_plugin": "catdog_zoo.conformance",
}

# What a plugin may rely on: covered by PLUGIN_API_VERSION, together with the hooks in catdog_zoo.hookspecs.
PLUGIN_API = ("ModelSpec", "TrainingDefaults", "DataSource", "EngineSpec", "ExporterSpec", "TrackerSpec",
              "StageSpec", "StageResult", "hookimpl", "PLUGIN_API_VERSION", "augmentation",
              "mobilenet_v2_preprocessing", "small_cnn", "logit_units", "DROPOUT_POSITIONS", "ZooError",
              "ConfigError",
              "check_plugin")


def list_models(pattern: str | None = None) -> list:
    """Registered model specs, sorted by name, filtered by an fnmatch ``pattern`` ("mobile*")."""
    return get_zoo().models.list(pattern)


def get_model_spec(name: str) -> ModelSpec:
    """The spec registered under ``name`` (or ``distribution:name``)."""
    return get_zoo().model(name)


def _quiet(function):
    """``function`` with TensorFlow's C++ start-up lines kept off stderr while it runs (util/quiet.py)."""
    @_functools.wraps(function)
    def quietly(*args, **kwargs):
        with _tensorflow_quiet():
            return function(*args, **kwargs)
    return quietly


@_quiet
def create_model(name: str, num_classes: int = 2, image_size=None, weights=DEFAULT_WEIGHTS):
    """Build a registered architecture as an uncompiled ``keras.Model`` (float images in [0, 255] in,
    logits out). ``weights``: "default" (the spec's pretrained source), a local file, or None (random)."""
    return get_model_spec(name).build(num_classes, image_size, weights=weights)


@_quiet
def load_model(path):
    """A trained model: a run directory's ``model.keras``, or a ``.keras`` file, loaded in Keras safe mode."""
    from pathlib import Path

    from .models.saving import load_model as _load
    from .runs.layout import MODEL_FILE

    path = Path(path)
    return _load(path / MODEL_FILE if path.is_dir() else path)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        import inspect
        with _tensorflow_quiet():  # importing Keras is when TensorFlow prints most of its lines
            value = getattr(importlib.import_module(_LAZY[name]), name)
        if inspect.isfunction(value):
            value = _quiet(value)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'catdog_zoo' has no attribute '{name}'")


def __dir__():
    return sorted({name for name in globals() if name.startswith("__") or not name.startswith("_")} | set(_LAZY))


__all__ = ["ConfigError", "DataSource", "EngineSpec", "ExporterSpec", "ModelSpec", "StageSpec", "TrackerSpec", "PLUGIN_API", "PLUGIN_API_VERSION", "TrainConfig",
           "TrainingDefaults", "UnknownModelError", "ZooError", "__version__", "create_model", "get_model_spec",
           "get_zoo", "hookimpl", "list_models", "load_model", *_LAZY]

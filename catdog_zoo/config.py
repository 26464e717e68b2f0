"""The resolved training configuration: spec defaults, then a YAML file, then command-line flags.

YAML keys mirror the long flag names with underscores (``epochs``, ``learning_rate``, ...).
Everything is checked here, before any work starts, and a problem names the key at fault.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional

import yaml

from .errors import ConfigError
from .registry import ModelSpec

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
# Chosen by measurement: see the aug-views sweep in bench/transfer.py and docs/performance.md.
AUG_VIEWS_DEFAULT = 1


@dataclass
class TrainConfig:
    model: str
    data: Optional[str] = None  # None: the default data source
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    image_size: tuple = (160, 160)
    seed: int = 42
    val_fraction: float = 0.2  # only for a single folder of class folders
    test_fraction: float = 0.2  # of the validation files, held out as the test split
    weights: Optional[str] = None  # None: the spec's pretrained source; a path for air-gapped use
    run_dir: Optional[str] = None
    strict: bool = False  # unusable image files or empty class folders are errors, not warnings
    tensorboard: bool = False  # also write TensorBoard logs into the run directory
    # Distribution (see catdog_zoo.distribute): batch_size is per replica.
    strategy: str = "auto"  # auto, one_device, mirrored, multi_worker
    devices: Optional[str] = None  # mirrored: "0,1" or "/gpu:0,/gpu:1"; None = every local GPU
    scale_learning_rate: bool = True  # linear scaling rule: learning_rate x replicas
    # Frozen-backbone models only (see catdog_zoo.features):
    feature_cache: bool = True  # train the head on cached backbone features
    aug_views: int = AUG_VIEWS_DEFAULT  # augmented copies of each training image in the cache
    fine_tune_epochs: int = 0  # then unfreeze the backbone's top layers for this many epochs
    fine_tune_at: object = 100  # first backbone layer (index or name) to unfreeze
    fine_tune_learning_rate: float = 1e-5

    def to_dict(self) -> dict:
        out = asdict(self)
        out["image_size"] = list(self.image_size)
        return out


KEYS = tuple(f.name for f in fields(TrainConfig))


def _int(key, value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {value}")
    return value


def _float(key, value):
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    return float(value)


def _optional_str(key, value):
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    return value


def parse_image_size(value, key="image_size") -> tuple:
    """160, "160", "160x128" or [160, 128] -> (160, 128); each side at least 32."""
    if isinstance(value, str):
        parts = value.lower().split("x")
        try:
            value = [int(p) for p in parts] if len(parts) == 2 else int(value)
        except ValueError:
            raise ConfigError(f"{key} must be N or HxW, got {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{key} must be N or [H, W], got {value!r}")
    size = tuple(_int(key, v, minimum=32) for v in value)
    return size


def _check(key, value):
    """Validate one key's value; returns it normalised."""
    if key in ("epochs", "batch_size"):
        return _int(key, value, minimum=1)
    if key in ("seed", "aug_views", "fine_tune_epochs"):
        return _int(key, value, minimum=0)
    if key in ("feature_cache", "strict", "tensorboard", "scale_learning_rate"):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if key == "fine_tune_at":
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, str) and value:
            return value  # a layer name, checked against the backbone when the model is built
        return _int(key, value, minimum=0)
    if key in ("learning_rate", "fine_tune_learning_rate"):
        value = _float(key, value)
        if value <= 0:
            raise ConfigError(f"{key} must be > 0, got {value}")
        return value
    if key in ("val_fraction", "test_fraction"):
        value = _float(key, value)
        low_ok = value > 0 if key == "val_fraction" else value >= 0
        if not (low_ok and value < 1):
            raise ConfigError(f"{key} must be between 0 and 1, got {value}")
        return value
    if key == "optimizer":
        if value not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {value!r}")
        return value
    if key == "image_size":
        return parse_image_size(value)
    if key == "strategy":
        from .distribute import STRATEGIES
        if value not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {value!r}")
        return value
    if key in ("data", "weights", "run_dir", "model", "devices"):
        return _optional_str(key, value)
    raise ConfigError(f"unknown config key '{key}' (known: {', '.join(KEYS)})")


def load_config_file(path) -> dict:
    """Read a YAML mapping of config keys; hyphens in keys are accepted as underscores."""
    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"malformed YAML in {path}{line}: {getattr(exc, 'problem', exc)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    out = {}
    for key, value in loaded.items():
        name = str(key).replace("-", "_")
        try:
            out[name] = _check(name, value)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return out


def resolve_config(spec: ModelSpec, config_file=None, **overrides) -> TrainConfig:
    """Spec defaults, overridden by ``config_file`` keys, overridden by non-None ``overrides``."""
    d = spec.defaults
    values = dict(epochs=d.epochs, batch_size=d.batch_size, learning_rate=d.learning_rate,
                  optimizer=d.optimizer, image_size=tuple(d.image_size))
    if config_file:
        from_file = load_config_file(config_file)
        named = from_file.pop("model", None)
        if named not in (None, spec.name, spec.qualified_name):
            raise ConfigError(f"{config_file}: model is '{named}' but the command trains '{spec.name}'")
        values.update(from_file)
    for key, value in overrides.items():
        if value is not None:
            values[key] = _check(key, value)
    return TrainConfig(model=spec.name, **values)

"""Every training option, declared once: its type, default, bounds, choices and help text.

:data:`KEYS` is the single source of truth. The ``train`` command's flags (``catdog_zoo.cli.options``),
the YAML config checks, a run folder's ``config.yaml`` checks and the defaults shown in ``--help`` and
in :class:`catdog_zoo.TrainingDefaults` are all derived from it, so adding an option is one entry here
(and the code that reads it). Nothing in this module imports TensorFlow: a bad flag or config value is
refused in milliseconds, with one line naming the key.

A resolved configuration is spec defaults, then a YAML file, then flags (non-``None`` overrides).
YAML keys are the long flag names with underscores (``epochs``, ``learning_rate``, ...).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import asdict, dataclass, field, make_dataclass
from pathlib import Path
from typing import Any, Optional

from .errors import ConfigError
from .util.names import terminal
from .util.reading import read_yaml

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
SPLITS = ("train", "validation", "test")
DECODED_CACHE = ("auto", "keep", "drop")
TRAIN_PRECISIONS = ("auto", "float32", "bfloat16")
MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes; refuse anything absurd before parsing


@dataclass(frozen=True)
class Key:
    """One configuration key.

    ``kind``: ``int``, ``float``, ``bool``, ``str`` (optional text), ``choice``, ``size`` (N or HxW),
    ``layer`` (a layer index or name) or ``names`` (a list of registered names, e.g. trackers). ``per_model``: the default comes from the model's
    :class:`~catdog_zoo.TrainingDefaults` (``default`` is what most models use). ``flag``: how the
    ``train`` command spells it: ``value`` (``--epochs 5``), ``switch`` (``--x/--no-x``), ``on``
    (``--strict``), ``repeat`` (``--track a --track b``), or ``none`` (config file only). ``backbone_only``: read only when the model has a frozen
    backbone (a run of any other model records it unused, and its report leaves it out).
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    open_minimum: bool = False  # minimum itself not allowed (learning rates > 0)
    open_maximum: bool = False  # maximum itself not allowed (fractions < 1)
    choices: tuple = ()
    per_model: bool = False
    flag: str = "value"
    metavar: Optional[str] = None
    backbone_only: bool = False

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_text(self) -> str:
        shown = "x".join(map(str, self.default)) if self.kind == "size" else self.default
        if self.kind == "names":
            shown = ", ".join(self.default) or "none"
        if self.kind == "bool":
            shown = "on" if self.default else "off"
        return f"the model's, {shown} for most" if self.per_model else f"{shown}"

    def check(self, value):
        """``value`` validated and normalised, or a :class:`ConfigError` naming this key (None stands for the
        default of a key whose default is decided later: the data's layout, the model's source)."""
        if value is None and self.default is None:
            return None
        return _CHECKS[self.kind](self, value)


def number_text(x) -> str:
    """1e-05 stays 1e-05, 4294967295 stays 4294967295 (``:g`` would round it)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _bounds(key: Key, value):
    low_ok = key.minimum is None or (value > key.minimum if key.open_minimum else value >= key.minimum)
    high_ok = key.maximum is None or (value < key.maximum if key.open_maximum else value <= key.maximum)
    if low_ok and high_ok:
        return value
    low = "" if key.minimum is None else f"{'>' if key.open_minimum else '>='} {number_text(key.minimum)}"
    high = "" if key.maximum is None else f"{'<' if key.open_maximum else '<='} {number_text(key.maximum)}"
    raise ConfigError(f"{key.name} must be {' and '.join(p for p in (low, high) if p)}, got {number_text(value)}")


def _check_int(key: Key, value):
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key.name} must be an integer, got {value!r}")
    return _bounds(key, value)


def _check_float(key: Key, value):
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{key.name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key.name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{key.name} must be a finite number, got {value!r}")
    return _bounds(key, float(value))


def _check_bool(key: Key, value):
    if not isinstance(value, bool):
        raise ConfigError(f"{key.name} must be true or false, got {value!r}")
    return value


def _check_str(key: Key, value):
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{key.name} must be a string, got {value!r}")
    return value


def _check_choice(key: Key, value):
    if value not in key.choices:
        raise ConfigError(f"{key.name} must be one of {', '.join(key.choices)}, got {value!r}")
    return value


def _check_name(key: Key, value):
    """A registered name's shape (letters, digits, '_', '-'); whether it is registered is checked against the zoo
    (:func:`check_engine`)."""
    if not isinstance(value, str) or not value.isascii() or not value.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{key.name} must be a name (letters, digits, '_' or '-'), got {str(value)[:40]!r}")
    return value


def _check_size(key: Key, value):
    """160, "160", "160x128" or [160, 128] -> (160, 128), each side within the key's bounds."""
    if isinstance(value, str):
        parts = value.lower().split("x")
        try:
            value = [int(p) for p in parts] if len(parts) == 2 else int(value)
        except ValueError:
            raise ConfigError(f"{key.name} must be N or HxW, got {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{key.name} must be N or [H, W], got {value!r}")
    return tuple(_check_int(key, v) for v in value)


def _check_names(key: Key, value):
    """"tensorboard" or ["tensorboard", "mlflow"] -> a tuple of names, each once, in order given. Whether each
    is registered is the plugins' to say (:func:`catdog_zoo.training.resolve.resolve_run`)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(
            isinstance(n, str) and n and n.replace("_", "").replace("-", "").isalnum() for n in names):
        raise ConfigError(f"{key.name} must be a name or a list of names, got {value!r}")
    return tuple(dict.fromkeys(names))


def _check_layer(key: Key, value):
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, str) and value:
        return value  # a layer name, checked against the backbone when the model is built
    return _check_int(key, value)


_CHECKS = {"int": _check_int, "float": _check_float, "bool": _check_bool, "str": _check_str,
           "choice": _check_choice, "size": _check_size, "layer": _check_layer, "name": _check_name,
           "names": _check_names}

_KEY_LIST = [
    Key("model", "str", None, "Registered model name.", flag="none"),
    Key("data", "str", None, "Class folders (or train/ + validation/ of class folders), or a data source "
        "name. Default: cats_and_dogs_filtered.", metavar="DIR|NAME"),
    Key("epochs", "int", 20, "Training epochs (the head stage).", minimum=1, maximum=100_000, per_model=True),
    Key("early_stopping", "int", 0, "Patience: end a stage after this many epochs without a lower validation "
        "loss and keep its best epoch's weights (0: train every epoch, keep the last).", minimum=0,
        maximum=100_000, metavar="N"),
    Key("batch_size", "int", 32, "Images per batch (per replica under a distribution strategy).",
        minimum=1, maximum=65_536, per_model=True),
    Key("learning_rate", "float", 1e-3, "Optimizer learning rate.", minimum=0, open_minimum=True, maximum=10,
        per_model=True),
    Key("optimizer", "choice", "adam", "Optimizer.", choices=OPTIMIZERS, per_model=True),
    Key("image_size", "size", (160, 160), "Input size in pixels: N or HxW.", minimum=32, maximum=512,
        per_model=True, metavar="N|HxW"),
    Key("seed", "int", 42, "Fixes the split, shuffling, augmentation and initialisation.", minimum=0,
        maximum=2**32 - 1),
    Key("val_fraction", "float", 0.2, "Validation share of each class when --data is a single folder of "
        "class folders.", minimum=0, open_minimum=True, maximum=1, open_maximum=True),
    Key("test_fraction", "float", None, "Share of each class's validation files held out as the test split. "
        "Default: 0.2 with train/ and validation/ folders; 0.5 for a single folder of class folders (80% train, "
        "10% validation, 10% test). The run records the share used.", minimum=0, maximum=1, open_maximum=True),
    Key("weights", "str", None, "Local pretrained weights file, for pretrained models on machines without "
        "internet. Default: the model's source, downloaded into the Keras cache.", metavar="FILE"),
    Key("run_dir", "str", None, "Where to write the run. Default: runs/MODEL-TIME.", metavar="DIR"),
    Key("strict", "bool", False, "Refuse data with unusable image files or empty class folders instead of "
        "skipping them with a warning.", flag="on"),
    Key("tensorboard", "bool", False, "Also write TensorBoard logs to RUN_DIR/tensorboard "
        "(view with: tensorboard --logdir RUN_DIR/tensorboard); the same as --track tensorboard.", flag="on"),
    Key("track", "names", (), "Experiment tracker to send the run's params, per-epoch metrics and files to; "
        "repeat for several. Built in: tensorboard; plugins add more ('catdog-zoo plugins').", flag="repeat",
        metavar="NAME"),
    Key("strategy", "choice", "auto", "tf.distribute strategy. auto: mirrored over every GPU when there are "
        "several, else one device. multi_worker reads the cluster from TF_CONFIG; see docs/distributed.md.",
        choices=STRATEGIES),
    Key("devices", "str", None, "mirrored: devices to use, '0,1' (GPU indices) or '/gpu:0,/gpu:1'. "
        "Default: every GPU."),
    Key("scale_learning_rate", "bool", True, "With several replicas, multiply the learning rate by their "
        "number (--batch-size is per replica).", flag="switch"),
    Key("feature_cache", "bool", True, "Frozen-backbone models: train the head on cached backbone features "
        "(on) or end to end on images (off).", flag="switch", backbone_only=True),
    Key("decoded_cache", "choice", "auto", "Keep decoded pixels in the cache between runs (keep), or only which "
        "files are usable, decoding pixels again when needed (drop); auto: keep a split's pixels when they take "
        "at most 2 GiB (about 14,000 images at 224 px).", choices=DECODED_CACHE),
    Key("engine", "name", "auto", "What runs a frozen backbone's forward pass when features are extracted: "
        "tflite (XNNPACK kernels on the CPU, the same float32 results), openvino (the same, and bfloat16 for "
        "--train-precision; pip install 'catdog-zoo[openvino]'), tensorflow, a plugin's engine ('catdog-zoo "
        "plugins' lists them), or auto (openvino when installed and the CPU computes in bfloat16, else tflite; "
        "tensorflow when neither converts the backbone or a GPU is visible).", backbone_only=True, metavar="NAME"),
    Key("train_precision", "choice", "auto", "What the training split's backbone features are computed in: "
        "float32, or bfloat16 (about 2x faster with the openvino engine on a CPU with AMX or AVX512-BF16; heads "
        "scored the same in every measurement, docs/performance.md); auto: bfloat16 where OpenVINO runs on a CPU "
        "that computes in it natively, and cached bfloat16 features of the same images wherever found. "
        "Validation and test features, so every recorded score, are float32; metrics.json records the "
        "training features' precision.", choices=TRAIN_PRECISIONS, backbone_only=True),
    Key("aug_views", "int", 0, "Augmented copies of each training image in the feature cache; 0: the head "
        "trains on un-augmented features, as good or better in every measurement so far and cheaper "
        "(docs/performance.md).", minimum=0, maximum=64, backbone_only=True),
    Key("fine_tune_epochs", "int", 0, "After the head, unfreeze the backbone's top layers for this many epochs.",
        minimum=0, maximum=100_000, backbone_only=True),
    Key("fine_tune_at", "layer", 100, "First backbone layer to unfreeze: index or name.", minimum=0,
        maximum=100_000, metavar="LAYER", backbone_only=True),
    Key("fine_tune_learning_rate", "float", 1e-5, "Learning rate while fine-tuning.", minimum=0,
        open_minimum=True, maximum=10, backbone_only=True),
]
KEYS: dict = {key.name: key for key in _KEY_LIST}
PER_MODEL = tuple(k.name for k in _KEY_LIST if k.per_model)


def keys_that_apply(config: dict, spec) -> dict:
    """``config`` (a resolved configuration as a dict) without the keys ``spec``'s model never reads."""
    return {name: value for name, value in config.items()
            if spec.frozen_backbone or name not in KEYS or not KEYS[name].backbone_only}


def _to_dict(self) -> dict:
    """As written to YAML and JSON: tuples in memory (``image_size``, ``track``) become lists."""
    return {name: list(value) if isinstance(value, tuple) else value for name, value in asdict(self).items()}


# The resolved configuration of one run: one field per key, in declaration order.
TrainConfig = make_dataclass(
    "TrainConfig",
    [(k.name, Any, field(default=k.default)) for k in _KEY_LIST],
    namespace={"to_dict": _to_dict, "__doc__": "A resolved, validated configuration: one field per "
               "entry of :data:`catdog_zoo.config.KEYS`."},
)


def check(name: str, value, where: str = ""):
    """Validate one key's value (normalised), or a one-line error naming the key (and the file)."""
    key = KEYS.get(name)
    try:
        if key is None:
            raise ConfigError(f"unknown config key '{name}' (known: {', '.join(KEYS)})")
        return key.check(value)
    except ConfigError as exc:
        text = str(exc) if len(str(exc)) <= 300 else f"{str(exc)[:300]}..."  # a value may be megabytes long
        raise ConfigError(f"{where}: {text}" if where else text) from None


# Keys that name a file or folder. In a config file (a user's --config, a run's config.yaml) a relative one is
# relative to the file's folder, as in a Makefile or docker-compose.yml: the file means the same whichever
# directory the command runs from. Runs record them absolute (runs/portable.py).
PATH_KEYS = ("data", "weights", "run_dir")


def anchored(name: str, value, base: Path):
    """``value`` of key ``name`` from a config file in ``base``: a relative path made absolute from ``base``. A
    bare ``data`` name with nothing of that name in ``base`` stays as it is: a data source's name
    (``cats_and_dogs_filtered``), or a folder ``--data`` then reports missing."""
    if name not in PATH_KEYS or not isinstance(value, str) or not value:
        return value
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    if name == "data" and len(path.parts) == 1 and not value.startswith(".") and not (base / path).exists():
        return value
    return str((base / path).resolve())


def load_config_file(path) -> dict:
    """Read a YAML mapping of config keys (hyphens in keys read as underscores), every value checked; paths
    in it relative to the file's folder (:func:`anchored`)."""
    path = Path(path)
    loaded = read_yaml(path, MAX_CONFIG_BYTES, "config file", error=ConfigError)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    base = path.expanduser().resolve().parent
    values = {str(k).replace("-", "_"): check(str(k).replace("-", "_"), v, str(path)) for k, v in loaded.items()}
    return {name: anchored(name, value, base) for name, value in values.items()}


def resolve_config(spec, config_file=None, where: str = "named in", loaded: dict | None = None,
                   checked: bool = False, **overrides) -> TrainConfig:
    """Spec defaults, overridden by ``config_file`` keys, overridden by non-None ``overrides``; a folder or file
    the file names that is not here is refused ("data folder X {where} FILE is not here: pass --data DIR").
    ``loaded``: the file's keys when the caller read it already (:func:`load_config_file`): read once.
    ``checked``: the overrides are flags click already checked with each key's own check (cli/options.py)."""
    values = {name: getattr(spec.defaults, name) for name in PER_MODEL}
    values["image_size"] = tuple(values["image_size"])
    if config_file:
        from_file = dict(loaded) if loaded is not None else load_config_file(config_file)
        named = from_file.pop("model", None)
        if named not in (None, spec.name, spec.qualified_name):
            raise ConfigError(f"{config_file}: model is '{named}' but the command trains '{spec.name}'")
        if from_file.get("run_dir") and Path(from_file["run_dir"]).resolve() == Path(config_file).resolve().parent:
            del from_file["run_dir"]  # a run's own config.yaml: repeating the run writes a new run directory
        values.update(from_file)
    for name, value in overrides.items():
        if value is not None:
            values[name] = value if checked else check(name, value)
    values.pop("model", None)
    if values.get("tensorboard"):  # the alias, decided here once: every later step reads ``track`` alone
        values["track"] = tuple(dict.fromkeys((*values.get("track", ()), "tensorboard")))
    cfg = TrainConfig(model=spec.name, **values)
    if config_file:  # a config from elsewhere (a run copied from another machine): what to pass, before any work
        check_paths_here(cfg, f"{where} {config_file}", [k for k in ("data", "weights") if overrides.get(k) is None])
    return cfg


def missing_text(name: str, value, where: str) -> str:
    """The one line for a folder or file named by key ``name`` (``where``: "named in FILE", "recorded in
    RUN/config.yaml") that is not on this machine, and the flag that says where it is now."""
    what, flag = {"data": ("data folder", "--data DIR"), "weights": ("weights file", "--weights FILE")}[name]
    return f"{what} {terminal(str(value))} {where} is not here: pass {flag}"


def check_paths_here(cfg, where: str, keys=("data", "weights")) -> None:
    """Refuse a folder or file of ``keys`` that a config file named (``where``) and that is not on this machine:
    a run copied elsewhere, a config shared with a colleague. A bare data name is a data source's, and
    ``--data``'s rules find it."""
    for name in keys:
        value = getattr(cfg, name)
        if value and Path(value).is_absolute() and not Path(value).exists():
            raise ConfigError(missing_text(name, value, where))


def check_for_model(spec, cfg, engines: dict) -> None:
    """Options the chosen model cannot honour, refused before any work; ``engines``: the zoo's registered
    engines (name -> ``EngineSpec``)."""
    if cfg.weights is not None:
        if spec.pretrained is None:
            raise ConfigError(spec.no_weights_message())
        if not Path(cfg.weights).is_file():
            raise ConfigError(f"weights file not found: {cfg.weights}")
    if cfg.fine_tune_epochs and not spec.frozen_backbone:
        raise ConfigError(f"model '{spec.name}' declares no frozen backbone; --fine-tune-epochs does not apply")
    if "tensorboard" in cfg.track and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install 'catdog-zoo[tensorboard]'")
    check_engine(cfg, engines)


def check_engine(cfg, engines: dict) -> None:
    """``engine`` must be ``auto`` or a registered engine (one line listing them); ``--train-precision bfloat16``
    an engine that computes in it, installed here."""
    if cfg.engine != "auto" and cfg.engine not in engines:
        raise ConfigError(f"engine must be one of auto, {', '.join(sorted(engines))}, got {cfg.engine!r} (a plugin's "
                          "engine: 'catdog-zoo plugins' lists what is installed)")
    if cfg.train_precision == "bfloat16":
        able = [name for name, spec in engines.items() if "bfloat16" in spec.precisions]
        if cfg.engine not in ("auto", *able):
            raise ConfigError(f"--train-precision bfloat16 needs --engine {' or '.join([*able, 'auto'])}, not "
                              f"{cfg.engine}")
        why = [engines[name].available() for name in able if engines[name].available and
               (cfg.engine in ("auto", name))]
        if why and all(why):  # none of the engines that could is installed here
            raise ConfigError(f"--train-precision bfloat16 {why[0]}")


# What decides a run's data, split and input: every run folder has always recorded them.
RUN_ESSENTIALS = ("data", "image_size", "seed", "val_fraction", "test_fraction")


def config_from_run(data, where: str) -> TrainConfig:
    """A run folder's saved ``config.yaml`` (already parsed), every value checked as a flag would be.

    Keys a newer version added take their defaults, so older run folders still load.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of config keys, got {type(data).__name__}")
    values = {str(k): check(str(k), v, where) for k, v in data.items()}
    if not values.get("model"):
        raise ConfigError(f"{where}: no model named")
    missing = [k for k in RUN_ESSENTIALS if k not in values]
    if missing:  # defaults here would silently score other data, another split, or another input size
        raise ConfigError(f"{where}: missing {', '.join(missing)}; every run writes them (edited or damaged?)")
    return TrainConfig(**values)

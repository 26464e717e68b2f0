"""The trainer: config -> data splits -> model -> compile -> fit -> evaluate -> run directory."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import rundir
from .config import TrainConfig, resolve_config
from .errors import ConfigError
from .plugins import get_zoo
from .sources import resolve_data
from .splits import DataSplits, make_splits


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict


def versions() -> dict:
    import keras
    import numpy
    import tensorflow as tf

    from . import __version__
    return {"catdog_zoo": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def compile_model(model, optimizer: str = "adam", learning_rate: float = 1e-3):
    """Compile with the loss that matches the head: one logit -> binary, several -> sparse categorical."""
    import keras

    if model.output_shape[-1] == 1:
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        accuracy = keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)  # threshold on the logit
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    optimizers = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                  "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    model.compile(optimizer=optimizers[optimizer](learning_rate=learning_rate), loss=loss, metrics=[accuracy])
    return model


def keras_verbosity(quiet: bool) -> int:
    # Progress bars only on a terminal; one line per epoch in logs and CI.
    if quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


def load_splits(cfg_or_dict) -> DataSplits:
    get = cfg_or_dict.get if isinstance(cfg_or_dict, dict) else lambda k: getattr(cfg_or_dict, k)
    root = resolve_data(get("data"))
    return make_splits(root, seed=get("seed"), val_fraction=get("val_fraction"), test_fraction=get("test_fraction"))


def train(model: str, *, config_file=None, quiet: bool = False, runs_root="runs", **overrides) -> RunResult:
    """Train a registered model and write its run directory; the Python face of ``catdog-zoo train``.

    ``overrides`` are config keys (``epochs=2``, ``data="path"``, ``learning_rate=1e-4`` ...).
    """
    spec = get_zoo().models.get(model)
    cfg = resolve_config(spec, config_file, **overrides)
    if cfg.weights is not None:
        if spec.pretrained is None:
            raise ConfigError(f"model '{spec.name}' has no pretrained weights; --weights does not apply to it")
        if not Path(cfg.weights).is_file():
            raise ConfigError(f"weights file not found: {cfg.weights}")
    splits = load_splits(cfg)
    run_dir = rundir.create_run_dir(spec.name, cfg.run_dir, runs_root)
    cfg.run_dir = str(run_dir)
    rundir.write_yaml(run_dir / rundir.CONFIG_FILE, cfg.to_dict())
    return _fit_and_record(spec, cfg, splits, run_dir, quiet)


def _fit_and_record(spec, cfg: TrainConfig, splits: DataSplits, run_dir: Path, quiet: bool) -> RunResult:
    import keras

    from .pipeline import make_dataset

    keras.utils.set_random_seed(cfg.seed)
    net = spec.build(len(splits.class_names), cfg.image_size,
                     weights=cfg.weights if cfg.weights is not None else "default")
    compile_model(net, cfg.optimizer, cfg.learning_rate)
    train_ds = make_dataset(splits.train, cfg.image_size, cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_ds = make_dataset(splits.validation, cfg.image_size, cfg.batch_size)
    verbose = keras_verbosity(quiet)
    if not quiet:
        print(f"Training {spec.name} on {splits.root}: {len(splits.train)} train, {len(splits.validation)} "
              f"validation, {len(splits.test)} test images, classes {', '.join(splits.class_names)}", flush=True)
    started = time.perf_counter()
    # shuffle=False: the dataset reshuffles itself, seeded; Keras would only warn it ignores the flag.
    history = net.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, verbose=verbose, shuffle=False)
    train_seconds = time.perf_counter() - started
    rundir.write_history(run_dir / rundir.HISTORY_FILE, history.history)

    val = net.evaluate(val_ds, verbose=0, return_dict=True)
    test = (net.evaluate(make_dataset(splits.test, cfg.image_size, cfg.batch_size), verbose=0, return_dict=True)
            if len(splits.test) else {"accuracy": None, "loss": None})
    rundir.save_model(net, run_dir / rundir.MODEL_FILE)
    metrics = {
        "model": spec.name,
        "plugin": spec.plugin,
        "distribution": spec.distribution,
        "plugin_version": spec.version,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "train_accuracy": float(history.history["accuracy"][-1]),
        "train_loss": float(history.history["loss"][-1]),
        "val_accuracy": float(val["accuracy"]),
        "val_loss": float(val["loss"]),
        "test_accuracy": None if test["accuracy"] is None else float(test["accuracy"]),
        "test_loss": None if test["loss"] is None else float(test["loss"]),
        "train_seconds": round(train_seconds, 2),
        "num_params": int(net.count_params()),
        "trainable_params": int(sum(int(w.numpy().size) for w in net.trainable_weights)),
        "num_classes": len(splits.class_names),
        "class_names": list(splits.class_names),
        "image_size": list(cfg.image_size),
        "data_root": splits.root,
        "split_sizes": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "versions": versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    rundir.write_json(run_dir / rundir.METRICS_FILE, metrics)
    if not quiet:
        test_txt = "n/a" if metrics["test_accuracy"] is None else f"{metrics['test_accuracy']:.4f}"
        print(f"Done in {train_seconds:.1f}s: val_accuracy {metrics['val_accuracy']:.4f}, "
              f"test_accuracy {test_txt}; run saved to {run_dir}", flush=True)
    return RunResult(run_dir, metrics)

"""The trainer: config -> data splits -> model -> compile -> fit -> evaluate -> run directory.

Training has up to two stages. ``head``: the model as built; for a spec with a frozen backbone the
head trains on cached backbone features (:mod:`catdog_zoo.features`), otherwise the whole model
trains on images. ``fine_tune`` (``fine_tune_epochs > 0``): the backbone's top layers are unfrozen
and the whole model trains on images at a low learning rate, BatchNorm kept in inference mode.
"""

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
    import keras

    spec = get_zoo().models.get(model)
    cfg = resolve_config(spec, config_file, **overrides)
    if cfg.weights is not None:
        if spec.pretrained is None:
            raise ConfigError(f"model '{spec.name}' has no pretrained weights; --weights does not apply to it")
        if not Path(cfg.weights).is_file():
            raise ConfigError(f"weights file not found: {cfg.weights}")
    if cfg.fine_tune_epochs and not spec.frozen_backbone:
        raise ConfigError(f"model '{spec.name}' declares no frozen backbone; --fine-tune-epochs does not apply")
    splits = load_splits(cfg)
    keras.utils.set_random_seed(cfg.seed)
    net = spec.build(len(splits.class_names), cfg.image_size,
                     weights=cfg.weights if cfg.weights is not None else "default")
    fine_tune_from = _fine_tune_index(net, spec, cfg) if cfg.fine_tune_epochs else None
    run_dir = rundir.create_run_dir(spec.name, cfg.run_dir, runs_root)
    cfg.run_dir = str(run_dir)
    rundir.write_yaml(run_dir / rundir.CONFIG_FILE, cfg.to_dict())
    return _fit_and_record(spec, cfg, net, splits, run_dir, quiet, fine_tune_from)


def _fine_tune_index(net, spec, cfg: TrainConfig) -> int:
    backbone = net.get_layer(spec.frozen_backbone)
    names = [layer.name for layer in backbone.layers]
    at = cfg.fine_tune_at
    if isinstance(at, str):
        if at not in names:
            raise ConfigError(f"fine_tune_at: no layer '{at}' in {spec.name}'s backbone")
        return names.index(at)
    if at >= len(names):
        raise ConfigError(f"fine_tune_at must be < {len(names)} (layers in {spec.name}'s backbone), got {at}")
    return at


class _History:
    """Per-epoch metrics of both stages, with a ``stage`` column."""

    def __init__(self):
        self.columns: dict = {}

    def add(self, stage: str, history: dict) -> None:
        n = len(next(iter(history.values()), []))
        before = len(self.columns.get("stage", []))
        for key, values in {"stage": [stage] * n, **history}.items():
            column = self.columns.setdefault(key, [None] * before)
            column.extend(float(v) if key != "stage" else v for v in values)


def _fit_and_record(spec, cfg: TrainConfig, net, splits: DataSplits, run_dir: Path, quiet: bool,
                    fine_tune_from) -> RunResult:
    from .pipeline import make_dataset

    def say(text):
        if not quiet:
            print(text, flush=True)

    compile_model(net, cfg.optimizer, cfg.learning_rate)
    verbose = keras_verbosity(quiet)
    say(f"Training {spec.name} on {splits.root}: {len(splits.train)} train, {len(splits.validation)} "
        f"validation, {len(splits.test)} test images, classes {', '.join(splits.class_names)}")
    started = time.perf_counter()
    history, stages = _History(), {}
    cached = _train_head_on_features(spec, cfg, net, splits, verbose, say) if cfg.feature_cache else None
    if cached is None:
        train_ds = make_dataset(splits.train, cfg.image_size, cfg.batch_size, shuffle=True, seed=cfg.seed)
        val_ds = make_dataset(splits.validation, cfg.image_size, cfg.batch_size)
        # shuffle=False: the dataset reshuffles itself, seeded; Keras would only warn it ignores the flag.
        fitted = net.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, verbose=verbose, shuffle=False)
        head_history, evaluate = fitted.history, None
    else:
        head_history, evaluate, cache_report = cached
    stages["head"] = {"epochs": cfg.epochs, "seconds": round(time.perf_counter() - started, 2),
                      "val_accuracy": head_history["val_accuracy"][-1], "feature_cache": cached is not None}
    history.add("head", head_history)

    if fine_tune_from is not None:
        stage_started = time.perf_counter()
        say(f"Fine-tuning {spec.frozen_backbone} from layer {fine_tune_from} for {cfg.fine_tune_epochs} epochs "
            f"at learning rate {cfg.fine_tune_learning_rate:g}")
        backbone = net.get_layer(spec.frozen_backbone)
        backbone.trainable = True
        for layer in backbone.layers[:fine_tune_from]:
            layer.trainable = False
        compile_model(net, cfg.optimizer, cfg.fine_tune_learning_rate)
        train_ds = make_dataset(splits.train, cfg.image_size, cfg.batch_size, shuffle=True, seed=cfg.seed + 1)
        val_ds = make_dataset(splits.validation, cfg.image_size, cfg.batch_size)
        fitted = net.fit(train_ds, validation_data=val_ds, initial_epoch=cfg.epochs,
                         epochs=cfg.epochs + cfg.fine_tune_epochs, verbose=verbose, shuffle=False)
        history.add("fine_tune", fitted.history)
        evaluate = None  # the backbone changed: cached features no longer describe the model
        stages["fine_tune"] = {"epochs": cfg.fine_tune_epochs, "from_layer": fine_tune_from,
                               "seconds": round(time.perf_counter() - stage_started, 2),
                               "val_accuracy": fitted.history["val_accuracy"][-1]}
    train_seconds = time.perf_counter() - started
    rundir.write_history(run_dir / rundir.HISTORY_FILE, history.columns)

    if evaluate is None:
        def evaluate(split):
            return net.evaluate(make_dataset(split, cfg.image_size, cfg.batch_size), verbose=0, return_dict=True)
    val = evaluate(splits.validation)
    test = evaluate(splits.test) if len(splits.test) else {"accuracy": None, "loss": None}
    rundir.save_model(net, run_dir / rundir.MODEL_FILE)
    last = {k: v[-1] for k, v in history.columns.items()}
    metrics = {
        "model": spec.name,
        "plugin": spec.plugin,
        "distribution": spec.distribution,
        "plugin_version": spec.version,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "fine_tune_epochs": cfg.fine_tune_epochs,
        "train_accuracy": last["accuracy"],
        "train_loss": last["loss"],
        "val_accuracy": float(val["accuracy"]),
        "val_loss": float(val["loss"]),
        "test_accuracy": None if test["accuracy"] is None else float(test["accuracy"]),
        "test_loss": None if test["loss"] is None else float(test["loss"]),
        "train_seconds": round(train_seconds, 2),
        "stages": stages,
        "feature_cache": cache_report.as_dict() if cached is not None else {"used": False},
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
    test_txt = "n/a" if metrics["test_accuracy"] is None else f"{metrics['test_accuracy']:.4f}"
    say(f"Done in {train_seconds:.1f}s: val_accuracy {metrics['val_accuracy']:.4f}, "
        f"test_accuracy {test_txt}; run saved to {run_dir}")
    return RunResult(run_dir, metrics)


def _train_head_on_features(spec, cfg: TrainConfig, net, splits: DataSplits, verbose: int, say):
    """Head stage on cached features; ``(history, evaluate, cache report)`` or None to train normally."""
    if not spec.frozen_backbone:
        return None
    import numpy as np

    from . import cache
    from .features import FeatureStore, ViewSampler, split_frozen
    from .pipeline import decode_split

    chain = split_frozen(net, spec.frozen_backbone)
    if chain is None:
        say(f"Note: {spec.name}'s layers around '{spec.frozen_backbone}' are not a simple chain; "
            "training end to end without the feature cache")
        return None
    store = FeatureStore(chain, spec.qualified_name, cfg.image_size, cfg.seed)

    def features(split, views=None):
        images = decode_split(split, cfg.image_size)
        digest = cache.files_digest(split.paths)
        return store.augmented(images, digest, views) if views else store.plain(images, digest)[None]

    say(f"Features of the frozen '{spec.frozen_backbone}': {cfg.aug_views or 1} view(s) of each training image, "
        f"one of each validation/test image (cache: {cache.cache_root()})")
    train_views = features(splits.train, cfg.aug_views)
    val_x = features(splits.validation)[0]
    report = store.report.as_dict()
    say(f"Features ready: {report['hits']} cached, {report['misses']} computed "
        f"({report['images_extracted']} images in {report['extract_seconds']}s)")
    head = chain.head_model(train_views.shape[-1])
    compile_model(head, cfg.optimizer, cfg.learning_rate)
    val_y = np.asarray(splits.validation.labels, np.int32)
    sampler = ViewSampler(train_views, np.asarray(splits.train.labels, np.int32), cfg.batch_size, cfg.seed)
    fitted = head.fit(sampler, validation_data=(val_x, val_y), batch_size=cfg.batch_size, epochs=cfg.epochs,
                      verbose=verbose)

    def evaluate(split):
        x = val_x if split is splits.validation else features(split)[0]
        return head.evaluate(x, np.asarray(split.labels, np.int32), batch_size=cfg.batch_size, verbose=0,
                             return_dict=True)
    return fitted.history, evaluate, store.report

"""The trainer: config -> data splits -> decoded images -> model -> fit -> evaluate -> run directory.

Training has up to two stages. ``head``: the model as built; for a spec with a frozen backbone the
head trains on cached backbone features (:mod:`catdog_zoo.features`), otherwise the whole model
trains on images. ``fine_tune`` (``fine_tune_epochs > 0``): the backbone's top layers are unfrozen
and the whole model trains on images at a low learning rate, BatchNorm kept in inference mode.

Every epoch ends with a checkpoint (:mod:`catdog_zoo.checkpoints`); ``resume`` continues a run
that was stopped. Data order and random layers are seeded per ``(seed, epoch)``, so a resumed run
repeats exactly what the interrupted one would have done.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checkpoints, rundir
from .config import TrainConfig, resolve_config
from .distribute import Cluster, make_cluster, scaled_learning_rate
from .errors import ConfigError, ZooError
from .plugins import get_zoo
from .progress import SILENT, progress_factory
from .sources import resolve_data
from .splits import DataSplits, make_splits

SPLITS = ("train", "validation", "test")


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


def weights_digest(model) -> str:
    """sha256 of every weight's bytes: equal digests mean bit-identical models (e.g. across workers)."""
    from .cache import arrays_digest
    return arrays_digest(model.get_weights())


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


def decode_splits(splits: DataSplits, image_size, strict: bool, warn, progress=SILENT) -> dict:
    """Every split decoded once; unusable files and empty class folders warned about, or errors if strict."""
    from .pipeline import decode_split, describe_skipped

    decoded = {name: decode_split(splits.get(name), image_size, progress, f"decoding {name}") for name in SPLITS}
    skipped = [item for name in SPLITS for item in decoded[name].skipped]
    problems = []
    if skipped:
        problems.append(describe_skipped(skipped))
    if splits.empty_classes:
        problems.append(f"left out {len(splits.empty_classes)} class folder(s) without images: "
                        f"{', '.join(splits.empty_classes[:3])}")
    if problems and strict:
        raise ZooError("--strict: " + "; ".join(problems))
    for problem in problems:
        warn(f"Warning: {problem}")
    empty = [c for i, c in enumerate(splits.class_names) if i not in set(decoded["train"].split.labels)]
    if empty:
        raise ZooError(f"class '{empty[0]}' has no usable training images in {splits.root}")
    return decoded


def _say(quiet: bool):
    def say(text):
        if not quiet:
            print(text, flush=True)
    return say


def _warn(text):
    print(text, file=sys.stderr, flush=True)


def train(model: str, *, config_file=None, quiet: bool = False, runs_root="runs", overwrite: bool = False,
          **overrides) -> RunResult:
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
    if cfg.tensorboard:
        _require_tensorboard()
    cluster = make_cluster(cfg.strategy, cfg.devices)  # first: multi_worker must precede other TF work
    if cluster.is_chief:
        rundir.check_run_dir(cfg.run_dir, overwrite)
    splits = load_splits(cfg)
    decoded = decode_splits(splits, cfg.image_size, cfg.strict, _warn, progress_factory(quiet))
    keras.utils.set_random_seed(cfg.seed)
    with cluster.scope():
        net = spec.build(len(splits.class_names), cfg.image_size,
                         weights=cfg.weights if cfg.weights is not None else "default")
    fine_tune_from = _fine_tune_index(net, spec, cfg) if cfg.fine_tune_epochs else None
    if cluster.is_chief:
        run_dir = rundir.create_run_dir(spec.name, cfg.run_dir, runs_root, overwrite)
        cfg.run_dir = str(run_dir)
    else:
        run_dir = _scratch_run_dir(cluster)
    rundir.write_yaml(run_dir / rundir.CONFIG_FILE, cfg.to_dict())
    return _Session(spec, cfg, net, splits, decoded, run_dir, quiet, fine_tune_from, cluster).run()


def _scratch_run_dir(cluster) -> Path:
    """Where a non-chief worker writes: a temporary folder, removed when its part is done."""
    import tempfile
    return Path(tempfile.mkdtemp(prefix=f"catdog-zoo-worker{cluster.worker_index}-"))


def resume(run_dir, *, quiet: bool = False) -> RunResult:
    """Continue a stopped run from its last checkpoint (or from the start if it has none)."""
    import keras

    run_dir = Path(run_dir)
    config_path = run_dir / rundir.CONFIG_FILE
    if not config_path.is_file():
        raise ZooError(f"{run_dir} is not a run directory (no {rundir.CONFIG_FILE})")
    if (run_dir / rundir.METRICS_FILE).is_file():
        raise ZooError(f"{run_dir} is a finished run; nothing to resume")
    import yaml
    spec = get_zoo().models.get(str(yaml.safe_load(config_path.read_text()).get("model")))
    cfg = resolve_config(spec, config_path)
    cfg.run_dir = str(run_dir)
    cluster = make_cluster(cfg.strategy, cfg.devices)
    splits = load_splits(cfg)
    decoded = decode_splits(splits, cfg.image_size, cfg.strict, _warn, progress_factory(quiet))
    latest = checkpoints.latest(run_dir)
    keras.utils.set_random_seed(cfg.seed)
    # From a checkpoint every weight is restored, so nothing needs downloading.
    weights = None if latest and spec.pretrained else (cfg.weights if cfg.weights is not None else "default")
    with cluster.scope():
        net = spec.build(len(splits.class_names), cfg.image_size, weights=weights)
    fine_tune_from = _fine_tune_index(net, spec, cfg) if cfg.fine_tune_epochs else None
    if latest:
        checkpoints.restore_weights(net, latest)
    say = _say(quiet)
    state = checkpoints.load_state(latest) if latest else None
    say(f"Resuming {run_dir} " + (f"after epoch {state['epoch']} ({state['stage']} stage)" if state
                                   else "from the start (no checkpoint yet)"))
    if not cluster.is_chief:  # reads the chief's checkpoint (shared storage), writes elsewhere
        run_dir = _scratch_run_dir(cluster)
    return _Session(spec, cfg, net, splits, decoded, run_dir, quiet, fine_tune_from, cluster).run(state, latest)


def _require_tensorboard() -> None:
    import importlib.util
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install 'catdog-zoo[tensorboard]'")


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


def unfreeze_top(backbone, first: int) -> None:
    """Make backbone layers from index ``first`` on trainable, BatchNormalization excepted.

    Keras 3 runs a BatchNormalization layer in training mode (batch statistics, moving averages
    updated) whenever it is trainable, even inside a backbone that was called with training=False;
    only ``trainable=False`` keeps its ImageNet statistics, as the fine-tuning recipe requires.
    """
    import keras

    backbone.trainable = True
    for index, layer in enumerate(backbone.layers):
        layer.trainable = index >= first and not isinstance(layer, keras.layers.BatchNormalization)


class _Scorer:
    """Scores a split with ``model`` fed by ``inputs(split_name)``: the full model on images, or the
    cached-feature head on features (the same numbers, without running the backbone again)."""

    def __init__(self, model, inputs):
        self.model, self.inputs = model, inputs

    def evaluate(self, name) -> dict:
        return self.model.evaluate(self.inputs(name), verbose=0, return_dict=True)

    def probabilities(self, name):
        from .inference import probabilities
        return probabilities(self.model.predict(self.inputs(name), verbose=0))


class _Session:
    """One process's share of a run: the stages still to do, checkpointing after every epoch."""

    def __init__(self, spec, cfg: TrainConfig, net, splits, decoded, run_dir: Path, quiet: bool, fine_tune_from,
                 cluster: Cluster = None):
        self.spec, self.cfg, self.net, self.splits, self.decoded = spec, cfg, net, splits, decoded
        self.run_dir, self.quiet, self.fine_tune_from = run_dir, quiet, fine_tune_from
        self.cluster = cluster or Cluster("one_device")
        if not self.cluster.is_chief:
            quiet = True  # one voice per run: the chief's
        self._summaries = {}
        self.say, self.verbose = _say(quiet), keras_verbosity(quiet)
        self.progress = progress_factory(quiet)
        self.history: dict = {}
        self.stages: dict = {}
        self.cache_report = None

    # -- stages ---------------------------------------------------------------------------
    def run(self, state=None, checkpoint=None) -> RunResult:
        cfg = self.cfg
        if state:
            self.history, self.stages = state["history"], state["stages"]
        seconds_before = state["seconds"] if state else 0.0
        self.started = time.perf_counter() - seconds_before
        stage, done = (state["stage"], state["epoch"]) if state else ("head", 0)
        self.say(f"Training {self.spec.name} on {self.splits.root}: {len(self.decoded['train'].split)} train, "
                 f"{len(self.decoded['validation'].split)} validation, {len(self.decoded['test'].split)} test "
                 f"images, classes {', '.join(self.splits.class_names)}")
        scorer = None
        if stage == "head":
            scorer = self._head_stage(done, checkpoint if done else None)
        if self.fine_tune_from is not None:
            ft_done = done - cfg.epochs if stage == "fine_tune" else 0
            self._fine_tune_stage(ft_done, checkpoint if stage == "fine_tune" else None)
            scorer = None  # the backbone changed: cached features no longer describe the model
        return self._finish(scorer)

    def _head_stage(self, done: int, checkpoint):
        cfg = self.cfg
        self._compile(self.net, cfg.learning_rate)
        stage_started = time.perf_counter()
        cached = self._head_on_features(done, checkpoint) if cfg.feature_cache and self.spec.frozen_backbone else None
        if cached is None:
            self._fit(self.net, "head", done, cfg.epochs, self._images("train", shuffle=True, first_epoch=done),
                      self._images("validation"), checkpoint)
        self.stages["head"] = {"epochs": cfg.epochs, "feature_cache": cached is not None,
                               "seconds": round(self.stages.get("head", {}).get("seconds", 0)
                                                + time.perf_counter() - stage_started, 2),
                               "val_accuracy": self.history["val_accuracy"][cfg.epochs - 1]}
        return cached

    def _fine_tune_stage(self, done: int, checkpoint) -> None:
        cfg = self.cfg
        stage_started = time.perf_counter()
        self.say(f"Fine-tuning {self.spec.frozen_backbone} from layer {self.fine_tune_from} for "
                 f"{cfg.fine_tune_epochs} epochs at learning rate {cfg.fine_tune_learning_rate:g}")
        unfreeze_top(self.net.get_layer(self.spec.frozen_backbone), self.fine_tune_from)
        self._compile(self.net, cfg.fine_tune_learning_rate)
        start = cfg.epochs + done
        self._fit(self.net, "fine_tune", start, cfg.epochs + cfg.fine_tune_epochs,
                  self._images("train", shuffle=True, first_epoch=start), self._images("validation"), checkpoint)
        self.stages["fine_tune"] = {"epochs": cfg.fine_tune_epochs, "from_layer": self.fine_tune_from,
                                    "seconds": round(self.stages.get("fine_tune", {}).get("seconds", 0)
                                                     + time.perf_counter() - stage_started, 2),
                                    "val_accuracy": self.history["val_accuracy"][-1]}

    def _head_on_features(self, done: int, checkpoint):
        """Head stage on cached features; a :class:`_Scorer` of the head on features, or None to train on images."""
        import numpy as np

        from . import cache
        from .features import FeatureStore, split_frozen
        from .pipeline import EpochBatches

        cfg = self.cfg
        chain = split_frozen(self.net, self.spec.frozen_backbone)
        if chain is None:
            self.say(f"Note: {self.spec.name}'s layers around '{self.spec.frozen_backbone}' are not a simple "
                     "chain; training end to end without the feature cache")
            return None
        store = FeatureStore(chain, self.spec.qualified_name, cfg.image_size, cfg.seed, self.progress)
        self.say(f"Features of the frozen '{self.spec.frozen_backbone}': {cfg.aug_views or 1} view(s) of each "
                 f"training image, one of each validation/test image (cache: {cache.cache_root()})")
        train = self.decoded["train"]
        views = (store.augmented(train.images, train.digest, cfg.aug_views) if cfg.aug_views
                 else store.plain(train.images, train.digest)[None])
        plain = {name: store.plain(self.decoded[name].images, self.decoded[name].digest, f"features of {name}")
                 for name in ("validation", "test")}
        self.cache_report = store.report
        r = store.report.as_dict()
        self.say(f"Features ready: {r['hits']} cached, {r['misses']} computed "
                 f"({r['images_extracted']} images in {r['extract_seconds']}s)")
        with self.cluster.scope():
            head = chain.head_model(views.shape[-1])
        self._compile(head, cfg.learning_rate)

        def labels(name):
            return np.asarray(self.decoded[name].split.labels, np.int32)
        train_batches = EpochBatches(views, labels("train"), cfg.batch_size, shuffle=True, seed=cfg.seed,
                                     first_epoch=done)
        val_batches = EpochBatches(plain["validation"][None], labels("validation"), cfg.batch_size)
        self._fit(head, "head", done, cfg.epochs, train_batches, val_batches, checkpoint)

        def scores(name):
            return EpochBatches(plain[name][None], labels(name), cfg.batch_size)
        return _Scorer(head, scores)

    # -- mechanics ------------------------------------------------------------------------
    def _compile(self, model, learning_rate: float):
        with self.cluster.scope():  # the optimizer's variables are mirrored too
            compile_model(model, self.cfg.optimizer,
                          scaled_learning_rate(learning_rate, self.cluster, self.cfg.scale_learning_rate))

    def _images(self, name, shuffle=False, first_epoch=0):
        from .pipeline import batches
        return batches(self.decoded[name], self.cfg.batch_size, shuffle=shuffle, seed=self.cfg.seed,
                       first_epoch=first_epoch)

    def _fit(self, model, stage: str, first_epoch: int, last_epoch: int, train, validation, checkpoint) -> None:
        """Fit ``model`` for epochs ``first_epoch..last_epoch`` (0-based, end excluded), checkpointing each."""
        import keras

        if first_epoch >= last_epoch:
            return
        if checkpoint is not None:
            with self.cluster.scope():
                checkpoints.restore_optimizer(model.optimizer, model.trainable_variables, checkpoint)
        if self.cluster.distributed:
            return self._fit_replicated(model, stage, first_epoch, last_epoch, train, validation)
        session = self

        class EpochEnd(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                session._epoch_begin(epoch)

            def on_epoch_end(self, epoch, logs=None):
                session._epoch_end(stage, epoch, model, logs or {})

        # shuffle=False: EpochBatches already orders each epoch by (seed, epoch); Keras would otherwise
        # reorder its batches with Python's global random state, which a resumed run does not share.
        model.fit(train, validation_data=validation, initial_epoch=first_epoch, epochs=last_epoch, shuffle=False,
                  verbose=self.verbose, callbacks=[EpochEnd(), *self._tensorboard(stage)])

    def _fit_replicated(self, model, stage, first_epoch, last_epoch, train, validation) -> None:
        """``model.fit``'s job under a tf.distribute strategy, through :class:`ReplicatedLoop`."""
        from .distribute import ReplicatedLoop

        loop = ReplicatedLoop(self.cluster, model, self.cfg.batch_size * self.cluster.replicas)
        for epoch in range(first_epoch, last_epoch):
            started = time.perf_counter()
            self._epoch_begin(epoch)
            logs = loop.train_epoch(train)
            logs.update({f"val_{k}": v for k, v in loop.evaluate(validation).items()})
            self.say(f"Epoch {epoch + 1}/{last_epoch} - {time.perf_counter() - started:.1f}s - "
                     + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
            self._epoch_end(stage, epoch, model, logs)

    def _epoch_begin(self, epoch: int) -> None:
        from .features import reseed
        # Dropout and augmentation draws depend on (seed, epoch) only, so a resumed epoch repeats them.
        reseed(self.net.layers, self.cfg.seed * 100_003 + epoch * 1_009)

    def _epoch_end(self, stage: str, epoch: int, model, logs: dict) -> None:
        self._record(stage, logs)
        if self.cluster.distributed and self.cfg.tensorboard and self.cluster.is_chief:
            self._summary(stage, epoch, logs)
        checkpoints.save(self.run_dir, epoch + 1, self.net, model.optimizer,
                         {"stage": stage, "history": self.history, "stages": self.stages,
                          "seconds": time.perf_counter() - self.started})

    def _summary(self, stage: str, epoch: int, logs: dict) -> None:
        """TensorBoard scalars for the replicated loop, laid out as Keras' TensorBoard callback does."""
        import tensorflow as tf
        for split in ("train", "validation"):
            key = (stage, split)
            if key not in self._summaries:
                self._summaries[key] = tf.summary.create_file_writer(
                    str(self.run_dir / rundir.TENSORBOARD_DIR / stage / split))
            with self._summaries[key].as_default():
                for name, value in logs.items():
                    if name.startswith("val_") == (split == "validation"):
                        tf.summary.scalar(f"epoch_{name.removeprefix('val_')}", value, step=epoch)
            self._summaries[key].flush()

    def _tensorboard(self, stage: str) -> list:
        if not self.cfg.tensorboard:
            return []
        import keras
        # One log folder per stage: the fine-tuning stage is a different model.fit with other weights.
        return [keras.callbacks.TensorBoard(log_dir=str(self.run_dir / rundir.TENSORBOARD_DIR / stage))]

    def _single_copy(self):
        """The trained weights in a model built outside the strategy, for the chief's single-process finish."""
        copy = self.spec.build(len(self.splits.class_names), self.cfg.image_size, weights=None)
        if self.fine_tune_from is not None:
            unfreeze_top(copy.get_layer(self.spec.frozen_backbone), self.fine_tune_from)
        copy.set_weights([np.asarray(w) for w in self.net.get_weights()])
        compile_model(copy, self.cfg.optimizer, self.cfg.learning_rate)
        return copy

    def _leave(self) -> RunResult:
        """A non-chief worker's end: say which weights it holds, then remove its scratch folder."""
        import shutil
        digest = weights_digest(self.net)
        print(f"Worker {self.cluster.worker_index} of {self.cluster.workers} done: weights sha256 {digest}",
              flush=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.cluster.barrier()  # the chief meets us there once its run directory is complete
        return RunResult(None, {"worker_index": self.cluster.worker_index, "weights_sha256": digest})

    def _report(self, metrics: dict, scorer: _Scorer, split: str):
        """Figures and report.html; a plotting failure is a warning, never the loss of a trained run."""
        from .report import write_run_report

        decoded = self.decoded[split]
        try:
            return write_run_report(self.run_dir, self.cfg.to_dict(), metrics, self.history, {
                "split": split, "images": decoded.images, "labels": decoded.split.labels,
                "probs": scorer.probabilities(split), "paths": decoded.split.paths})
        except Exception as exc:  # noqa: BLE001 - the model and metrics matter more than the pictures
            _warn(f"Warning: could not write the run report: {type(exc).__name__}: {exc}")
            return None

    def _record(self, stage: str, logs: dict) -> None:
        n = len(self.history.get("stage", []))
        row = {"stage": stage, **{k: float(v) for k, v in logs.items()}}
        for key, value in row.items():
            self.history.setdefault(key, [None] * n).append(value)

    def _finish(self, scorer) -> RunResult:
        train_seconds = time.perf_counter() - self.started
        if self.cluster.distributed:
            if not self.cluster.is_chief:
                return self._leave()
            self.net, scorer = self._single_copy(), None  # evaluate, report and save as one process does
        cfg, net = self.cfg, self.net
        rundir.write_history(self.run_dir / rundir.HISTORY_FILE, self.history)
        if scorer is None:
            scorer = _Scorer(net, self._images)
        val = scorer.evaluate("validation")
        has_test = len(self.decoded["test"].split) > 0
        test = scorer.evaluate("test") if has_test else {"accuracy": None, "loss": None}
        rundir.save_model(net, self.run_dir / rundir.MODEL_FILE)
        last = {k: v[-1] for k, v in self.history.items()}
        metrics = {
            "model": self.spec.name,
            "plugin": self.spec.plugin,
            "distribution": self.spec.distribution,
            "plugin_version": self.spec.version,
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
            "stages": self.stages,
            "feature_cache": self.cache_report.as_dict() if self.cache_report else {"used": False},
            "num_params": int(net.count_params()),
            "trainable_params": int(sum(int(w.numpy().size) for w in net.trainable_weights)),
            "num_classes": len(self.splits.class_names),
            "class_names": list(self.splits.class_names),
            "image_size": list(cfg.image_size),
            "data_root": self.splits.root,
            "split_sizes": {name: len(self.decoded[name].split) for name in SPLITS},
            "skipped_files": sum(len(self.decoded[name].skipped) for name in SPLITS),
            "versions": versions(),
            "strategy": {**self.cluster.describe(), "global_batch_size": cfg.batch_size * self.cluster.replicas,
                             "learning_rate": scaled_learning_rate(cfg.learning_rate, self.cluster,
                                                                   cfg.scale_learning_rate),
                             "weights_sha256": weights_digest(net)},
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        metrics["confusion_matrix"] = self._report(metrics, scorer, "test" if has_test else "validation")
        rundir.write_json(self.run_dir / rundir.METRICS_FILE, metrics)  # last: marks the run finished
        checkpoints.remove(self.run_dir)
        test_txt = "n/a" if metrics["test_accuracy"] is None else f"{metrics['test_accuracy']:.4f}"
        self.cluster.barrier()
        self.say(f"Done in {train_seconds:.1f}s: val_accuracy {metrics['val_accuracy']:.4f}, "
                 f"test_accuracy {test_txt}; run saved to {self.run_dir}")
        return RunResult(self.run_dir, metrics)

"""Setting a run up, new (:func:`train`) or resumed (:func:`resume`), through one shared sequence.

The order matters: the distribution strategy first (a multi-worker strategy must precede any other
TensorFlow work), then the data (decoded once), then the global seed, then the model.
"""

from __future__ import annotations

import contextlib
import inspect
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from ..config import KEYS, SPLITS, TrainConfig, resolve_config
from ..data.prepare import decode_splits, load_splits
from ..data.splits import check_labels, small_splits_warning
from ..errors import Interrupted, ZooError
from ..plugins import get_zoo
from ..registry import DEFAULT_WEIGHTS, configured_weights
from ..reports.notebook import RunResult
from ..runs.confine import check_output, check_run_confined
from ..runs.layout import (CONFIG_FILE, METRICS_FILE, check_run_dir, check_runs_root, create_run_dir,
                           remove_run_leftovers)
from ..runs.portable import absolute, recorded_config
from ..runs.record import read_run_config
from ..util.files import write_yaml
from ..util.keras_cache import watched_downloads
from ..util.locks import folder_lock
from ..util.names import terminal
from ..util.progress import progress_factory
from . import checkpoints
from .distribute import make_cluster
from .plan import check_same, plan
from .resolve import resolve_run
from .runner import Runner, Setup, say_to, warn
from .trackers import Trackers


def train(model: str, *, config_file=None, quiet: bool = False, runs_root="runs", overwrite: bool = False,
          **options) -> RunResult:
    """Train the registered ``model``, evaluate it, and write its run directory (``catdog-zoo train``).

    ``options`` are config keys (listed below, and by ``catdog-zoo train --help``); ``config_file`` a
    YAML file of them (options win). Returns a :class:`~catdog_zoo.RunResult`.
    """
    spec, cfg = resolve_run(model, config_file, **options)
    return train_resolved(spec, cfg, quiet=quiet, runs_root=runs_root, overwrite=overwrite)


def train_resolved(spec, cfg: TrainConfig, *, quiet: bool = False, runs_root="runs",
                   overwrite: bool = False) -> RunResult:
    """Train ``spec`` with ``cfg``, both as :func:`.resolve.resolve_run` made them (the CLI resolves before
    TensorFlow loads, then calls this)."""
    absolute(cfg)  # recorded so, the run means the same from any directory or machine (runs/portable.py)
    data = Path(cfg.data).expanduser() if cfg.data and Path(cfg.data).expanduser().is_dir() else None
    check_output(cfg.run_dir or runs_root, flag="--run-dir" if cfg.run_dir else "runs folder", folder=True,
                 reads=[data], own_run=cfg.run_dir)  # never inside the data, nor inside another run
    cluster = make_cluster(cfg.strategy, cfg.devices)  # first: multi_worker must precede other TF work
    splits = load_splits(cfg)
    cfg.test_fraction = splits.test_fraction  # the data's default, when not given: recorded as the number used
    check_labels(splits)  # a class name labels.txt cannot hold is refused before any run folder exists
    with contextlib.ExitStack() as held:
        def take_run_dir():
            check_run_dir(cfg.run_dir, overwrite)  # before the lock: a refusal leaves no folder behind
            held.enter_context(folder_lock(cfg.run_dir))
            check_run_dir(cfg.run_dir, overwrite)  # again: another process may have finished a run there
        _as_chief(cluster, take_run_dir if cfg.run_dir else lambda: check_runs_root(runs_root))
        weights = configured_weights(cfg.weights)
        built = _build(spec, cfg, cluster, quiet, weights, early=True, splits=splits)
        small = small_splits_warning(built.splits, {name: len(built.decoded[name].split) for name in SPLITS})
        if small and cluster.is_chief:  # said before training, while stopping costs nothing; report.html says it too
            warn(f"Warning: {small}")
        if cluster.is_chief:
            run_dir = create_run_dir(spec.name, cfg.run_dir, runs_root, overwrite)
            if not cfg.run_dir:  # a new folder of its own name: locked as soon as it exists
                held.enter_context(folder_lock(run_dir))
            cfg.run_dir = str(run_dir)
        else:
            run_dir = _scratch_run_dir(cluster)
        write_yaml(run_dir / CONFIG_FILE, recorded_config(cfg, run_dir))
        setup = built.setup(run_dir, _trackers(spec, cfg, cluster, run_dir))
        return _run(Runner(setup), None, None, Path(cfg.run_dir) if cluster.is_chief else None)


def resume(run_dir, *, quiet: bool = False, data=None, weights=None) -> RunResult:
    """Continue a stopped run from its last checkpoint (or from the start if it has none). ``data``, ``weights``:
    where the run's data folder and weights file are now, when not where its ``config.yaml`` records them (the
    run was copied from another machine); recorded there from then on."""
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ZooError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    if (run_dir / METRICS_FILE).is_file():
        raise ZooError(f"{run_dir} is a finished run; nothing to resume")
    saved = read_run_config(config_path)
    spec = get_zoo().model(str(saved.get("model") if isinstance(saved, dict) else None))
    cfg = resolve_config(spec, config_path, "recorded in", data=data, weights=weights)
    absolute(cfg)
    cfg.run_dir = str(run_dir)
    cluster = make_cluster(cfg.strategy, cfg.devices)
    with contextlib.ExitStack() as held:
        def take_run_dir():
            held.enter_context(folder_lock(run_dir))
            if (run_dir / METRICS_FILE).is_file():  # finished by another process since the check above
                raise ZooError(f"{run_dir} is a finished run; nothing to resume")
            remove_run_leftovers(run_dir)
            check_run_confined(run_dir)  # its checkpoints/ must not lead elsewhere: they are written and deleted
            if data is not None or weights is not None:  # where they are now, for evaluate, export and resume
                write_yaml(config_path, recorded_config(cfg, run_dir))
        _as_chief(cluster, take_run_dir)
        return _resume_locked(spec, cfg, cluster, run_dir, quiet)


def _as_chief(cluster, step) -> None:
    """Run ``step`` (taking the run folder) on the chief; a refusal there stops every worker, not only the
    chief (the others would wait for it in their first collective)."""
    refusal = None
    if cluster.is_chief and step is not None:
        try:
            step()
        except ZooError as exc:
            refusal = exc
    if not cluster.all_agree(refusal is None):
        raise refusal or ZooError("the chief worker refused this run (its output says why)")


def _resume_locked(spec, cfg, cluster, run_dir: Path, quiet: bool) -> RunResult:
    # From a checkpoint every weight is restored, so nothing needs downloading.
    any_checkpoint = checkpoints.latest(run_dir) is not None
    weights = None if any_checkpoint and spec.pretrained else configured_weights(cfg.weights)
    built = _build(spec, cfg, cluster, quiet, weights)
    latest, state = checkpoints.restore_latest_usable(run_dir, built.net, warn)
    if not latest and any_checkpoint and spec.pretrained and weights is None:  # all damaged: start over
        built = _build(spec, cfg, cluster, quiet, configured_weights(cfg.weights))
    if state:  # the plan is the one the run was trained with, or the run is refused
        check_same(built.stages, state.get("plan"), run_dir)
    say_to(quiet)(f"Resuming {terminal(run_dir)} " + (f"after epoch {state['epoch']} ({state['stage']} stage)" if state
                                             else "from the start (no checkpoint yet)"))
    if not cluster.is_chief:  # reads the chief's checkpoint (shared storage), writes elsewhere
        run_dir = _scratch_run_dir(cluster)
    setup = built.setup(run_dir, _trackers(spec, cfg, cluster, run_dir))
    return _run(Runner(setup), state, latest, Path(cfg.run_dir) if cluster.is_chief else None)


def _trackers(spec, cfg, cluster, run_dir: Path):
    """The run's trackers, started on the chief once its folder and config.yaml exist (None: none tracked)."""
    if not (cfg.track and cluster.is_chief):
        return None
    config = recorded_config(cfg, run_dir)
    return Trackers(cfg.track, run_dir, config, {**config, "plugin": spec.plugin,
                                                 "distribution": spec.distribution}, warn)


def _run(runner: Runner, state, checkpoint, run_dir) -> RunResult:
    """Run; Ctrl-C becomes :class:`~catdog_zoo.errors.Interrupted`, which says where the run can resume. The
    trackers hear how a run that did not finish ended."""
    try:
        return runner.run(state, checkpoint)
    except BaseException as exc:
        if runner.trackers is not None:
            runner.trackers.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", {})
        if not isinstance(exc, KeyboardInterrupt) or run_dir is None:
            raise
        raise Interrupted(run_dir) from None


@dataclass
class _Built:
    """What :func:`_build` made: the model, the data, and the plan of stages (made once, here)."""

    spec: object
    cfg: TrainConfig
    cluster: object
    quiet: bool
    net: object
    splits: object
    decoded: dict
    stages: list
    decode_seconds: float

    def setup(self, run_dir: Path, trackers) -> Setup:
        return Setup(self.spec, self.cfg, self.net, self.splits, self.decoded, run_dir, self.cluster, self.quiet,
                     self.stages, self.decode_seconds, trackers)


def _build(spec, cfg: TrainConfig, cluster, quiet: bool, weights, early: bool = False, splits=None) -> _Built:
    """The model, the images decoded in a thread while the model is built from the seed, and the plan. With
    ``early`` (a new run), the first stage does what it can before the images are there
    (:meth:`~catdog_zoo.training.stages.Stage.prepare_early`).

    Pretrained weights come first: a model that would fetch them (not a local ``--weights`` file, not a
    checkpoint's) starts the decoding only once Keras has them, so that weights neither cached nor
    downloadable stop the run at once, with the file to provide, not after every image is decoded."""
    if splits is None:
        splits = load_splits(cfg)
        check_labels(splits)
    keras.utils.set_random_seed(cfg.seed)
    weights_ready = threading.Event()
    if not (spec.pretrained and weights == DEFAULT_WEIGHTS):
        weights_ready.set()
    decoding = _Background(lambda progress: decode_splits(splits, cfg.image_size, cfg.strict, warn, progress,
                                                          cfg.decoded_cache), progress_factory(quiet),
                           after=weights_ready)
    try:
        with cluster.scope(), watched_downloads(on_ready=weights_ready.set):
            net = spec.build(len(splits.class_names), cfg.image_size, weights=weights)
        weights_ready.set()  # a builder that fetched nothing through Keras: its weights are there by now
        stages = plan(spec, cfg, net)
        if early and decoding.decodes_files():  # decoding from files, not a warm cache: a core is free for this
            prepare_early = getattr(stages[0], "prepare_early", None)
            if prepare_early is not None:
                prepare_early(net, cfg, say_to(quiet or not cluster.is_chief))
    except BaseException:  # the build failed (or Ctrl-C): decoding stops too, its progress bar with it
        decoding.cancel()
        raise
    return _Built(spec, cfg, cluster, quiet, net, splits, decoding.result(), stages, decoding.seconds)


class _Background:
    """``fn(progress)`` in a daemon thread; ``result()`` waits and returns its value or raises its exception;
    ``cancel()`` stops it at its next progress step, silently, and waits for it. TensorFlow's decoders
    release the GIL, so decoding and the model's set-up share the cores. With ``after``, ``fn`` starts once
    that event is set (or never, when cancelled first)."""

    def __init__(self, fn, progress, after: threading.Event | None = None):
        self._value = self._error = None
        self.seconds = 0.0
        self._stop = threading.Event()
        self._after = after
        self._from_files = threading.Event()  # progress is asked for only by real decoding, never for the cache

        def stoppable(label: str, total: int, unit: str = "images"):
            self._from_files.set()
            bar = progress(label, total, unit)
            advance = bar.advance

            def checked(n: int = 1) -> None:
                if self._stop.is_set():
                    bar.enabled = False  # no "decoding train: 96/2000" line under the error that stopped it
                    raise _Cancelled
                advance(n)
            bar.advance = checked
            return bar

        def work():
            if after is not None:
                after.wait()
                if self._stop.is_set():
                    return
            started = time.perf_counter()
            try:
                self._value = fn(stoppable)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread as it is
                self._error = exc
            self.seconds = time.perf_counter() - started
        self._thread = threading.Thread(target=work, name="catdog-zoo-decode", daemon=True)
        self._thread.start()

    def decodes_files(self) -> bool:
        """Whether images are being decoded from their files rather than read from the cache; waits until that
        is known (decoding has begun, or everything came from the cache)."""
        while self._thread.is_alive():
            if self._from_files.wait(0.02):
                return True
        return self._from_files.is_set()

    def cancel(self, wait: float = 30.0) -> None:
        self._stop.set()
        if self._after is not None:
            self._after.set()  # a thread still waiting to start: it sees the stop and ends
        self._thread.join(wait)

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class _Cancelled(Exception):
    """Raised in the decoding thread when the main thread no longer needs its result."""


def _scratch_run_dir(cluster) -> Path:
    """Where a non-chief worker writes: a temporary folder, removed when its part is done."""
    return Path(tempfile.mkdtemp(prefix=f"catdog-zoo-worker{cluster.worker_index}-"))


def _signature_from_keys() -> inspect.Signature:
    """``train``'s real signature: the fixed parameters, then one keyword per config key (default None:
    the model's, the config file's, or the declared default, in that order)."""
    fixed = [p for p in inspect.signature(train).parameters.values() if p.kind is not p.VAR_KEYWORD]
    keys = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
            for name in KEYS if name != "model"]
    return inspect.Signature(fixed + keys, return_annotation=RunResult)


train.__signature__ = _signature_from_keys()
train.__doc__ += "\n    Config keys:\n\n" + "\n".join(
    f"    - ``{k.name}``: {k.help}" + ("" if "Default:" in k.help else f" (default: {k.default_text()})")
    for k in KEYS.values() if k.name != "model")  # a help that says its default in words is not told it again

"""``catdog-zoo zoo``: train every installed model (or those matching a pattern), then rank them.

Each model gets ``RUNS_DIR/<model>``. Stopping the sweep loses at most the epoch in progress:
run it again and finished models are kept, an unfinished one resumes from its last checkpoint,
and the rest train. A model that fails is reported and the sweep goes on with the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..config import KEYS, SPLITS, config_from_run, resolve_config
from ..data.prepare import load_splits
from ..data.sources import DEFAULT_SOURCE, data_place, resolve_data
from ..errors import ZooError
from ..plugins import get_zoo
from ..runs.layout import CONFIG_FILE, METRICS_FILE
from ..runs.record import data_fingerprint, read_run, read_run_config
from ..util.digest import files_digest
from ..util.locks import folder_lock
from ..util.names import terminal
from .session import resume, train

# The settings a sweep chooses; every other key takes the model's default.
SWEEP_KEYS = ("epochs", "data", "seed")
# Keys that say how a run is made, not what it is (where it is written, logs, caches, and the engine, whose
# float32 features are checked to match TensorFlow's); every other key must match for a run to be kept or resumed.
HOW_NOT_WHAT = ("run_dir", "strict", "tensorboard", "decoded_cache", "engine")


@dataclass
class SweepResult:
    runs: list = field(default_factory=list)  # finished run directories, in model order
    actions: dict = field(default_factory=dict)  # model -> "trained" | "resumed" | "kept"
    failures: dict = field(default_factory=dict)  # model -> one-line reason


def model_run_dir(runs_dir, spec, clashes=()) -> Path:
    """``RUNS_DIR/NAME``; ``RUNS_DIR/DIST_NAME`` when two plugins register the same name."""
    name = spec.qualified_name if spec.name in clashes else spec.name
    return Path(runs_dir) / name.replace(":", "_").replace("/", "_")


def _mismatch(run_dir: Path, spec, wanted: dict, finished: bool):
    """What the existing run was made with differently from what this sweep would make, as text, or None.

    Every key is compared, given or not: a key the sweep leaves to the model's default must have had that
    default (a run trained earlier with another learning rate is not this sweep's run). ``data`` is compared
    as the folder it names (a relative path, a trailing ``/``), and a finished run also by the model's plugin
    version and by the images themselves (its data fingerprint).
    """
    path = run_dir / CONFIG_FILE
    saved = config_from_run(read_run_config(path), str(path))
    expected = resolve_config(spec, None, **{k: v for k, v in wanted.items() if v is not None})
    if saved.model not in (spec.name, spec.qualified_name):
        return f"the model {saved.model!r}"
    for key in KEYS:
        if key in HOW_NOT_WHAT or key == "model":
            continue
        was, now = getattr(saved, key), getattr(expected, key)
        if key == "test_fraction" and now is None:  # the data's own default, which the run recorded as a number
            now = load_splits(expected).test_fraction
        if key == "data":
            same = data_place(was) == data_place(now)
        else:
            same = (tuple(was) == tuple(now)) if key == "image_size" else was == now
        if not same:
            return f"{key}={_shown(key, was)}, not {_shown(key, now)}"
    return _record_mismatch(run_dir, spec, saved) if finished else None


def _shown(key: str, value) -> str:
    if key == "data":
        return repr(value or DEFAULT_SOURCE)
    return "x".join(map(str, value)) if key == "image_size" else repr(value)


def _record_mismatch(run_dir: Path, spec, saved):
    """A finished run made by another version of the model's plugin, or on images that have changed since."""
    _, record = read_run(run_dir)
    if (record.distribution, record.plugin_version) != (spec.distribution, spec.version) and record.plugin_version:
        return (f"{record.distribution or record.plugin} {record.plugin_version}, not {spec.distribution} "
                f"{spec.version}")
    if record.data_fingerprint:
        splits = load_splits(saved)
        now = data_fingerprint(files_digest(splits.get(name).paths) for name in SPLITS)
        if now != record.data_fingerprint:
            return f"other images (the files under {resolve_data(saved.data)} changed since)"
    return None


def run_zoo(pattern=None, *, runs_dir="runs/zoo", epochs=None, data=None, seed=None, quiet=False,
            say=print) -> SweepResult:
    # Each model builds new predict functions; after five, TensorFlow warns about "retracing", which is
    # expected here and says nothing to a user.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    specs = get_zoo().models.list(pattern)
    if not specs:
        raise ZooError(f"no installed model matches '{pattern}'" if pattern else "no models installed")
    wanted = dict(zip(SWEEP_KEYS, (epochs, data, seed)))
    with folder_lock(runs_dir, what="zoo sweep folder"):  # a second sweep there would resume the same runs
        return _sweep(specs, runs_dir, wanted, quiet, say)


def _sweep(specs, runs_dir, wanted: dict, quiet: bool, say) -> SweepResult:
    result = SweepResult()
    names = [spec.name for spec in specs]
    clashes = {name for name in names if names.count(name) > 1}
    for number, spec in enumerate(specs, start=1):
        run_dir = model_run_dir(runs_dir, spec, clashes)
        started = (run_dir / CONFIG_FILE).is_file()
        finished = (run_dir / METRICS_FILE).is_file()
        try:
            differs = _mismatch(run_dir, spec, wanted, finished) if started else None
            if differs:
                raise ZooError(f"{run_dir} holds a run made with {differs}; choose another --runs-dir")
            if finished:
                action = "kept"
            elif started:
                action = "resumed"
                say(f"[{number}/{len(specs)}] {terminal(spec.name)}: resuming {terminal(run_dir)}")
                resume(run_dir, quiet=quiet)
            else:
                action = "trained"
                say(f"[{number}/{len(specs)}] {terminal(spec.name)}: training into {terminal(run_dir)}")
                train(spec.qualified_name, run_dir=str(run_dir), quiet=quiet,
                      **{k: v for k, v in wanted.items() if v is not None})
        except Exception as exc:  # noqa: BLE001 - one plugin's bug must not stop the sweep
            result.failures[spec.name] = str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}"
            say(terminal(f"[{number}/{len(specs)}] {spec.name}: failed: {result.failures[spec.name]}"))
            continue
        if action == "kept":
            say(f"[{number}/{len(specs)}] {terminal(spec.name)}: already finished in {terminal(run_dir)}; kept")
        result.actions[spec.name] = action
        result.runs.append(run_dir)
    return result

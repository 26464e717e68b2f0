"""``catdog-zoo zoo``: train every installed model (or those matching a pattern), then rank them.

Each model gets ``RUNS_DIR/<model>``. Stopping the sweep loses at most the epoch in progress:
run it again and finished models are kept, an unfinished one resumes from its last checkpoint,
and the rest train. A run there made with other settings (epochs, data, seed, weights, or another
version of the plugin) fails that model, unless ``overwrite`` replaces it. A model that fails is
reported and the sweep goes on with the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..config import KEYS, check_for_model, config_from_run, resolve_config
from ..data.prepare import load_splits
from ..data.sources import DEFAULT_SOURCE, data_place, resolve_data
from ..errors import ConfigError, ZooError
from ..plugins import get_zoo
from ..runs.layout import CONFIG_FILE, METRICS_FILE
from ..runs.portable import fingerprint
from ..runs.record import read_run, read_run_config
from ..util.locks import folder_lock
from ..util.names import terminal
from .session import resume, train

# The settings a sweep chooses; every other key takes the model's default.
SWEEP_KEYS = ("epochs", "data", "seed")
# Keys that say how a run is made, not what it is (where it is written, logs, caches, and the engine, whose
# float32 features are checked to match TensorFlow's); every other key must match for a run to be kept or resumed.
HOW_NOT_WHAT = ("run_dir", "strict", "tensorboard", "track", "decoded_cache", "engine")


@dataclass
class SweepResult:
    runs: list = field(default_factory=list)  # finished run directories, in model order
    actions: dict = field(default_factory=dict)  # model -> "trained" | "resumed" | "kept" | "replaced"
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
        elif key == "weights":  # the file, however it was spelt (a run records it absolute)
            same = (was and str(Path(was).expanduser().resolve())) == (now and str(Path(now).expanduser().resolve()))
        else:
            same = was == now  # image_size: a tuple on both sides (config.KEYS' check)
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
        if fingerprint(splits) != record.data_fingerprint:
            return f"other images (the files under {resolve_data(saved.data)} changed since)"
    return None


def run_zoo(pattern=None, *, runs_dir="runs/zoo", epochs=None, data=None, seed=None, weights=None, quiet=False,
            overwrite=False, say=print) -> SweepResult:
    """Train every model matching ``pattern`` into ``runs_dir/MODEL`` (see the module's docstring). ``weights``: a
    local weights file for the one pretrained model among them; ``overwrite``: a run there made with other
    settings is replaced, instead of failing that model."""
    # Each model builds new predict functions; after five, TensorFlow warns about "retracing", which is
    # expected here and says nothing to a user.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    specs = get_zoo().models.list(pattern)
    if not specs:
        raise ZooError(f"no installed model matches '{pattern}'" if pattern else "no models installed")
    wanted = dict(zip(SWEEP_KEYS, (epochs, data, seed)))
    if weights is not None:
        _check_weights(specs, pattern, {**wanted, "weights": weights})
    with folder_lock(runs_dir, what="zoo sweep folder"):  # a second sweep there would resume the same runs
        return _sweep(specs, runs_dir, wanted, weights, quiet, overwrite, say)


def _check_weights(specs, pattern, wanted: dict) -> None:
    """One weights file is for one pretrained model: refused, before any training, when the sweep has none or
    several (their files differ), or when the file is not there."""
    pretrained = [spec for spec in specs if spec.pretrained]
    matched = f"'{pattern}' matches" if pattern else "the installed models are"
    if not pretrained:
        raise ConfigError(f"--weights is for a pretrained model, and {matched} none")
    if len(pretrained) > 1:
        raise ConfigError(f"--weights is one file, for one pretrained model, and {matched} {len(pretrained)} "
                          f"({', '.join(terminal(s.name) for s in pretrained)}): give a PATTERN that matches one")
    check_for_model(pretrained[0], resolve_config(pretrained[0], None, **wanted), get_zoo().extensions["engines"])


def _sweep(specs, runs_dir, wanted: dict, weights, quiet: bool, overwrite: bool, say) -> SweepResult:
    result = SweepResult()
    names = [spec.name for spec in specs]
    clashes = {name for name in names if names.count(name) > 1}
    for number, spec in enumerate(specs, start=1):
        run_dir = model_run_dir(runs_dir, spec, clashes)
        started = (run_dir / CONFIG_FILE).is_file()
        finished = (run_dir / METRICS_FILE).is_file()
        given = {**wanted, "weights": weights if spec.pretrained else None}
        head = f"[{number}/{len(specs)}] {terminal(spec.name)}"
        try:
            differs = _mismatch(run_dir, spec, given, finished) if started else None
            if differs and not overwrite:
                raise ZooError(f"{run_dir} holds a run made with {differs}; choose another --runs-dir, or pass "
                               "--overwrite to replace it")
            if finished and not differs:
                action = "kept"
            elif started and not differs:
                action = "resumed"
                say(f"{head}: resuming {terminal(run_dir)}")
                resume(run_dir, quiet=quiet)
            else:
                action = "replaced" if differs else "trained"
                say(f"{head}: " + (f"replacing the run in {terminal(run_dir)} (made with {terminal(differs)})"
                                   if differs else f"training into {terminal(run_dir)}"))
                train(spec.qualified_name, run_dir=str(run_dir), quiet=quiet, overwrite=bool(differs),
                      **{k: v for k, v in given.items() if v is not None})
        except Exception as exc:  # noqa: BLE001 - one plugin's bug must not stop the sweep
            result.failures[spec.name] = str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}"
            say(terminal(f"[{number}/{len(specs)}] {spec.name}: failed: {result.failures[spec.name]}"))
            continue
        if action == "kept":
            say(f"{head}: already finished in {terminal(run_dir)}; kept")
        result.actions[spec.name] = action
        result.runs.append(run_dir)
    return result


def zoo(pattern=None, *, runs_dir="runs/zoo", epochs=None, data=None, seed=None, weights=None, quiet=False,
        overwrite=False):
    """Train every installed model (or those matching the fnmatch ``pattern``) into ``runs_dir/MODEL`` and rank
    them: ``catdog-zoo zoo``. Run it again after a stop and finished models are kept, an unfinished one
    resumes; ``overwrite`` replaces a run there made with other settings. Progress is printed.

    Returns a :class:`~catdog_zoo.Leaderboard` (shown as a table in Jupyter) whose ``failures`` name each model
    that failed and why; when every model fails, raises a :class:`~catdog_zoo.ZooError` saying so.
    """
    from ..reports.notebook import ranked

    swept = run_zoo(pattern, runs_dir=runs_dir, epochs=epochs, data=data, seed=seed, weights=weights, quiet=quiet,
                    overwrite=overwrite)
    if swept.failures and not swept.runs:
        raise ZooError("every model failed: " + "; ".join(f"{name}: {why}" for name, why in swept.failures.items()))
    return ranked(swept.runs, failures=swept.failures)

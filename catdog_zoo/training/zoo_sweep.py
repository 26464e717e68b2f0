"""``catdog-zoo zoo``: train every installed model (or those matching a pattern), then rank them.

Each model gets ``RUNS_DIR/<model>``. Stopping the sweep loses at most the epoch in progress:
run it again and finished models are kept, an unfinished one resumes from its last checkpoint,
and the rest train. A model that fails is reported and the sweep goes on with the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ZooError
from ..plugins import get_zoo
from ..runs.layout import CONFIG_FILE, METRICS_FILE
from ..runs.record import read_run_config
from ..util.locks import folder_lock
from ..util.names import terminal
from .session import resume, train

# The settings a sweep chooses; a kept or resumed run must have been made with the same ones.
SWEEP_KEYS = ("epochs", "data", "seed")


@dataclass
class SweepResult:
    runs: list = field(default_factory=list)  # finished run directories, in model order
    actions: dict = field(default_factory=dict)  # model -> "trained" | "resumed" | "kept"
    failures: dict = field(default_factory=dict)  # model -> one-line reason


def model_run_dir(runs_dir, spec, clashes=()) -> Path:
    """``RUNS_DIR/NAME``; ``RUNS_DIR/DIST_NAME`` when two plugins register the same name."""
    name = spec.qualified_name if spec.name in clashes else spec.name
    return Path(runs_dir) / name.replace(":", "_").replace("/", "_")


def _mismatch(run_dir: Path, wanted: dict):
    """The first sweep setting the existing run was made with differently, as text, or None."""
    config = read_run_config(run_dir / CONFIG_FILE) or {}
    if not isinstance(config, dict):
        return f"{CONFIG_FILE} is not a mapping"
    for key, value in wanted.items():
        if value is not None and config.get(key) != value:
            return f"{key}={config.get(key)!r}, not {value!r}"
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
            differs = _mismatch(run_dir, wanted) if started else None
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

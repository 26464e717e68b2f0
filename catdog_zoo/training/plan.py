"""A run's plan: which stages it trains, in which order, decided once from the registered StageSpecs.

A new run plans when its model is built; a resumed one plans the same way and checks the plan against the one
its checkpoint recorded, so a stage plugin installed or removed meanwhile cannot silently change the run.
"""

from __future__ import annotations

from ..errors import ZooError, first_line
from ..plugins import DISABLE_ENV, get_zoo


def plan(spec, cfg, net) -> list:
    """The stages of a run of ``spec`` with ``cfg`` (``net``: the built model), in their specs' order. Each
    stage is named after its spec and carries how it is drawn (``drawn``)."""
    planned = []
    specs = sorted(get_zoo().extensions["stages"].values(), key=lambda s: s.order)  # stable: registration order
    for stage_spec in specs:
        stage = _made(stage_spec, spec, cfg, net, tuple(planned))
        if stage is None:
            continue
        epochs = getattr(stage, "epochs", None)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0 or not callable(
                getattr(stage, "run", None)):
            raise ZooError(f"stage '{stage_spec.name}' ({stage_spec.distribution or stage_spec.plugin}) made "
                           f"{type(stage).__name__}, not a stage with an int 'epochs' and a 'run' method")
        stage.name, stage.drawn = stage_spec.name, stage_spec.drawn
        stage.origin = stage_spec.origin  # whose it is, for its errors ("": the core's, whose errors keep their words)
        planned.append(stage)
    if not planned:
        raise ZooError("no stage applies to this run (is a stage plugin disabled?)")
    return planned


def _made(stage_spec, spec, cfg, net, planned):
    """``stage_spec.make(...)``; a plugin's ``make`` that raises is one error naming the stage and its
    distribution (before any run folder exists: a stage plugin's bug stops every run until it is fixed or
    disabled, and the user must know which one to disable)."""
    try:
        return stage_spec.make(spec, cfg, net, planned)
    except Exception as exc:
        if not stage_spec.origin or isinstance(exc, ZooError):
            raise
        raise ZooError(f"stage '{stage_spec.name}' ({stage_spec.origin}) failed to plan this run: "
                       f"{type(exc).__name__}: {first_line(exc)} (disable it with {DISABLE_ENV}="
                       f"{stage_spec.origin})") from exc


def names(stages) -> list:
    """What a checkpoint records of the plan: each stage's name and epochs."""
    return [[stage.name, stage.epochs] for stage in stages]


def check_same(stages, recorded, run_dir) -> None:
    """Refuse to resume with another plan than the checkpoint's (None: a checkpoint older than this record)."""
    if recorded is not None and names(stages) != recorded:
        shown = (lambda plan: ", ".join(f"{n} ({e} epochs)" for n, e in plan) or "none")
        raise ZooError(f"{run_dir} was planned as {shown(recorded)}, but this installation plans "
                       f"{shown(names(stages))}: install or remove the stage plugin it was trained with")

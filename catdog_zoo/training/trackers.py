"""The run's experiment trackers (``track``): started with the run, told every epoch, its files and its end.

Each tracker is a registered :class:`catdog_zoo.TrackerSpec`'s ``start(run_dir, config)``; its methods are
optional. A tracker that raises is named in one warning and dropped, and a resumed run whose tracker is no longer
installed goes on without it: a run is never lost to its tracker.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import ConfigError, first_line
from ..plugins import get_zoo


METHODS = ("params", "epoch", "artifact", "finish")  # what a run calls on a tracker, each optional


class Trackers:
    """The started trackers of one run (none on a worker other than the chief)."""

    def __init__(self, names, run_dir: Path, config: dict, params: dict, warn):
        self._warn = warn
        self._live = {}
        self._origin = {}  # name -> the distribution it came from, named in its warning
        for name in names:
            try:  # ``train`` refused an unknown name before any work (resolve.py): here, a resumed run's
                spec = get_zoo().extension("trackers", name, flag="--track")
            except ConfigError as exc:  # tracker, uninstalled since. Its weights are not its tracker's to hold back
                warn(f"Warning: tracker '{name}', recorded for this run, is not available ({exc}); the run goes on "
                     "without it")
                continue
            self._origin[name] = spec.distribution or spec.plugin
            # absolute: a tracker may change directory or keep the path past the command (a server's link to it)
            self._call(name, lambda: self._live.__setitem__(name, spec.start(Path(run_dir).absolute(), dict(config))),
                       "start")
            self._check_methods(name)
        self.call("params", params)

    def _call(self, name: str, fn, what: str) -> None:
        try:
            fn()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a tracker's failure (exit() too) is never the run's
            self._live.pop(name, None)
            self._warn(f"Warning: tracker '{name}' ({self._origin.get(name, '?')}) failed in {what} "
                       f"({type(exc).__name__}: {first_line(exc)}); dropped for the rest of this run")

    def _check_methods(self, name: str) -> None:
        """A method named almost as one the run calls (``epochs`` for ``epoch``) would never be called: said once."""
        tracker = self._live.get(name)
        for attr in dir(type(tracker)) if tracker is not None else ():
            if attr.startswith("_") or attr in METHODS or not callable(getattr(tracker, attr, None)):
                continue
            close = difflib.get_close_matches(attr, METHODS, n=1, cutoff=0.75)
            if close:
                self._warn(f"Warning: tracker '{name}' ({self._origin[name]}) has a method '{attr}', which is never "
                           f"called: did you mean '{close[0]}'? (a tracker's methods: {', '.join(METHODS)})")

    def call(self, method: str, *args) -> None:
        """``tracker.method(*args)`` on every tracker that has it."""
        for name, tracker in list(self._live.items()):
            fn = getattr(tracker, method, None)
            if callable(fn):
                self._call(name, lambda: fn(*args), method)

    # the epoch listener's half (.listeners)
    def epoch_begin(self, stage: str, epoch: int) -> None:
        pass

    def epoch_end(self, stage: str, epoch: int, model, logs: dict) -> bool:
        self.call("epoch", stage, epoch, {k: float(v) for k, v in logs.items()})
        return False

    def artifacts(self, paths) -> None:
        for path in paths:
            if Path(path).is_file():
                self.call("artifact", Path(path).absolute())

    def finish(self, status: str, metrics: dict) -> None:
        self.call("finish", status, metrics)
        self._live.clear()

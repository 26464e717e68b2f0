"""Progress of long steps (decoding images, extracting features) on stderr; ``-q`` turns it off.

On a terminal a bar (``rich``) moves while a step runs; in logs and CI (not a terminal) each step of
``train`` prints one line when it ends, so logs stay short, and the other commands print none
(:func:`terminal_progress`).
Epochs report through Keras, one line each.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress("decoding train", 2000) as p: ... p.advance(64)``.

    On a terminal, a live bar drawn by ``rich`` (a Keras dependency, so nothing new to install), cleared
    when the step ends; then, terminal or not, one line: what was done, in how long, how fast.
    """

    def __init__(self, label: str, total: int, enabled: bool = True, unit: str = "images", stream=None):
        self.label, self.total, self.enabled, self.unit = label, total, enabled, unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.live = enabled and getattr(self.stream, "isatty", lambda: False)()
        self._bar = self._task = None

    def __enter__(self):
        self.started = time.perf_counter()
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn(self.unit), TimeRemainingColumn(), transient=True,
                            console=Console(file=self.stream), redirect_stdout=False, redirect_stderr=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def __exit__(self, exc_type, exc, tb):
        if self._bar is not None:
            self._bar.stop()
        if not self.enabled:
            return
        seconds = time.perf_counter() - self.started
        rate = f", {self.done / seconds:.0f}/s" if seconds > 0 and self.done else ""
        end = f"{self.label}: {self.done}/{self.total} {self.unit} in {seconds:.1f}s{rate}"
        self.stream.write(end + ("" if exc_type is None else " (interrupted)") + "\n")
        self.stream.flush()


def progress_factory(quiet: bool):
    """A ``(label, total) -> Progress`` that is silent when ``quiet``."""
    def make(label: str, total: int, unit: str = "images") -> Progress:
        return Progress(label, total, enabled=not quiet, unit=unit)
    return make


SILENT = progress_factory(True)


def terminal_progress():
    """Progress for commands whose output is their result (``data check``, ``evaluate``, ``predict``): drawn
    on a terminal, and nothing at all in logs, pipes and CI, where their stderr stays empty."""
    return progress_factory(quiet=not getattr(sys.stderr, "isatty", lambda: False)())

"""Progress of long steps (decoding images, extracting features) on stderr; ``-q`` turns it off.

On a terminal the line updates in place; in logs and CI (not a terminal) each step of ``train`` prints
one line when it ends, so logs stay short, and the other commands print none (:func:`terminal_progress`).
Epochs report through Keras, one line each.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress("decoding train", 2000) as p: ... p.advance(64)``."""

    def __init__(self, label: str, total: int, enabled: bool = True, unit: str = "images", stream=None):
        self.label, self.total, self.enabled, self.unit = label, total, enabled, unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.live = enabled and getattr(self.stream, "isatty", lambda: False)()
        self._last_draw = 0.0

    def __enter__(self):
        self.started = time.perf_counter()
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.live and (now - self._last_draw > 0.1 or self.done >= self.total):
            self._last_draw = now
            self.stream.write(f"\r{self.label}: {self.done}/{self.total} {self.unit}")
            self.stream.flush()

    def __exit__(self, exc_type, exc, tb):
        if not self.enabled:
            return
        seconds = time.perf_counter() - self.started
        rate = f", {self.done / seconds:.0f}/s" if seconds > 0 and self.done else ""
        end = f"{self.label}: {self.done}/{self.total} {self.unit} in {seconds:.1f}s{rate}"
        self.stream.write(("\r" if self.live else "") + end + ("" if exc_type is None else " (interrupted)") + "\n")
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

"""A finished run ready to answer requests: loaded once, warmed up, described for the page and the API."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from ..errors import ZooError
from ..runs.evaluate import load_run_model
from ..runs.inference import open_run_model
from ..runs.predict import answers
from ..runs.record import read_run

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a URL path segment as TF Serving's model names are


class ServedRun:
    """One run: ``score(uint8 images)`` -> answers shaped like ``predict --json`` (without ``path``)."""

    def __init__(self, run_dir, name: str | None = None, version: int = 1, reject: bool = True,
                 precision: str = "float32"):
        self.run_dir = Path(run_dir)
        config, record = read_run(run_dir)
        self.name = name or record.model
        if not NAME.match(self.name):
            raise ZooError(f"model name {self.name!r} of {run_dir} cannot be a URL path segment: use --name "
                           "(letters, digits, '.', '_', '-')")
        self.version, self.class_names = version, list(record.class_names)
        self.image_size = tuple(int(s) for s in config.image_size)
        self.model = load_run_model(run_dir)
        self.scorer, self.novelty, self.why = open_run_model(run_dir, config, record, self.model, reject,
                                                                 precision)
        self.info = {"name": self.name, "version": version, "model": record.model, "run": self.run_dir.name,
                     "classes": self.class_names, "image_size": list(self.image_size),
                     "val_accuracy": record.val_accuracy, "test_accuracy": record.test_accuracy,
                     "data_fingerprint": record.data_fingerprint, "finished_at": record.finished_at,
                     "engine": self.scorer.engine, "precision": precision, "rejection": self.novelty is not None,
                     "rejection_note": self.why or ""}

    def score(self, images) -> list:
        return answers(self.scorer, self.novelty, np.asarray(images, np.uint8), self.class_names)

    def warm(self, batch: int) -> float:
        """Run every shape the batcher will use once (engines plan a new shape on first sight); seconds taken."""
        started = time.perf_counter()
        for n in sorted({1, batch}):
            self.score(np.zeros((n, *self.image_size, 3), np.uint8))
        return time.perf_counter() - started


def serve_plan(run_dirs, name: str | None = None, reject: bool = True, precision: str = "float32") -> dict:
    """``{name: {version: ServedRun}}``: runs of one model name become its versions 1, 2, ... in the order given."""
    plan: dict = {}
    for run_dir in run_dirs:
        probe_name = name
        run = ServedRun(run_dir, probe_name, version=1, reject=reject, precision=precision)
        versions = plan.setdefault(run.name, {})
        run.version = run.info["version"] = len(versions) + 1
        versions[run.version] = run
    return plan

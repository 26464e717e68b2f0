"""Finished runs side by side: one row per run, best validation accuracy first.

Rows come from each run's ``metrics.json`` (and ``history.csv`` for curves), so any finished run
directory compares, wherever it lives and whichever plugin trained it.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from ..errors import ZooError
from ..runs.layout import CONFIG_FILE, METRICS_FILE
from ..runs.record import read_history, read_run
from ..util.confidence import small_splits_text
from ..util.locks import folder_lock
from ..util.names import markdown, plot, terminal
from .plots import overlay_curves

COLUMNS = ("rank", "model", "val_accuracy", "test_accuracy", "overfit_gap", "params", "train_seconds", "data", "run")


def find_runs(run_dirs=(), runs_root=None) -> list:
    """The given run directories, plus every finished run under ``runs_root`` (searched recursively).

    A given directory that is not a finished run is an error (raised by :func:`leaderboard`, which
    reads it); under ``runs_root`` unfinished runs are passed over with a note, since a sweep in
    progress has some.
    """
    found = [Path(p) for p in run_dirs]
    if runs_root is not None:
        root = Path(runs_root)
        if not root.is_dir():
            raise ZooError(f"runs directory not found: {root}")
        for config in sorted(root.rglob(CONFIG_FILE)):
            run = config.parent
            if (run / METRICS_FILE).is_file():
                found.append(run)
            else:
                print(f"Note: {terminal(run)} is unfinished; left out", file=sys.stderr)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ZooError(f"no finished runs found{f' under {runs_root}' if runs_root is not None else ''}")
    return unique


def leaderboard(runs, given=None) -> list:
    """One dict per run (see :data:`COLUMNS`), sorted by validation then test accuracy, best first.

    A run that cannot be read is an error when it was named (``given``; default: every run), and passed
    over with a note when it was found by searching a folder: one broken run must not hide the others. So is
    one that a writer holds (``train --overwrite``, ``export``): each run is read under its shared lock.
    """
    rows = []
    named = {Path(p).resolve() for p in (runs if given is None else given)}
    for run in runs:
        try:
            with folder_lock(run, shared=True) if Path(run).is_dir() else contextlib.nullcontext():
                record = read_run(run)[1]
        except ZooError as exc:
            if Path(run).resolve() in named:
                raise
            print(terminal(f"Note: {run} left out: {exc}"), file=sys.stderr)
            continue
        gap = record.overfit_gap
        rows.append({"run": str(run), "model": record.model, "val_accuracy": record.val_accuracy,
                     "val_interval": record.interval("validation"), "test_accuracy": record.test_accuracy,
                     "test_interval": record.interval("test"), "overfit_gap": None if gap is None else round(gap, 4),
                     "train_accuracy": record.train_accuracy, "params": record.num_params,
                     "train_seconds": record.train_seconds, "epochs": record.total_epochs, "plugin": record.origin,
                     "data_fingerprint": record.data_fingerprint or None, "split_sizes": record.split_sizes,
                     "majority_baseline": record.majority_baseline, "at_baseline": record.at_baseline,
                     "baseline_note": record.baseline_note()})
    rows.sort(key=lambda r: (-(r["val_accuracy"] or 0), -(r["test_accuracy"] or 0), r["run"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def warnings_for(rows) -> list:
    """What a reader of the table must know before comparing its numbers, one line each."""
    notes = []
    prints = {r["data_fingerprint"] for r in rows if r["data_fingerprint"]}
    if len(prints) > 1:
        notes.append(f"these runs were scored on {len(prints)} different sets of images (see the data column); "
                     "their accuracies are not comparable")
    small_runs: dict = {}  # the same words for many runs (a sweep on one small dataset) are said once
    for r in rows:
        name = terminal(Path(r["run"]).name)
        if r["baseline_note"]:
            notes.append(f"{name}: {r['baseline_note']}")
        small = small_splits_text({split: (r["split_sizes"] or {}).get(split) for split in ("validation", "test")})
        if small:
            small_runs.setdefault(small, []).append(name)
    notes += [f"{', '.join(names)}: {small}" for small, names in small_runs.items()]
    return notes


def _shown(row: dict, relative_to=None, name=terminal) -> dict:
    """A row's cells as text; ``name`` shows what came from disk (the model, the run folder, the data
    fingerprint): ``terminal`` for the text table, ``markdown`` for the Markdown one."""
    def pct(v, interval=None):  # the interval's bounds in points: "95.00% (76.4-99.1)"
        bounds = f" ({interval[0] * 100:.1f}-{interval[1] * 100:.1f})" if interval else ""
        return "-" if v is None else f"{v:.2%}{bounds}"
    run = Path(row["run"])
    base = Path(relative_to).resolve() if relative_to is not None else None
    if base is not None and base != Path(base.anchor):  # from /, "tmp/run" would read as a relative path
        try:
            run = run.relative_to(base)
        except ValueError:
            pass
    sizes = row.get("split_sizes") or {}
    data = (f"{(row.get('data_fingerprint') or '?')[:8]} {sizes.get('validation', '?')}/{sizes.get('test', '?')}"
            if sizes or row.get("data_fingerprint") else "-")
    return {"rank": str(row["rank"]),
            "model": name(row["model"]) + (" (at baseline)" if row.get("at_baseline") else ""),
            "val_accuracy": pct(row["val_accuracy"], row.get("val_interval")),
            "test_accuracy": pct(row["test_accuracy"], row.get("test_interval")),
            "overfit_gap": "-" if row["overfit_gap"] is None else f"{row['overfit_gap'] * 100:+.1f} pts",
            "params": "-" if row["params"] is None else f"{row['params']:,}",
            "train_seconds": "-" if row["train_seconds"] is None else f"{row['train_seconds']:.1f}",
            "data": name(data), "run": name(run)}


HEADERS = {"rank": "#", "model": "model", "val_accuracy": "val acc (95% CI)", "test_accuracy": "test acc (95% CI)",
           "overfit_gap": "train-val gap", "params": "params", "train_seconds": "train s",
           "data": "data val/test", "run": "run"}


def as_markdown(rows, relative_to=None) -> str:
    lines = ["| " + " | ".join(HEADERS[c] for c in COLUMNS) + " |",
             "|" + "|".join("---:" if c not in ("model", "run", "data") else "---" for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_shown(r, relative_to, markdown)[c] for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def as_text(rows, relative_to=None) -> str:
    shown = [_shown(r, relative_to) for r in rows]
    widths = {c: max(len(HEADERS[c]), *(len(s[c]) for s in shown)) for c in COLUMNS}
    right = {"rank", "val_accuracy", "test_accuracy", "overfit_gap", "params", "train_seconds"}

    def line(values):
        return "  ".join(values[c].rjust(widths[c]) if c in right else values[c].ljust(widths[c])
                         for c in COLUMNS).rstrip()
    return "\n".join([line(HEADERS)] + [line(s) for s in shown])


def plot_curves(rows, out) -> Path:
    """Validation accuracy per epoch of every run on one chart."""
    def label(r):
        name = Path(r["run"]).name
        return plot(f"{r['rank']}. {r['model']}" + ("" if name == r["model"] else f" ({name})"))
    def curve(r):
        try:
            values = read_history(r["run"], columns=("val_accuracy",)).get("val_accuracy", [])
            return [v if isinstance(v, float) else None for v in values]  # a word in a cell is no point
        except ZooError as exc:  # one run's history must not stop the plot of the others
            print(f"Note: {terminal(r['run'])} left out of the plot: {exc}", file=sys.stderr)
            return []
    return overlay_curves({label(r): curve(r) for r in rows}, out)

"""What the Python API hands back to a notebook: :class:`RunResult` (what ``train`` returns) and
:class:`Leaderboard` (what ``compare`` and ``zoo`` return), each shown by Jupyter as HTML (``_repr_html_``:
self-contained, its figure inline) and usable as plain data: a run's history as rows, the leaderboard as a
list of dicts, either of which ``pandas.DataFrame`` takes as it is, with no pandas needed here.
"""

from __future__ import annotations

import webbrowser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import ZooError
from ..runs.layout import CURVES_FILE, REPORT_FILE
from ..runs.record import MAX_RUN_FILE_BYTES, RunRecord, read_history, read_run
from ..util import names
from ..util.confidence import small_splits_text
from . import leaderboard as lb
from .run_report import _accuracy_note, _data_uri

_BOX = "font-family: system-ui, sans-serif; line-height: 1.4"
_CELL = "padding: 0.2em 1em 0.2em 0; text-align: left; border-bottom: 1px solid #eee"


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2%}"


def _row(cells, tag="td") -> str:
    return "<tr>" + "".join(f'<{tag} style="{_CELL}">{names.html(c)}</{tag}>' for c in cells) + "</tr>"


@dataclass
class RunResult:
    """A finished run: what ``train`` and ``resume`` return (and :meth:`RunResult.read` makes of any run folder).

    ``run_dir`` and ``record`` (the typed ``metrics.json``); ``history``, one dict per epoch;
    ``report_path`` and :meth:`RunResult.open_report`. Jupyter shows it with its headline numbers and learning curves.
    A non-chief worker of a multi-worker run has no folder: ``worker`` holds its facts instead.
    """

    run_dir: Optional[Path]
    record: Optional[RunRecord]
    worker: dict = field(default_factory=dict)

    @classmethod
    def read(cls, run_dir) -> "RunResult":
        """The finished run in ``run_dir``, read with the same care as ``evaluate`` reads it."""
        return cls(Path(run_dir), read_run(run_dir)[1])

    @property
    def metrics(self) -> dict:
        """The record as ``metrics.json`` holds it (a worker's facts for a non-chief worker)."""
        return self.record.to_dict() if self.record is not None else dict(self.worker)

    @property
    def history(self) -> list:
        """``history.csv`` as one dict per epoch (``epoch``, ``stage``, ``loss``, ``accuracy``, ``val_loss``,
        ``val_accuracy``): ``pandas.DataFrame(result.history)`` is the table, ``[r["val_accuracy"] for r in
        result.history]`` a curve."""
        columns = read_history(self.run_dir) if self.run_dir is not None else {}
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        for row in rows:
            if isinstance(row.get("epoch"), float):
                row["epoch"] = int(row["epoch"])
        return rows

    @property
    def report_path(self) -> Optional[Path]:
        """The run's ``report.html`` (every figure inline: it opens alone, from anywhere)."""
        return None if self.run_dir is None else Path(self.run_dir) / REPORT_FILE

    def open_report(self) -> bool:
        """Open ``report.html`` in the default web browser; False when no browser could be started (on a
        server: open ``report_path`` yourself)."""
        path = self.report_path
        if path is None or not path.is_file():
            raise ZooError(f"this run has no report ({path or 'a non-chief worker writes no run folder'})")
        return webbrowser.open(path.resolve().as_uri())

    def __repr__(self) -> str:
        if self.record is None:
            return f"RunResult(worker={self.worker!r})"
        r = self.record
        return (f"RunResult(run_dir={str(self.run_dir)!r}, model={r.model!r}, val_accuracy={_pct(r.val_accuracy)}, "
                f"test_accuracy={_pct(r.test_accuracy)})")

    def _repr_html_(self) -> str:
        """Jupyter's view: the report's headline numbers (accuracies with their 95% intervals, the small-data
        warning) and the learning curves, self-contained."""
        if self.record is None:
            return f"<pre>{names.html(repr(self))}</pre>"
        r, gap = self.record, self.record.overfit_gap
        cells = [("validation accuracy", _pct(r.val_accuracy)), ("test accuracy", _pct(r.test_accuracy)),
                 ("overfitting gap", "-" if gap is None else f"{gap * 100:+.1f} pts"),
                 ("epochs", str(r.total_epochs)), ("training time", f"{r.train_seconds or 0:.1f} s"),
                 ("parameters", f"{r.num_params or 0:,}")]
        curves = Path(self.run_dir) / CURVES_FILE
        figure = (f'<img alt="{CURVES_FILE}" style="max-width: 760px; width: 100%" src="{_data_uri(curves)}">'
                  if curves.is_file() and not curves.is_symlink() and curves.stat().st_size <= MAX_RUN_FILE_BYTES
                  else "")
        notes = [_accuracy_note(r, "validation"), _accuracy_note(r, "test")] + [""] * (len(cells) - 2)
        small = small_splits_text({split: r.split_sizes.get(split) for split in ("validation", "test")})
        warning = f"<div>Small data: {names.html(small)}.</div>" if small else ""
        return (f'<div style="{_BOX}"><b>{names.html(r.model)}</b> &mdash; <code>{names.html(str(self.run_dir))}'
                f"</code><table>{_row([k for k, _ in cells], 'th')}{_row([v for _, v in cells])}{_row(notes)}"
                f"</table>{warning}{figure}"
                f"<div>The whole report (confusion matrix, worst errors, calibration): "
                f"<code>{names.html(str(self.report_path))}</code>, or <code>.open_report()</code></div></div>")


class Leaderboard(list):
    """Finished runs ranked, best validation accuracy first: a list of dicts, as ``compare --json`` prints
    them. ``notes``: what to know before comparing the numbers (different data, tiny splits); ``failures``:
    for ``zoo``, each model that failed and why. Jupyter shows it as the ``compare`` table."""

    def __init__(self, rows=(), notes=(), failures=None):
        super().__init__(rows)
        self.notes = list(notes)
        self.failures = dict(failures or {})

    def _repr_html_(self) -> str:
        body = "".join(_row([lb._shown(row, Path.cwd(), str)[c] for c in lb.COLUMNS]) for row in self)
        said = [f"Warning: {note}" for note in self.notes] + [f"Failed: {model}: {why}"
                                                              for model, why in self.failures.items()]
        notes = "".join(f"<div>{names.html(line)}</div>" for line in said)
        return (f'<div style="{_BOX}"><table>{_row([lb.HEADERS[c] for c in lb.COLUMNS], "th")}{body}</table>'
                f"{notes}</div>")


def ranked(runs, given=None, failures=None) -> Leaderboard:
    """The :class:`Leaderboard` of finished run folders (``given``: those the user named, see
    :func:`~catdog_zoo.reports.leaderboard.leaderboard`)."""
    rows = lb.leaderboard(runs, given) if runs else []
    return Leaderboard(rows, lb.warnings_for(rows), failures)


def compare(*run_dirs, runs_dir=None) -> Leaderboard:
    """Rank finished runs (``catdog-zoo compare``): the given run folders, and every finished run under
    ``runs_dir`` (default, when no folder is given: ``runs``). Returns a :class:`Leaderboard`."""
    if not run_dirs and runs_dir is None:
        runs_dir = "runs"
    return ranked(lb.find_runs(run_dirs, runs_dir), given=run_dirs)

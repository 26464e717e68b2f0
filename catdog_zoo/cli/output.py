"""How commands print: JSON for machines, aligned tables and short numbers for people.

Names from disk (class, file, run, model and plugin names) are shown as :mod:`catdog_zoo.util.names` decides:
a command passes each through ``terminal`` where it composes a line, and :func:`echo` passes the whole text
through ``lines`` (line breaks and tabs kept) as a last guard."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import click

from ..errors import ZooError
from ..util.files import finite
from ..util.names import json_safe, lines, terminal


def echo(text="", err: bool = False) -> None:
    """Print text catdog-zoo composed (names in it through ``terminal``): nothing in it acts on the terminal."""
    click.echo(lines(text), err=err)


def echo_json(data) -> None:
    # NaN and infinities become null: a bare NaN would make the output invalid JSON; a byte of a name that is
    # not UTF-8 becomes "\\xNN" text: a lone surrogate would make it invalid for strict readers.
    click.echo(json.dumps(json_safe(finite(data)), indent=2, allow_nan=False))


def output_width():
    """The columns a line may take: ``$COLUMNS``, else the terminal's; None when stdout is no terminal (a pipe
    or a file keeps one row per line, for grep)."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def table(rows: list, columns: list, below: tuple = (), width: int | None = None) -> None:
    """Plain aligned columns; the last column is not padded (it holds free text). Every cell as ``terminal``
    shows it: a name can neither break its row nor act on the terminal.

    ``below``: free-text columns that, when a row does not fit ``width`` (default :func:`output_width`), leave
    the table and go under their row, one indented line each (``name: text``), wrapped to the width."""
    if not rows:
        return
    width = width or output_width()
    if width and below and _table_lines(rows, columns) and max(map(len, _table_lines(rows, columns))) > width:
        kept = [c for c in columns if c not in below]
        lines = _table_lines(rows, kept)
        click.echo(lines[0])
        for row, line in zip(rows, lines[1:]):
            click.echo(line)
            for name in below:
                for piece in textwrap.wrap(f"{name}: {terminal(str(row[name]))}", width, initial_indent="  ",
                                           subsequent_indent="    ", break_on_hyphens=False):
                    click.echo(piece)
        return
    for line in _table_lines(rows, columns):
        click.echo(line)


def _table_lines(rows: list, columns: list) -> list:
    cells = [[terminal(str(r[c])) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns[:-1])]
    header = [c.upper() for c in columns]
    return [("  ".join(v.ljust(w) for v, w in zip(line, widths)) + ("  " if widths else "") + line[-1]).rstrip()
            for line in [header] + cells]


def human(n) -> str:
    if not isinstance(n, int):
        return "?"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


_LEADERBOARD_OPTIONS = [
    click.option("--json", "as_json", is_flag=True, help="Print a JSON list of runs (run, model, val_accuracy, "
                 "test_accuracy, overfit_gap, params, train_seconds, ...)."),
    click.option("--markdown", is_flag=True, help="Print a Markdown table."),
    click.option("--plot", type=click.Path(dir_okay=False), help="Also save validation accuracy per epoch of "
                 "every run, overlaid, to this PNG."),
]


def leaderboard_options(fn=None, *, overwrite="Replace an existing --plot file (never one in a run folder)."):
    """The leaderboard's flags, and ``--overwrite`` with ``overwrite`` as its help: what the command replaces."""
    def decorate(fn):
        for option in reversed([*_LEADERBOARD_OPTIONS, click.option("--overwrite", is_flag=True, help=overwrite)]):
            fn = option(fn)
        return fn
    return decorate(fn) if fn is not None else decorate


def print_leaderboard(runs, as_json, markdown, plot, given=None, overwrite: bool = False) -> None:
    """``given``: the runs the user named (an unreadable one is an error); others found by a search are
    left out with a note when they cannot be read."""
    from ..reports import leaderboard as lb
    from ..runs.confine import check_output

    if plot:
        check_output(plot, flag="--plot", overwrite=overwrite, reads=runs)

    rows = lb.leaderboard(runs, given)
    if not rows:
        raise ZooError("no readable finished runs to compare")
    if as_json:
        echo_json(rows)
    elif markdown:
        echo(lb.as_markdown(rows, Path.cwd()))
    else:
        echo(lb.as_text(rows, Path.cwd()))
    for note in lb.warnings_for(rows):
        echo(f"Warning: {note}", err=True)
    if plot:
        echo(f"Wrote {terminal(lb.plot_curves(rows, plot))}", err=True)

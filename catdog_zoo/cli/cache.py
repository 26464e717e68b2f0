"""``catdog-zoo cache``: what the cache folder holds, by kind, and clearing it."""

from __future__ import annotations

import os

import click

from ..util.names import terminal
from ..util.system import size_text
from .output import echo, echo_json, table


# The kinds of entry, for --kind's choices without importing the cache code (NumPy) at every command's start.
KIND_NAMES = ("decoded", "features", "engines", "facts", "old", "unfinished")


@click.command()
@click.option("--clear", "clearing", is_flag=True, help="Remove catdog-zoo's files from the cache folder (all kinds, "
              "or those of --kind); files it did not write stay.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KIND_NAMES),
              help="With --clear: only this kind (repeat for several). 'old': the format 2 files of an older "
              "catdog-zoo, which nothing reads now.")
@click.option("--json", "as_json", is_flag=True, help="Print the folder and {kind: {files, bytes}} as JSON.")
def cache(clearing, kinds, as_json):
    """Show the size of each kind of entry in the cache folder, or clear it.

    The cache ($CATDOG_ZOO_CACHE, default ~/.cache/catdog-zoo) keeps decoded images, backbone features and
    converted engines between runs, each checked before use. Deleting any of it is safe: what a run needs
    again is computed again. Clearing beside a running catdog-zoo is refused while it writes an entry.

    \b
    Examples:
      catdog-zoo cache
      catdog-zoo cache --clear --kind old      # what older versions left
      catdog-zoo cache --clear
    """
    from ..data.cache import CACHE_ENV, cache_root
    from ..data.cache_contents import KINDS, OTHER, clear, contents, totals
    if kinds and not clearing:
        raise click.UsageError("--kind applies with --clear")
    root = cache_root()
    if clearing:
        removed = clear(kinds or None)
        left = totals(contents(root))
        if as_json:
            echo_json({"root": str(root), "removed": removed, "left": left})
            return
        freed = sum(k["bytes"] for k in removed.values())
        echo(f"Removed from {terminal(root)}: " + (", ".join(f"{k} {v['files']} file(s) ({size_text(v['bytes'])})"
                                                           for k, v in removed.items()) or "nothing")
             + (f"; {size_text(freed)} freed" if removed else ""))
        if left:
            echo("Left there: " + ", ".join(f"{k} {v['files']} file(s) ({size_text(v['bytes'])})"
                                            for k, v in left.items())
                 + (" (files catdog-zoo did not write are never removed)" if OTHER in left else ""))
        return
    found = totals(contents(root))
    if as_json:
        echo_json({"root": str(root), "kinds": found})
        return
    where = f"from ${CACHE_ENV}" if os.environ.get(CACHE_ENV) else f"${CACHE_ENV} moves it"
    echo(f"Cache folder: {terminal(root)} ({where})")
    if not found:
        echo("Empty.")
        return
    rows = [{"kind": kind, "files": v["files"], "size": size_text(v["bytes"]),
             "holds": KINDS[kind][0] if kind in KINDS else
             ("not written by catdog-zoo: never removed" if kind == OTHER else "entries of another catdog-zoo version")}
            for kind, v in found.items()]
    rows.append({"kind": "total", "files": sum(v["files"] for v in found.values()),
                 "size": size_text(sum(v["bytes"] for v in found.values())), "holds": ""})
    table(rows, ["kind", "files", "size", "holds"])
    if "old" in found:
        echo(f"Note: {found['old']['files']} file(s) of format 2 ({size_text(found['old']['bytes'])}) are never read "
             "by this version: 'catdog-zoo cache --clear --kind old' removes them")
    echo("Deleting any of it is safe (what a run needs again is computed again): 'catdog-zoo cache --clear "
         "[--kind KIND]'")

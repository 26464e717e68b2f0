"""``catdog-zoo install`` / ``uninstall``: pip, run by the Python that runs catdog-zoo.

As ``llm install`` and ``datasette install`` do: under pipx or ``uv tool`` the tool has an environment of its
own, and a plain ``pip install`` puts a plugin where catdog-zoo never looks.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import click

from ..plugins import reset_zoo
from ..util.names import terminal


def _pip(*args) -> int:
    return subprocess.run([sys.executable, "-m", "pip", *args]).returncode


def _plugin_names() -> dict:
    """The plugins a fresh catdog-zoo process loads, each with its load error ("" when it loaded) (a new
    process: pip's new files and ``.pth`` paths are read at start-up only)."""
    listed = subprocess.run([sys.executable, "-m", "catdog_zoo", "plugins", "--json"], capture_output=True,
                            text=True)
    try:
        return {f"{p['name']} ({p['distribution'] or p['module']})": "; ".join(p.get("errors") or [])
                for p in json.loads(listed.stdout)}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("packages", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade packages that are already installed.")
@click.option("-e", "--editable", is_flag=True, help="Install a local plugin folder in editable mode.")
def install(packages, upgrade, editable):
    """Install plugins (or any package) into catdog-zoo's own environment, then list what it added.

    PACKAGES are what pip takes: names from PyPI, local folders, wheels, git URLs; other pip options
    (--no-deps, --index-url URL, --no-build-isolation ...) are passed on to pip.

    \b
    Examples:
      catdog-zoo install catdog-zoo-resnet
      catdog-zoo install -e ./my-plugin        # a plugin you are writing (see 'catdog-zoo new-plugin')
    """
    before = _plugin_names()
    args = ["install", *(["--upgrade"] if upgrade else []), *(["-e"] if editable else []), *packages]
    if _pip(*args):
        raise click.ClickException(f"pip install {' '.join(packages)} failed (its output is above)")
    reset_zoo()
    importlib.invalidate_caches()
    after = _plugin_names()
    added = sorted(set(after) - set(before))
    click.echo(f"New plugins: {', '.join(map(terminal, added))} (see 'catdog-zoo models')" if added else
               "No new plugins (already installed, or not a catdog-zoo plugin): 'catdog-zoo plugins' lists them")
    for name in added:
        if after[name]:  # installed, but it does not load: say so now, not at the first 'train'
            click.echo(terminal(f"Warning: {name} is installed but failed to load: {after[name]}"), err=True)


@click.command()
@click.argument("packages", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall(packages, yes):
    """Remove packages from catdog-zoo's own environment.

    \b
    Examples:
      catdog-zoo uninstall catdog-zoo-resnet -y
    """
    if _pip("uninstall", *(["-y"] if yes else []), *packages):
        raise click.ClickException(f"pip uninstall {' '.join(packages)} failed (its output is above)")
    reset_zoo()

"""``catdog-zoo install`` / ``uninstall``: pip, run by the Python that runs catdog-zoo.

As ``llm install`` and ``datasette install`` do: under pipx or ``uv tool`` the tool has an environment of its
own, and a plain ``pip install`` puts a plugin where catdog-zoo never looks.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import subprocess
import sys

import click

from ..plugins import reset_zoo
from ..util.names import terminal


def _pip(*args) -> int:
    return subprocess.run([sys.executable, "-m", "pip", *args]).returncode


def _pip_quietly(*args) -> tuple:
    """``(exit status, pip's output)``, stdout and stderr interleaved as pip wrote them, nothing shown."""
    done = subprocess.run([sys.executable, "-m", "pip", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace")
    return done.returncode, done.stdout


def pip_summary(output: str) -> str:
    """pip's output in one line: what it installed (its own "Successfully installed" line), or that nothing
    was needed."""
    for line in reversed(output.splitlines()):
        if line.startswith("Successfully installed "):
            return "Installed " + ", ".join(line[len("Successfully installed "):].split())
    if "Requirement already satisfied" in output:
        return "Nothing to install: already installed (-U upgrades)"
    return "pip finished"


def _plugin_names() -> dict:
    """The plugins a fresh catdog-zoo process loads, each with its load error ("" when it loaded) (a new
    process: pip's new files and ``.pth`` paths are read at start-up only)."""
    try:
        listed = subprocess.run([sys.executable, "-m", "catdog_zoo", "plugins", "--json"], capture_output=True,
                                text=True, timeout=600)
    except subprocess.TimeoutExpired:  # a plugin that hangs while loading: 'plugins' would say which
        return {}
    try:
        return {f"{p['name']} ({p['distribution'] or p['module']})": "; ".join(p.get("errors") or [])
                for p in json.loads(listed.stdout)}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("packages", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade packages that are already installed.")
@click.option("-e", "--editable", is_flag=True, help="Install a local plugin folder in editable mode.")
@click.option("-v", "--verbose", is_flag=True, help="Show pip's output as it runs (by default only when it fails).")
def install(packages, upgrade, editable, verbose):
    """Install plugins (or any package) into catdog-zoo's own environment, then list what it added.

    PACKAGES are what pip takes: names from PyPI, local folders, wheels, git URLs; other pip options
    (--no-deps, --index-url URL, --no-build-isolation ...) are passed on to pip.

    \b
    Examples:
      catdog-zoo install catdog-zoo-resnet
      catdog-zoo install -e ./my-plugin        # a plugin you are writing (see 'catdog-zoo new-plugin')
      catdog-zoo install ../catdog-zoo/plugins/*/   # the reference models, from a clone
    """
    before = _plugin_names()
    args = ["install", *(["--upgrade"] if upgrade else []), *(["-e"] if editable else []), *packages]
    shown = " ".join(args)
    if verbose:
        if _pip(*args):
            raise click.ClickException(f"pip {shown} failed (its output is above)")
    else:
        click.echo(terminal(f"Running pip {shown} (with {sys.executable}; -v shows its output)..."), err=True)
        status, output = _pip_quietly(*args)
        if status:
            click.echo(output.rstrip("\n"), err=True)  # pip's own words: what failed, and why
            raise click.ClickException(f"pip {shown} failed (its output is above)")
        click.echo(terminal(pip_summary(output)))
    reset_zoo()
    importlib.invalidate_caches()
    after = _plugin_names()
    added = sorted(set(after) - set(before))
    click.echo(f"New plugins: {', '.join(map(terminal, added))} (see 'catdog-zoo plugins')" if added else
               "No new plugins: what pip installed adds none, or its plugins were installed already (their new code "
               "is what loads from now on); 'catdog-zoo plugins' lists them")
    for name in added:
        if after[name]:  # installed, but it does not load: say so now, not at the first 'train'
            click.echo(terminal(f"Warning: {name} is installed but failed to load: {after[name]}"), err=True)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str):
    """The distribution a requirement line names, or None for an optional one (``; extra == ...``)."""
    name, _, marker = requirement.partition(";")
    if "extra" in marker:
        return None
    if marker.strip():
        try:
            from packaging.markers import Marker
            if not Marker(marker.strip()).evaluate({"extra": ""}):
                return None
        except Exception:  # noqa: BLE001 - no packaging, or a marker it cannot read: count it as needed
            pass
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", name)
    return _canonical(found.group(1)) if found else None


def _distributions(packages) -> tuple:
    """``packages`` with each plugin name (what 'catdog-zoo plugins' shows first) replaced by the distribution
    that pip knows it by; a name that is neither an installed distribution nor a plugin is refused by name (pip
    would only warn "Skipping" and succeed). Read from the installed metadata: no plugin is imported."""
    from ..plugins import ENTRY_POINT_GROUP

    installed = {_canonical(d.metadata["Name"] or "") for d in importlib.metadata.distributions()}
    plugins = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.dist is not None:
            plugins.setdefault(entry.name, entry.dist.metadata["Name"])
    named = []
    for before, package in zip(("", *packages), packages):
        if package.startswith("-") or before in ("-r", "--requirement") or \
                (_requirement_name(package) or "") in installed:  # pip's own options, files and requirements
            if package in plugins and _canonical(plugins[package]) != _canonical(package):  # a package's name wins
                click.echo(terminal(f"Note: removing the package {package}; the plugin {package} is distribution "
                                    f"{plugins[package]}"), err=True)
            named.append(package)
        elif package in plugins:
            click.echo(terminal(f"Plugin {package} is distribution {plugins[package]}: removing that"), err=True)
            named.append(plugins[package])
        else:
            raise click.ClickException(f"{terminal(package)} is neither an installed package nor a plugin's name "
                                       "('catdog-zoo plugins' shows each plugin as NAME (DISTRIBUTION))")
    return tuple(dict.fromkeys(named))


def needed_by_the_zoo() -> dict:
    """``{distribution: why}``: catdog-zoo itself, pip (``install`` runs it), and every installed distribution
    catdog-zoo needs, directly or through another (optional extras left out)."""
    why = {"catdog-zoo": "it is catdog-zoo itself", "pip": "catdog-zoo installs and removes plugins with it"}
    pending = [("catdog-zoo", "catdog-zoo")]
    while pending:
        name, path = pending.pop()
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            needed = _requirement_name(requirement)
            if needed and needed not in why:
                why[needed] = f"catdog-zoo needs it ({path} -> {needed})"
                pending.append((needed, f"{path} -> {needed}"))
    return why


@click.command()
@click.argument("packages", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Also remove catdog-zoo itself or what it needs to run (TensorFlow, "
              "Keras, ...), which breaks the tool until they are installed again.")
def uninstall(packages, yes, force):
    """Remove packages (plugins) from catdog-zoo's own environment.

    PACKAGES are distribution names, or a plugin's name as 'catdog-zoo plugins' shows it first (NAME
    (DISTRIBUTION)): its distribution is removed. A name that is neither is refused.

    catdog-zoo itself, pip, and the packages catdog-zoo needs (TensorFlow, Keras, NumPy ...) are refused:
    removing one breaks every command, this one included. --force removes them anyway.

    \b
    Examples:
      catdog-zoo uninstall catdog-zoo-resnet -y
      catdog-zoo uninstall polish -y     # the plugin 'polish': its distribution, catdog-zoo-polish
    """
    packages = _distributions(packages)
    if not force:
        needed = needed_by_the_zoo()
        names = [p for p in packages if not p.startswith("-")]
        refused = [(p, needed[_requirement_name(p) or ""]) for p in names if (_requirement_name(p) or "") in needed]
        if refused:
            listed = "; ".join(f"{name}: {why}" for name, why in refused)
            raise click.ClickException(f"refusing to remove {', '.join(n for n, _ in refused)} ({listed}); removing "
                                       "it breaks catdog-zoo, this command included. Pass --force to remove it "
                                       "anyway")
    if not yes and not sys.stdin.isatty():  # pip would ask, read end-of-file and fail with a traceback
        raise click.ClickException("uninstall asks before removing anything, and there is no terminal to ask on: "
                                   "pass -y")
    if not yes:
        if _pip("uninstall", *packages):
            raise click.ClickException(f"pip uninstall {' '.join(packages)} failed (its output is above)")
    else:
        code, output = _pip_quietly("uninstall", "-y", *packages)
        if code:
            click.echo(output.rstrip(), err=True)
            raise click.ClickException(f"pip uninstall {' '.join(packages)} failed (its output is above)")
        removed = [line.split("Successfully uninstalled ", 1)[1] for line in output.splitlines()
                   if "Successfully uninstalled " in line]
        click.echo(f"Removed {', '.join(removed)}" if removed else output.strip().splitlines()[-1] if output.strip()
                   else "pip finished")
    reset_zoo()

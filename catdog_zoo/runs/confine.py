"""Where a command may write: the one answer to "may this output be written?", and a run kept inside itself.

Every path a user names for output (``--out``, ``--plot``, ``--explain``, ``audit --out``, ``--run-dir``) goes
through :func:`check_output` before any work, and every path the zoo makes inside a run (``checkpoints/``,
``export/...``) through :func:`confined`. The rules:

1. **Inputs are never replaced, nor written into.** An output may not be a file or folder the command
   reads (the run, its data, the images given), nor lie inside one: a grid PNG written into a class
   folder would be trained on next time, heatmaps written among the photos would be predicted next time.
2. **A run's files are the zoo's.** Nothing a user names is written inside a run folder (``predict --out
   RUN/metrics.json``, ``data show --out RUN/model.keras``), with or without ``--overwrite``; only the
   command that owns a part of a run writes there (``export`` into ``RUN/export/``).
3. **An existing file needs ``--overwrite``**, and even then a folder is never replaced by a file, and a
   command that replaces only its own kind of output (``export``) replaces nothing else.
4. **A run is confined to itself.** Names read from a run (its ``model``) are never used as paths; a
   run's own folders that lead elsewhere (a symbolic link) are refused, not written through.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import KEYS, load_config_file
from ..errors import ZooError
from .layout import CHECKPOINTS_DIR, CONFIG_FILE, EXPORT_DIR, HISTORY_FILE, LOCK_FILE, METRICS_FILE, MODEL_FILE
from .layout import NOVELTY_FILE, TENSORBOARD_DIR

# Besides config.yaml, any of these makes a folder a run (a user's project folder with a config.yaml is not).
_RUN_MARKS = (MODEL_FILE, METRICS_FILE, HISTORY_FILE, CHECKPOINTS_DIR, NOVELTY_FILE, LOCK_FILE)


def _real(path) -> Path:
    """``path`` absolute, with every symbolic link that exists on the way followed."""
    return Path(os.path.realpath(Path(path).expanduser()))


def looks_like_run(folder) -> bool:
    """A run folder, finished or not: ``config.yaml`` and another of a run's own files."""
    folder = Path(folder)
    return (folder / CONFIG_FILE).is_file() and any(os.path.lexists(folder / name) for name in _RUN_MARKS)


def run_folder_of(path):
    """The run folder that ``path`` is, or lies inside (its real location), or None."""
    real = _real(path)
    for folder in (real, *real.parents):
        if looks_like_run(folder):
            return folder
    return None


def is_run_config(path, loaded: dict | None = None) -> bool:
    """Whether ``path`` is a run's ``config.yaml``, in its run folder or copied out of it (every key ``train``
    writes): repeating it must not reuse the ``run_dir`` it names, which is that run's folder. ``loaded``: its
    keys, when the caller has read it."""
    path = Path(path)
    if path.name == CONFIG_FILE and looks_like_run(path.parent):
        return True
    try:
        return set(KEYS) <= set(load_config_file(path) if loaded is None else loaded)
    except ZooError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(path, *, flag: str = "--out", overwrite: bool = False, reads=(), folder: bool = False,
                 own_run=None, home=None, ours=None, ours_what: str = "something this command wrote") -> Path:
    """``path`` if this command may write it, else one :class:`ZooError` line saying why and what to do.

    ``reads``: what the command reads (the run, its data, image files and folders): never written, never
    written into. ``folder``: the output is a folder that files go into (each file then checked with
    ``folder=False``). ``own_run``: the one run this command writes (``train``'s run folder, ``export``'s run);
    ``home``: the folder the output must stay in, even through symbolic links (export's ``RUN/export``), which
    may be inside a run folder the command reads. ``overwrite``: an existing file may be replaced; ``ours``: then
    only if ``ours(path)`` (what this command wrote before: ``ours_what`` says what that is).
    """
    given = Path(path)
    target = _real(given)
    home_real = _real(home) if home is not None else None
    if home_real is not None and not _inside(target, home_real):
        raise ZooError(f"{flag} {given} leads out of {home} (a symbolic link?); refusing to write there")
    run = run_folder_of(target)
    if run is not None and (own_run is None or run != _real(own_run)):
        what = "is the run directory" if target == run else "is inside the run directory"
        raise ZooError(f"{flag} {given} {what} {run}; a run's files are written by catdog-zoo alone: choose a path "
                       "outside it")
    for source in (Path(r) for r in reads if r is not None):
        real = _real(source)
        if target == real:
            raise ZooError(f"{flag} {given} is {source}, which this command reads; choose another {flag}")
        if not folder and target in real.parents:  # replacing it would replace what it holds
            raise ZooError(f"{flag} {given} holds {source}, which this command reads; choose another {flag}")
        if real in target.parents and (home_real is None or not _inside(home_real, real)):
            raise ZooError(f"{flag} {given} is inside {source}, which this command reads; outputs never go "
                           f"there: choose another {flag}")
    if folder:
        if os.path.lexists(given) and not given.is_dir():
            raise ZooError(f"{flag} {given} exists and is not a folder")
        return given
    if not os.path.lexists(given):
        return given
    if given.is_dir() and ours is None:
        raise ZooError(f"cannot write {given}: it is a folder")
    if not overwrite:
        raise ZooError(f"{given} exists; pass --overwrite to replace it, or choose another {flag}")
    if ours is not None and not ours(given):
        raise ZooError(f"{given} is not {ours_what}; --overwrite replaces only those: choose another {flag}")
    return given


def confined(run_dir, path) -> Path:
    """``path``, a place inside ``run_dir`` the zoo itself writes to, if it stays inside: no symbolic link on
    the way (an ``export`` or ``checkpoints`` folder linked elsewhere is refused, never written through)."""
    run_dir, path = Path(run_dir), Path(path)
    try:
        parts = path.relative_to(run_dir).parts
    except ValueError:
        raise ZooError(f"{path} is not inside the run folder {run_dir}") from None
    step = run_dir
    for part in parts:
        step = step / part
        if part in ("..", "") or step.is_symlink():
            raise ZooError(f"{step} is a symbolic link (or leads out of the run folder {run_dir}); a run writes "
                           "only inside itself: replace it with a folder")
    if not _inside(_real(path), _real(run_dir)):
        raise ZooError(f"{path} leads out of the run folder {run_dir}; a run writes only inside itself")
    return path


def check_run_confined(run_dir) -> None:
    """Refuse a run whose own folders (``checkpoints``, ``tensorboard``, ``export``) lead out of it: resuming
    it would write (and delete old checkpoints) wherever they point."""
    for name in (CHECKPOINTS_DIR, TENSORBOARD_DIR, EXPORT_DIR):
        if os.path.lexists(Path(run_dir) / name):
            confined(run_dir, Path(run_dir) / name)


def safe_name(text: str) -> str:
    """A single folder name made of ``text`` (a model name read from a run): letters, digits, ``.``, ``_`` and
    ``-`` only, never ``.``/``..`` or hidden, so it can never name a path elsewhere."""
    name = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in str(text))[:100]
    return name.lstrip(".") or "model"

"""A run folder means the same wherever it is: what a run records about where things are, and how a run that
has moved finds its data again. Decided here, for ``train``, ``train --resume``, ``evaluate`` and ``export``.

- ``config.yaml`` records ``data`` as a data source's name (fetched wherever the run goes) or the folder's
  absolute real path, ``weights`` as the file's absolute path, and ``run_dir`` as the folder the run was
  written to: a record only, since a run's location is wherever it is now (:func:`absolute`,
  :func:`recorded_config`). Runs of older versions recorded paths relative to the directory they were
  trained from: those are still read from the current directory, as those versions did.
- ``metrics.json`` records ``data_fingerprint``, the SHA-256 of its splits' file contents: the data is
  recognised by its images, wherever they are and whatever the folder is called.
- Paths inside a config file are relative to the file's folder (:func:`catdog_zoo.config.anchored`).
- Reading a finished run (:func:`run_data`): its recorded data when that is here, else ``--data DIR``,
  with one line saying so when it is not ("data folder X recorded in RUN/config.yaml is not here: pass
  --data DIR"). A ``--data`` folder with the run's fingerprint is the run's own data, moved; any other
  folder is new photos, which ``evaluate`` scores whole (``--split all``) after a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from ..config import SPLITS
from ..data.prepare import load_splits
from ..data.sources import data_is_here, data_place, source_name
from ..data.splits import DataSplits
from ..errors import ZooError
from ..util.digest import files_digest
from ..util.names import terminal
from .layout import CONFIG_FILE, recorded_in
from .record import data_fingerprint


def absolute(cfg) -> None:
    """Make ``cfg``'s data and weights mean the same from any directory (see the module's docstring)."""
    if cfg.data is not None and (source_name(cfg.data) or Path(cfg.data).expanduser().is_dir()):
        cfg.data = data_place(cfg.data)  # a folder that is not there stays as typed, for --data's own error
    if cfg.weights is not None:
        cfg.weights = str(Path(cfg.weights).expanduser().resolve())


def recorded_config(cfg, run_dir) -> dict:
    """What ``config.yaml`` holds: ``cfg`` (made :func:`absolute` before it chose the data) with ``run_dir``
    where the run was written, absolute."""
    return {**cfg.to_dict(), "run_dir": str(Path(run_dir).resolve())}


def fingerprint(splits: DataSplits) -> str:
    """The ``data_fingerprint`` of these splits' files (their contents, in split order)."""
    return data_fingerprint(files_digest(splits.get(name).paths) for name in SPLITS)


@dataclass(frozen=True)
class RunData:
    """Where a finished run's images are now. ``own``: the images it was trained and scored on (recorded, or
    moved and recognised by fingerprint); else other photos with its classes, which ``note`` says."""

    splits: DataSplits
    own: bool
    note: Optional[str] = None


def run_data(run_dir, config, record, data: Optional[str] = None) -> RunData:
    """The data of the finished run in ``run_dir`` (``config``, ``record``: its files), or of the folder ``data``
    names instead; refused in one line when it is not here, or its class folders are not the run's."""
    if data is None:
        data_is_here(config, recorded_in(run_dir))
        splits = load_splits(config)
        _check_classes(splits, record)
        if record.data_fingerprint and record.data_fingerprint != fingerprint(splits):
            raise ZooError(f"the data of {terminal(run_dir)} is not what it was trained and scored on (its "
                           f"{CONFIG_FILE} was edited, or files under {terminal(splits.root)} changed); pass --data "
                           "to score a folder on purpose")
        return RunData(splits, True)
    splits = load_splits(replace(config, data=data))
    _check_classes(splits, record)
    own = (fingerprint(splits) == record.data_fingerprint if record.data_fingerprint
           else config.data is not None and data_place(data) == data_place(config.data))
    if own:
        return RunData(splits, True)
    return RunData(splits, False, f"{terminal(splits.root)} is not the data {terminal(Path(run_dir).name)} was trained "
                                  "on (other images, by their contents): its photos are new to the model")


def _check_classes(splits: DataSplits, record) -> None:
    """Refuse data whose class folders are not exactly the run's, naming the first missing or extra one."""
    have, want = list(splits.class_names), list(record.class_names)
    if have == want:
        return
    missing = [c for c in want if c not in have]
    extra = [c for c in have if c not in want]
    runs = f"the run's classes: {', '.join(map(terminal, want))}"
    if missing:
        raise ZooError(f"{terminal(splits.root)} has no class folder '{terminal(missing[0])}' with images ({runs})")
    if extra:
        parent = Path(splits.root) / ("train" if splits.layout == "train/validation" else "")
        raise ZooError(f"class folder {terminal(parent / extra[0])} is not one of the run's classes "
                       f"({runs}); move it out of the folder to score the others")
    raise ZooError(f"classes in {terminal(splits.root)} are in another order than the run's ({runs})")

"""Where images come from: named data sources (registered by plugins) or a local folder.

A data source (:class:`catdog_zoo.DataSource`) resolves to a folder of class folders, either directly or with
``train/`` and ``validation/`` inside. Named sources download into the Keras cache
(``$KERAS_HOME``, default ``~/.keras``) the way Keras tutorials do.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

from ..config import missing_text
from ..errors import ConfigError, ZooError
from ..plugins import get_zoo
from ..util.names import terminal
from ..util.owned import remove_ours, temp_prefix
from ..util.keras_cache import Wanted, cache_problem, is_network_failure, not_downloadable
from ..util.system import size_text

DEFAULT_SOURCE = "cats_and_dogs_filtered"
CATS_AND_DOGS_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"


def fetch_cats_and_dogs() -> Path:
    """The 3000-image cats_and_dogs_filtered set, through ``keras.utils.get_file`` and its cache."""
    return fetch_archive("cats_and_dogs.zip", CATS_AND_DOGS_URL, "cats_and_dogs_filtered", source=DEFAULT_SOURCE)


def fetch_archive(fname: str, origin: str, folder: str, source: str = "", cache_dir=None) -> Path:
    """Download ``origin`` into the Keras cache (once) and extract it safely; returns ``folder`` inside.

    Extracts into ``<archive stem>_extracted`` beside the archive, the folder Keras itself uses, so a
    cache that Keras already extracted is reused as it is.
    """
    import keras

    try:
        if cache_dir:  # Keras quietly falls back to /tmp/.keras for a cache_dir that does not exist yet
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
        archive = Path(keras.utils.get_file(fname, origin=origin, cache_dir=cache_dir))
    except Exception as exc:  # urllib errors, truncated archive, ...
        cache = cache_problem(exc)  # the disk, not the network: said as such
        if cache:
            raise ConfigError(f"could not fetch data source '{source or fname}': {cache}") from None
        if not is_network_failure(exc):
            raise ConfigError(f"could not fetch data source '{source or fname}' from {origin}: {exc} "
                              "(pass --data DIR)") from None
        raise ConfigError(not_downloadable(f"data source '{source or fname}'", Wanted(fname, "datasets", origin,
                                                                                     cache_dir), exc,
                                           "pass --data DIR")) from None
    target = archive.parent / f"{archive.name.split('.')[0]}_extracted"
    if not (target / folder).is_dir():
        safe_extract(archive, target)
    if not (target / folder).is_dir():
        raise ConfigError(f"data source '{source or fname}': {archive} has no '{folder}' folder")
    return target / folder


def _members(archive: Path):
    """``(name, is_link_or_special, unpacked bytes, packed bytes)`` of every member of a zip or tar archive (a
    tar's members are packed as a whole: their packed size is their size)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return [(i.filename, False, i.file_size, i.compress_size) for i in zf.infolist()], "zip"
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            return [(m.name, not (m.isfile() or m.isdir()), m.size, m.size) for m in tf.getmembers()], "tar"
    raise ZooError(f"{archive} is not a zip or tar archive")


MAX_RATIO = 200  # unpacked/packed of one member: photos hardly compress, a deflate bomb does by thousands


def _check_sizes(archive: Path, members, target: Path) -> None:
    """Refuse, from the archive's directory alone, what would not fit the disk or is a deflate bomb."""
    for name, _, size, packed in members:
        if size > 1 << 20 and size // max(packed, 1) > MAX_RATIO:
            raise ZooError(f"refusing to extract {archive}: its member '{name[:80]}' unpacks to "
                           f"{size // max(packed, 1)} times its packed size (a zip bomb, not images)")
    total = sum(size for _, _, size, _ in members)
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if total > free:
        raise ZooError(f"refusing to extract {archive}: it unpacks to {size_text(total)}, more than the "
                       f"{size_text(free)} free in {folder}")


def safe_extract(archive: Path, target: Path) -> None:
    """Extract ``archive`` into ``target``, refusing it whole if any member would land outside.

    Absolute names, ``..`` escapes, links and device files are refused. Extraction goes to a staging
    folder renamed to ``target`` at the end, so an interrupted extraction leaves nothing half-written. A
    ``target`` that exists already (a partial extraction of Keras', a user's files) is never deleted: what
    the archive holds is moved into it, beside what is there, and a name already taken there is kept.
    """
    members, kind = _members(archive)
    _check_sizes(archive, members, target)
    root = target.resolve()
    for name, special, _, _ in members:
        destination = (root / name).resolve()
        if special or name.startswith(("/", "\\")) or (destination != root and root not in destination.parents):
            what = "is a link or device file" if special else f"would land outside {target}"
            raise ZooError(f"refusing to extract {terminal(archive)}: member '{terminal(name)}' {what}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=temp_prefix(target.name), dir=target.parent))
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(staging, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        if target.exists() or target.is_symlink():
            for entry in staging.iterdir():  # beside what is there: nothing of it is ours to delete
                if not os.path.lexists(target / entry.name):
                    entry.rename(target / entry.name)
        else:
            staging.rename(target)
    finally:
        remove_ours(staging, "temporary")  # what is left of the staging folder (this process made it)


def data_is_here(config, where: str) -> None:
    """Refuse, saying what to pass, a configuration whose data folder is not on this machine (a data source is
    fetched wherever it runs). Light on purpose: ``evaluate`` and ``export`` say it before TensorFlow loads."""
    if config.data and source_name(config.data) is None and not Path(config.data).expanduser().is_dir():
        raise ConfigError(missing_text("data", config.data, where))


def source_name(data: Optional[str]) -> Optional[str]:
    """The registered data source ``--data`` names (nothing: the default one), or None when it names a folder
    (a folder of a source's name wins)."""
    name = data or DEFAULT_SOURCE
    return name if name in get_zoo().datasets and not Path(name).expanduser().is_dir() else None


def data_place(data: Optional[str]) -> str:
    """What ``--data`` names, whatever its spelling and the directory it was given from: a data source's name
    (fetched wherever the command runs), or the folder's absolute real path. A run records this
    (``runs/portable.py``); ``zoo`` compares it."""
    return source_name(data) or str(Path(data or DEFAULT_SOURCE).expanduser().resolve())


def resolve_data(data: Optional[str]) -> Path:
    """Turn ``--data`` (a source name, a folder, or nothing for the default) into a folder."""
    sources = get_zoo().datasets
    name = data or DEFAULT_SOURCE
    if source_name(data):
        return Path(sources[name].fetch())
    folder = Path(name).expanduser()
    if not folder.exists():
        known = ", ".join(sorted(sources)) or "none"
        raise ConfigError(f"data folder not found: {terminal(folder)} (and no data source of that name; "
                          f"known: {known})")
    if not folder.is_dir():
        raise ConfigError(f"--data must be a folder of class folders, got a file: {terminal(folder)}")
    return folder

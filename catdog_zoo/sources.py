"""Where images come from: named data sources (registered by plugins) or a local folder.

A data source resolves to a folder of class folders, either directly or with
``train/`` and ``validation/`` inside. Named sources download into the Keras cache
(``$KERAS_HOME``, default ``~/.keras``) the way Keras tutorials do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .errors import ConfigError

DEFAULT_SOURCE = "cats_and_dogs_filtered"
CATS_AND_DOGS_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"


@dataclass
class DataSource:
    """A named data source: ``fetch()`` returns the folder of class folders, downloading if needed."""

    name: str
    summary: str
    fetch: Callable[[], Path]
    plugin: str = ""


def fetch_cats_and_dogs() -> Path:
    """The 3000-image cats_and_dogs_filtered set, through ``keras.utils.get_file`` and its cache."""
    import keras

    try:
        path = Path(keras.utils.get_file("cats_and_dogs.zip", origin=CATS_AND_DOGS_URL, extract=True))
    except Exception as exc:  # urllib errors, truncated archive, ...
        raise ConfigError(f"could not fetch data source '{DEFAULT_SOURCE}' from {CATS_AND_DOGS_URL}: {exc} "
                          "(connect to the internet, or pass --data DIR)") from exc
    # Keras 3 returns the extraction folder; older Keras returned the archive path beside it.
    for candidate in (path / "cats_and_dogs_filtered", path.parent / "cats_and_dogs_filtered"):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"data source '{DEFAULT_SOURCE}': no cats_and_dogs_filtered folder near {path}")


def resolve_data(data: Optional[str]) -> Path:
    """Turn ``--data`` (a source name, a folder, or nothing for the default) into a folder."""
    from .plugins import get_zoo

    sources = get_zoo().datasets
    name = data or DEFAULT_SOURCE
    if name in sources and not Path(name).is_dir():
        return Path(sources[name].fetch())
    folder = Path(name).expanduser()
    if not folder.exists():
        known = ", ".join(sorted(sources)) or "none"
        raise ConfigError(f"data folder not found: {folder} (and no data source of that name; known: {known})")
    if not folder.is_dir():
        raise ConfigError(f"--data must be a folder of class folders, got a file: {folder}")
    return folder

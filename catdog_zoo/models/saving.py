"""A model on disk: saved whole (``.keras``, atomically), loaded in Keras safe mode, fingerprinted."""

from __future__ import annotations

from pathlib import Path

import keras

from ..errors import ZooError
from ..util.digest import arrays_digest
from ..util.files import atomic_write


def save_model(model, path) -> None:
    # Keras picks the format from the suffix, so the temporary file keeps ".keras".
    atomic_write(Path(path), model.save)


def load_model(path):
    """A ``.keras`` file loaded in Keras safe mode (no arbitrary code from the file), uncompiled."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path} is not a regular file" if path.exists() or path.is_symlink() else
                       f"no model file {path}")
    if path.stat().st_size == 0:
        raise ZooError(f"{path} is empty (0 bytes): not a Keras model")
    _check_archive(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise ZooError(f"refusing to load {path}: it contains code that would run on load "
                           "(Keras safe mode); only load models you trust") from None
        raise ZooError(_unloadable(path, exc)) from None
    except Exception as exc:  # zip/h5 errors for files that are not models at all
        raise ZooError(_unloadable(path, exc)) from None


def _unloadable(path: Path, exc: Exception) -> str:
    """One line for a model Keras cannot load. A class it cannot find (a plugin's custom layer, where that plugin
    is not installed) is named with the file; Keras' own text is two paragraphs and the whole model's config."""
    import re

    text = str(exc)
    missing = re.search(r"Could not (?:locate|deserialize) (class|function) '([^']+)'", text)
    if missing:
        kind, name = missing.groups()
        registered = re.search(r"'registered_name': '([^']*>" + re.escape(name.split(">")[-1]) + r")'", text)
        as_named = f" (registered as '{registered.group(1)}')" if registered and registered.group(1) != name else ""
        return (f"{path} uses the custom {kind} '{name}'{as_named}, which is not defined here: install the plugin "
                "that defines it (a model loads where the code of its custom layers is installed)")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{path} is not a loadable Keras model: {type(exc).__name__}: {first[:300]}"


MAX_MODEL_BYTES = 8 << 30  # unpacked: the zoo's models are megabytes; a few gigabytes is already a large model
MAX_RATIO = 200  # unpacked/packed per member: float weights compress a little, a zip bomb by thousands


def _check_archive(path: Path) -> None:
    """Refuse, from the zip directory alone, a ``.keras`` whose members would unpack to more than a model
    plausibly holds (Keras inflates the weights member whole before it could refuse anything)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # not a zip (an old HDF5 model, or garbage): Keras' own loader says what it is
    total = sum(m.file_size for m in members)
    if total > MAX_MODEL_BYTES:
        raise ZooError(f"refusing to load {path}: its members unpack to {total / 2**30:.1f} GiB, more than the "
                       f"{MAX_MODEL_BYTES >> 30} GiB a model may have")
    for m in members:
        ratio = m.file_size // max(m.compress_size, 1)
        if m.file_size > 1 << 20 and ratio > MAX_RATIO:
            raise ZooError(f"refusing to load {path}: its member {m.filename[:80]} unpacks to {ratio} times its "
                           "packed size (a zip bomb, not weights)")


def weights_digest(model) -> str:
    """sha256 of every weight's bytes: equal digests mean bit-identical models (e.g. across workers)."""
    return arrays_digest(model.get_weights())

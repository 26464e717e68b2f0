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
        raise ZooError(f"no model file {path}")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise ZooError(f"refusing to load {path}: it contains code that would run on load "
                           "(Keras safe mode); only load models you trust") from None
        raise ZooError(f"{path} is not a loadable Keras model: {exc}") from None
    except Exception as exc:  # zip/h5 errors for files that are not models at all
        raise ZooError(f"{path} is not a loadable Keras model: {type(exc).__name__}: {exc}") from None


def weights_digest(model) -> str:
    """sha256 of every weight's bytes: equal digests mean bit-identical models (e.g. across workers)."""
    return arrays_digest(model.get_weights())

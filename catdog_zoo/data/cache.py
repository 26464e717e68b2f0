"""An on-disk cache of arrays (decoded images, backbone features), keyed by everything they depend on.

Entries live under ``$CATDOG_ZOO_CACHE`` (default ``$XDG_CACHE_HOME/catdog-zoo`` or
``~/.cache/catdog-zoo``) as ``.npy`` files named by a SHA-256 key, written to a temporary name and
renamed, so a killed process never leaves a half-written entry. Deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..errors import ZooError
from ..util.files import atomic_write

CACHE_ENV = "CATDOG_ZOO_CACHE"
# Bump when the decoding or feature code changes what an entry holds.
FORMAT_VERSION = 2  # 2: decoding verdicts reworded (a cached verdict keeps its words)


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "catdog-zoo"


def key(kind: str, **parts) -> str:
    """A stable key for an entry of ``kind`` from JSON-able ``parts``."""
    blob = json.dumps({"kind": kind, "format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:32]}"


def load(name: str):
    """The cached array called ``name``, or None."""
    path = cache_root() / f"{name}.npy"
    if not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):  # unreadable entry: recompute, it will be replaced
        return None


def store(name: str, array) -> None:
    """Save ``array`` as ``name``; a cache that cannot be written is skipped, never fatal."""
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write(root / f"{name}.npy", lambda tmp: np.save(tmp, array, allow_pickle=False))
    except (OSError, ZooError):  # ZooError: atomic_write's "no space left" (the entry is simply not kept)
        pass


def cached(name: str, compute):
    """Load ``name`` from the cache, or ``compute()`` it and store it."""
    found = load(name)
    if found is not None:
        return found
    array = compute()
    store(name, array)
    return array

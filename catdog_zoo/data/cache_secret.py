"""The secret that signs cache entries: 32 random bytes only this user can read.

Cache keys are computable, and a cache folder may be shared or writable by others, so whoever can write
there could plant an entry under a key the zoo will ask for. Entries carry a MAC made with this secret,
which lives outside the cache folder (``$CATDOG_ZOO_CACHE_KEY``, default
``$XDG_CONFIG_HOME/catdog-zoo/cache.key``), is created on first use with mode 0600, and is used only when
it is a regular file owned by this user that nobody else can read or write. Without a usable one (a
read-only home) the MAC is a plain SHA-256: it still catches damaged, truncated and misplaced entries,
not a deliberate forger.
"""

from __future__ import annotations

import functools
import os
import stat
import sys
from pathlib import Path

KEY_ENV = "CATDOG_ZOO_CACHE_KEY"
SIZE = 32


def secret_path() -> Path:
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "catdog-zoo" / "cache.key"


def secret() -> bytes:
    return _secret_at(str(secret_path()))


def key_id() -> str:
    """A short name of the secret in use (a digest of it, which reveals nothing of it): entries record it, so one
    signed with another key is said to be that, not damaged."""
    import hashlib

    return hashlib.sha256(b"catdog-zoo cache key id\0" + secret()).hexdigest()[:12]


@functools.lru_cache(maxsize=4)
def _secret_at(path: str) -> bytes:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # said once: every entry made with the real key will now be recomputed
        print(f"Warning: the cache key {path} is unusable ({exc.strerror or exc}); cache entries are checked "
              "with a plain checksum instead", file=sys.stderr)
        return b""
    try:
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(SIZE))
        return _read(path)
    except FileExistsError:  # another process made it first
        try:
            return _read(path)
        except OSError:
            return b""
    except OSError:
        return b""


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise PermissionError(f"{path} is not a private file of this user")
        data = f.read(SIZE + 1)
    if len(data) != SIZE:
        raise PermissionError(f"{path} does not hold a {SIZE}-byte key")
    return data

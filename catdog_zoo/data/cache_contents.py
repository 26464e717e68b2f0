"""What the cache folder holds, by kind of entry, and clearing it (``catdog-zoo cache``).

Every entry is one file named ``KIND-KEY.entry`` (:func:`.cache.key`), so its kind is read from its name,
without opening it. Besides entries the folder may hold the temporary files of writers (one that died leaves
its own), the ``.npy`` files of format 2 (catdog-zoo before signed entries; nothing reads them now, nothing
removed them), and whatever a user put there: those are counted and never removed.

Clearing is safe beside a running ``train``: every cache writer holds the folder's lock shared while it
writes an entry (:class:`.cache.Writer`), and clearing holds it exclusively, so it is refused, naming the
writer, rather than removing an entry being written. A reader keeps what it opened: a removed entry stays
readable to it, and is computed again by the next run that needs it.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..util.locks import LOCK_FILE, folder_lock
from ..util.owned import is_ours
from .cache import cache_root, remove_leftovers
from .entries import SUFFIX

# Each kind, what it holds, and the entry kinds (cache.key's first argument, or a glob of them) it gathers.
KINDS = {
    "decoded": ("decoded images at one size, and which files decode", ("decoded",)),
    "features": ("a frozen backbone's features (and activations for fine-tuning)", ("features",)),
    "engines": ("frozen backbones converted by an engine (TFLite, OpenVINO, a plugin's)", ("engine-*",)),
    "facts": ("parameter and FLOP counts of models (for 'models')", ("facts",)),
    "old": ("format 2 (.npy) files of an older catdog-zoo: never read now", ()),
    "unfinished": ("entries being written now, or left by a writer that was killed", ()),
}
OTHER = "other"  # not written by catdog-zoo: counted, never removed
_HASH = "[0-9a-f]{32}"
_ENTRY = re.compile(rf"^(?P<kind>[a-z][a-z0-9-]*?)-{_HASH}(?:-[a-z]+)?{re.escape(SUFFIX)}$")
# Format 2: KIND-KEY.npy and KIND-KEY-reasons.npy, and the temporaries its writes left (.NAME-XXXXXXXX.npy).
_FORMAT_2 = re.compile(rf"^\.?[a-z][a-z0-9-]*?-{_HASH}(?:-[a-z]+)?(?:-[a-z0-9_]{{8}})?\.npy$")


@dataclass(frozen=True)
class Found:
    path: Path
    kind: str  # a key of KINDS, an entry kind this version does not know, or OTHER
    bytes: int


def kind_of(path: Path) -> str:
    """The kind of the file at ``path`` in the cache folder, from its name."""
    if is_ours(path, "temporary"):
        return "unfinished"
    if _FORMAT_2.match(path.name):
        return "old"
    entry = _ENTRY.match(path.name)
    if entry is None:
        return OTHER
    return next((kind for kind, (_, names) in KINDS.items() if any(fnmatch.fnmatchcase(entry["kind"], name)
                                                                   for name in names)), entry["kind"])


def contents(root=None) -> list:
    """Every file in the cache folder (none when it does not exist) as :class:`Found`, the lock file left out;
    links and folders are the user's (the cache writes neither)."""
    root = Path(root or cache_root())
    try:
        listing = list(os.scandir(root))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot read the cache folder {root}: {exc.strerror or exc}") from None
    found = []
    for item in listing:
        if item.name == LOCK_FILE:
            continue
        try:
            regular = item.is_file(follow_symlinks=False)
            size = item.stat(follow_symlinks=False).st_size if regular else 0
        except OSError:  # removed meanwhile (a writer renaming its temporary): not there any more
            continue
        found.append(Found(Path(item.path), kind_of(Path(item.path)) if regular else OTHER, size))
    return found


def totals(found) -> dict:
    """``{kind: {"files", "bytes"}}``, the known kinds first, in :data:`KINDS` order, then the rest by name."""
    out: dict = {}
    for f in found:
        counted = out.setdefault(f.kind, {"files": 0, "bytes": 0})
        counted["files"] += 1
        counted["bytes"] += f.bytes
    order = {kind: i for i, kind in enumerate(KINDS)}
    return dict(sorted(out.items(), key=lambda item: (order.get(item[0], len(order)), item[0] == OTHER, item[0])))


def clear(kinds=None, root=None) -> dict:
    """Remove every file of ``kinds`` (default: all of catdog-zoo's, never :data:`OTHER`) from the cache folder,
    holding its lock exclusively; ``{kind: {"files", "bytes"}}`` of what was removed. A writer working there
    now makes it refuse (:func:`~catdog_zoo.util.locks.folder_lock` names it); a temporary file still locked
    by its writer (one that does not take the folder lock) stays."""
    root = Path(root or cache_root())
    if not root.is_dir():
        return {}
    removed = []
    with folder_lock(root, what="cache folder"):
        for f in contents(root):
            if f.kind == OTHER or (kinds and f.kind not in kinds) or f.kind == "unfinished":
                continue
            try:
                f.path.unlink()
            except FileNotFoundError:
                continue
            removed.append(f)
        if not kinds or "unfinished" in kinds:
            before = [f for f in contents(root) if f.kind == "unfinished"]
            remove_leftovers(root, min_age=0)  # the writers' own locks: one still writing keeps its file
            removed += [f for f in before if not f.path.exists()]
    return totals(removed)

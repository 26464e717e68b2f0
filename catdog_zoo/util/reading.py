"""Reading the small files a user or someone else made (config files, a shared run's ``config.yaml`` and
``metrics.json``): regular files only, bounded in size, YAML without aliases.

A run folder can come from anyone. Its ``config.yaml`` may be a symlink to ``/dev/zero`` (memory without
end), a FIFO (a read that never returns), gigabytes, or 484 bytes of YAML aliases that expand into
gigabytes once parsed. Each is refused here with one line, before anything is read or parsed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from ..errors import ZooError


def read_small_text(path, limit: int, what: str = "file", follow_symlinks: bool = True, error=ZooError) -> str:
    """The UTF-8 text of ``path``, which must be a regular file of at most ``limit`` bytes.

    ``follow_symlinks=False`` (run folders): a symlink is refused too. Opening never blocks (a FIFO is
    opened non-blocking, then refused). Problems raise ``error`` (a :class:`ZooError`) with one line.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as exc:
        if not follow_symlinks and path.is_symlink():
            raise error(f"{what} {path} is a symbolic link; only regular files are read") from None
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        raise error(f"{what} {path} is not a regular file" if not stat.S_ISREG(info.st_mode) else
                    f"{what} {path} is {info.st_size} bytes, more than the {limit} a {what} may have")
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{what} {path} grew past {limit} bytes while being read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe subset without anchors and aliases: nothing in a config needs them, and they are how a
    few hundred bytes expand into gigabytes ("billion laughs")."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(None, None, "aliases (*name) are not allowed here",
                                                    event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        # A key given twice: PyYAML keeps the last in silence, which hides an edit or a mistake.
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {str(key)[:40]!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep)


def parse_yaml(text: str):
    """``yaml.safe_load`` without aliases; raises ``yaml.YAMLError`` (:func:`yaml_problem` words it)."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: what is wrong and on which line (PyYAML's own text spans four lines)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or str(exc).splitlines()[0]}{where}"[:300]


def read_yaml(path, limit: int, what: str = "file", follow_symlinks: bool = True, error=ZooError):
    """:func:`read_small_text` then :func:`parse_yaml`; malformed YAML is one ``error`` line too."""
    text = read_small_text(path, limit, what, follow_symlinks, error)
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        raise error(f"malformed YAML in {path}: {yaml_problem(exc)}") from None
    except RecursionError:  # "[[[[...": PyYAML's composer recurses once per level
        raise error(f"malformed YAML in {path}: nested deeper than a config can be") from None

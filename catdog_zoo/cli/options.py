"""The ``train`` command's flags, derived from the config declaration (:data:`catdog_zoo.config.KEYS`).

Types, bounds, choices, help text and the defaults shown in ``--help`` all come from there, so a flag
is checked by click while parsing, before anything is imported or loaded (exit status 2).
"""

from __future__ import annotations

import click

from ..config import KEYS, Key, number_text
from ..errors import ConfigError


class KeyType(click.ParamType):
    """A value checked by its key's own rule (bounds, ``N|HxW`` sizes, a layer index or name)."""

    def __init__(self, key: Key):
        self.key = key
        self.name = key.metavar or {"int": "INTEGER", "float": "NUMBER"}.get(key.kind, key.kind.upper())

    def convert(self, value, param, ctx):
        try:
            return self.key.check(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


def click_type(key: Key):
    if key.kind == "choice":
        return click.Choice(key.choices)
    if key.kind == "str":
        return click.STRING
    return KeyType(key)  # the declaration's own check: the same message as for a YAML value


def _range(key: Key) -> str:
    if key.minimum is None or key.kind not in ("int", "float", "size"):
        return ""
    low = f"{number_text(key.minimum)}{'<' if key.open_minimum else '<='}"
    high = "" if key.maximum is None else f"{'<' if key.open_maximum else '<='}{number_text(key.maximum)}"
    return f"{low}x{high}"


def help_text(key: Key) -> str:
    """The declared help, its range, and its default (keys without one say in their help what happens)."""
    facts = [_range(key), "" if key.default is None else f"default: {key.default_text()}"]
    shown = "; ".join(f for f in facts if f)
    return f"{key.help} [{shown}]" if shown else key.help


def option_for(key: Key):
    """The click option of one key; its value is None unless given (the config file or model decides)."""
    if key.flag == "switch":
        return click.option(f"{key.option}/--no-{key.option[2:]}", key.name, default=None, help=help_text(key))
    if key.flag == "on":
        return click.option(key.option, key.name, is_flag=True, default=None, help=help_text(key))
    if key.flag == "repeat":  # given several times: one tuple, checked by the key (None when never given)
        return click.option(key.option, key.name, multiple=True, metavar=key.metavar, help=help_text(key),
                            callback=lambda ctx, param, value: _checked(key, value, param, ctx) if value else None)
    kind = click_type(key)
    return click.option(key.option, key.name, type=kind, default=None, metavar=getattr(kind, "name", None)
                        if isinstance(kind, KeyType) else key.metavar, help=help_text(key))


def _checked(key: Key, value, param, ctx):
    try:
        return key.check(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def options_for(*names):
    """A decorator adding the options of the named config keys, in declaration order (``lr-find`` takes a few)."""
    def decorate(fn):
        for key in reversed([k for k in KEYS.values() if k.name in names]):
            fn = option_for(key)(fn)
        return fn
    return decorate


def config_options(fn):
    """Decorate a command with one option per flag-able config key, in declaration order."""
    return options_for(*(k.name for k in KEYS.values() if k.flag != "none"))(fn)

"""The ``train`` command's flags, derived from the config declaration (:data:`catdog_zoo.config.KEYS`).

Types, bounds, choices, help text and the defaults shown in ``--help`` all come from there, so a flag
is checked by click while parsing, before anything is imported or loaded (exit status 2).
"""

from __future__ import annotations

import click

from ..config import KEYS, Key
from ..errors import ConfigError


class KeyType(click.ParamType):
    """A value checked by its key's own rule (``N|HxW`` sizes, layer index or name)."""

    def __init__(self, key: Key):
        self.key = key
        self.name = key.metavar or key.kind

    def convert(self, value, param, ctx):
        try:
            return self.key.check(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


def click_type(key: Key):
    bounds = dict(min=key.minimum, max=key.maximum, min_open=key.open_minimum, max_open=key.open_maximum)
    if key.kind == "int":
        return click.IntRange(**bounds)
    if key.kind == "float":
        return click.FloatRange(**bounds)
    if key.kind == "choice":
        return click.Choice(key.choices)
    if key.kind == "str":
        return click.STRING
    return KeyType(key)


def help_text(key: Key) -> str:
    return f"{key.help} [default: {key.default_text()}]"


def option_for(key: Key):
    """The click option of one key; its value is None unless given (the config file or model decides)."""
    if key.flag == "switch":
        return click.option(f"{key.option}/--no-{key.option[2:]}", key.name, default=None, help=help_text(key))
    if key.flag == "on":
        return click.option(key.option, key.name, is_flag=True, default=None, help=help_text(key))
    return click.option(key.option, key.name, type=click_type(key), default=None, metavar=key.metavar,
                        help=help_text(key))


def config_options(fn):
    """Decorate a command with one option per flag-able config key, in declaration order."""
    for key in reversed([k for k in KEYS.values() if k.flag != "none"]):
        fn = option_for(key)(fn)
    return fn

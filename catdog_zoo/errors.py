"""Errors a user can act on.

Everything the CLI reports as a one-line ``Error: ...`` is a :class:`ZooError`;
anything else escaping is a bug and keeps its traceback.
"""


class ZooError(Exception):
    """A problem with the user's input or environment, with a message that says what to fix."""

    exit_code = 1


class ConfigError(ZooError):
    """A bad flag, config key or value; raised before any work starts (exit code 2, like click)."""

    exit_code = 2


class UnknownModelError(ConfigError):
    """The model name matches nothing installed."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGINT) during a run whose directory exists: the last finished epoch is kept there."""

    def __init__(self, run_dir):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception in one line for a message (a plugin's or converter's errors run to whole
    pages), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__

"""The ``catdog-zoo`` command line: a thin click layer over the Python API.

Every command that prints data takes ``--json``; every user error is one line on stderr
(``Error: ...``) with a non-zero exit code (2 for bad flags or config values). Commands live in
small modules by what they work on (:mod:`.catalog`, :mod:`.data`, :mod:`.train`, :mod:`.runs`);
plugins add theirs through the ``register_commands`` hook.
"""

from __future__ import annotations

import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) buries the output; keep warnings+.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402

from ..errors import ZooError  # noqa: E402
from ..plugins import get_zoo  # noqa: E402
from ..util.names import terminal  # noqa: E402
from ..util.system import address_space_note, described, problem  # noqa: E402
from . import audit, cache, catalog, data, install, runs, serve, train  # noqa: E402
from .check_plugin import check_plugin  # noqa: E402
from ..util.quiet import filter_tensorflow_noise  # noqa: E402


class ZooGroup(click.Group):
    """Turns :class:`~catdog_zoo.ZooError` and click's usage errors into one line and an exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            click.echo(terminal(f"Error: {exc}"), err=True)  # one line, whatever the names it quotes hold
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:  # a bad flag of a subcommand: one line, and where to look
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            click.echo(terminal(f"Error: {exc.format_message()} (see '{where} --help')"), err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, BrokenPipeError):
            raise
        except Exception as exc:  # noqa: BLE001 - the system's limits are said in one line; the rest is re-raised
            if problem(exc, context=False) is None:  # not the system's limits: a bug, which keeps its traceback
                raise
            doing = f"catdog-zoo {ctx.invoked_subcommand} stopped: " if ctx.invoked_subcommand else ""
            click.echo(terminal(f"Error: {doing}{described(exc, context=False)}"), err=True)
            ctx.exit(1)
        except KeyboardInterrupt as exc:  # 130, the shell's convention for SIGINT, and how to go on
            run_dir = getattr(exc, "run_dir", None)
            hint = (f"; the run keeps its last finished epoch: continue with 'catdog-zoo train --resume "
                    f"{terminal(run_dir)}'"
                    if run_dir else "")
            click.echo(f"\nInterrupted{hint}", err=True)
            ctx.exit(130)


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="catdog-zoo", prog_name="catdog-zoo")
def cli():
    """Train and compare image classifiers from folders of images.

    Every architecture is a plugin: `catdog-zoo models` lists what is installed and
    `catdog-zoo install` of a plugin adds more. Data is a folder of class folders (--data DIR)
    or a named source; the default is cats_and_dogs_filtered, downloaded into the Keras cache.

    \b
    The reference workflow, step by step:
      catdog-zoo data stats                 # images per class, majority-class baseline
      catdog-zoo data show --out grid.png   # three random images of each class
      catdog-zoo train baseline             # from-scratch CNN (then dropout, augmentation, ...)
      catdog-zoo train mobilenet_v2         # transfer learning, ~98% validation accuracy
      catdog-zoo evaluate runs/mobilenet_v2-TIME --split test
      catdog-zoo predict runs/mobilenet_v2-TIME my_photos/
      catdog-zoo zoo                        # all of the above for every model, then a leaderboard
    """


for command in (catalog.models, catalog.plugins, catalog.info, data.data, audit.audit, train.train, runs.evaluate,
                runs.predict, serve.serve, runs.export, data.augment_preview, runs.compare, train.zoo, train.lr_find,
                catalog.new_plugin, install.install, install.uninstall, cache.cache):
    cli.add_command(command)
cli.add_command(check_plugin)  # the conformance kit (catdog_zoo/conformance/)


# Commands that must work whatever the installed plugins do at import (even os._exit or a hang): they never load them.
WITHOUT_PLUGINS = ("--version", "install", "uninstall", "cache")


def main():
    import sys

    filter_tensorflow_noise()
    first = next((a for a in sys.argv[1:] if a == "--version" or not a.startswith("-")), None)
    if first not in WITHOUT_PLUGINS:
        note = address_space_note()  # TensorFlow's C++ aborts under a small ulimit -v: said while Python can
        if note:
            click.echo(note, err=True)
        try:
            get_zoo().register_commands(cli)
        except KeyboardInterrupt as exc:  # Ctrl-C while a plugin loaded: name it (it may be what hangs)
            click.echo(f"\nInterrupted{f' {exc}' if str(exc) else ''}", err=True)
            leave(130)
    try:
        cli()
    except SystemExit as exc:
        leave(exc.code)
    leave(0)


def leave(code) -> None:
    """End the process with ``code`` (a ``SystemExit`` code). With TensorFlow loaded, Python's own teardown
    of the interpreter (freeing every module and graph) takes about half a second and does nothing a finished
    command needs, so it is skipped: what the exit would run is run here (threads' exit hooks and a wait for
    threads that are not daemons, ``atexit`` handlers, flushing stdout and stderr), then ``os._exit``. Every
    file the commands write is closed before they return."""
    import sys
    import threading

    if isinstance(code, str):  # SystemExit("message"): printed, exit status 1, as Python does
        print(terminal(code), file=sys.stderr)
        code = 1
    code = 0 if code is None else code
    if "tensorflow" not in sys.modules or not isinstance(code, int):  # nothing slow to skip
        raise SystemExit(code)
    import atexit

    for step in (getattr(threading, "_shutdown", None), getattr(atexit, "_run_exitfuncs", None)):
        if step is not None:
            step()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head) or stream: nothing more can be said there
            pass
    os._exit(code)

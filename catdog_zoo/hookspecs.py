"""The hooks a catdog-zoo plugin can implement.

A plugin is any module (usually one per distribution entry point in the
``catdog_zoo`` group) with functions decorated by :data:`hookimpl` whose names
match the specifications below. Each docstring here is the reference for that
hook; ``docs/plugins.md`` is checked against them by the test suite.

Every hook receives a callback instead of returning values, as ``llm`` does:
a plugin can register as many things as it likes and the core decides how they
are stored, checked and reported.
"""

import pluggy

PROJECT_NAME = "catdog_zoo"

# The version of the plugin API: these hooks plus the names in ``catdog_zoo.PLUGIN_API`` (ModelSpec,
# TrainingDefaults, DataSource, the extension specs, hookimpl, the shared blocks in ``catdog_zoo.blocks``, the
# errors).
# A plugin module may declare the version it was written for as ``CATDOG_ZOO_API_VERSION = 3`` at
# module level; one declaring a version not in SUPPORTED_API_VERSIONS is listed by ``catdog-zoo plugins``
# as skipped, with the reason, and is never imported. Version 3 added the engine, exporter, tracker and
# stage hooks (catdog_zoo/extensions.py); a version-2 plugin uses none of them and keeps working.
PLUGIN_API_VERSION = 3
SUPPORTED_API_VERSIONS = (2, 3)

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_models(register):
    """Register one or more model architectures.

    Called once per process, the first time the registry is used.

    :param register: ``register(spec)`` where ``spec`` is a
        :class:`catdog_zoo.ModelSpec`. The core fills in the
        plugin name, distribution and version; a name already taken by another
        plugin is reported as a conflict naming both distributions. The name of a
        built-in model (one of the distributions catdog-zoo ships with) stays the
        built-in's: the plugin's spec is not registered and the plugin is reported
        as failed for that name.
    :returns: nothing (return values are ignored).
    """


@hookspec
def register_datasets(register):
    """Register named data sources, usable as ``--data NAME``.

    Called once per process, the first time a data source is resolved.

    :param register: ``register(source)`` where ``source`` is a
        :class:`catdog_zoo.DataSource`: a name, a one-line summary and a
        ``fetch()`` callable returning the path of a folder of class folders
        (optionally with ``train/`` and ``validation/`` inside).
    :returns: nothing (return values are ignored).
    """


@hookspec
def register_commands(cli):
    """Add subcommands to the ``catdog-zoo`` command line.

    Called once when the CLI starts, after the built-in commands exist.

    :param cli: the root :class:`click.Group`; add commands with
        ``@cli.command()`` or ``cli.add_command(...)``. A command may be added, never
        replaced or removed: one whose name is taken (a built-in command, or another
        plugin's) is put back and the plugin reported as failed for it.
    :returns: nothing (return values are ignored).
    """


@hookspec
def register_engines(register):
    """Register feature-extraction engines, usable as ``--engine NAME``.

    Called once per process, the first time the registry is used.

    :param register: ``register(spec)`` where ``spec`` is a :class:`catdog_zoo.EngineSpec`. A name
        already taken is reported as a conflict naming both distributions; a built-in engine's name
        stays the built-in's.
    :returns: nothing (return values are ignored).
    """


@hookspec
def register_exporters(register):
    """Register export formats, usable as ``catdog-zoo export --format NAME``.

    Called once per process, the first time the registry is used.

    :param register: ``register(spec)`` where ``spec`` is a :class:`catdog_zoo.ExporterSpec`. Names
        are taken as for engines.
    :returns: nothing (return values are ignored).
    """


@hookspec
def register_trackers(register):
    """Register experiment trackers, usable as ``catdog-zoo train --track NAME``.

    Called once per process, the first time the registry is used.

    :param register: ``register(spec)`` where ``spec`` is a :class:`catdog_zoo.TrackerSpec`. Names
        are taken as for engines.
    :returns: nothing (return values are ignored).
    """


@hookspec
def register_stages(register):
    """Register training stages, planned into every run they apply to.

    Called once per process, the first time the registry is used.

    :param register: ``register(spec)`` where ``spec`` is a :class:`catdog_zoo.StageSpec`. Names
        are taken as for engines.
    :returns: nothing (return values are ignored).
    """

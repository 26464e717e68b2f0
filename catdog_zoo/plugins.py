"""Plugin discovery and loading, isolated so that one broken plugin never breaks the zoo.

Plugins are modules named by entry points in the ``catdog_zoo`` group. The core's own
built-in plugin goes through the same machinery, as ``llm``'s default plugins do.

Unlike ``pluggy.PluginManager.load_setuptools_entrypoints``, each entry point is imported and
each hook implementation is called on its own, inside ``try``: a failure is recorded on that
plugin's :class:`PluginInfo` (shown by ``catdog-zoo plugins``) and everything else keeps working.
That includes what is not an ``Exception``: a plugin calling ``sys.exit()`` or raising
``KeyboardInterrupt`` at import is a failed plugin, not the end of the program (a real Ctrl-C still
stops it, naming the plugin it interrupted); what a plugin prints while it loads goes to stderr, so
``--json`` output stays JSON. The names the tool ships with are not a plugin's to take: a built-in
model or data source name, or a built-in command, stays the built-in's, and the plugin that tried is
reported as failed for that name, naming both distributions.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata
import importlib.util
import os
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field
from typing import Optional

import pluggy

from . import extensions, hookspecs
from .errors import ConfigError, UnknownModelError, ZooError
from .registry import ModelSpec, Registry, with_origin
from .util.version import __version__

ENTRY_POINT_GROUP = "catdog_zoo"
# Comma-separated plugin (entry point) or distribution names to skip, like pytest's -p no:NAME.
DISABLE_ENV = "CATDOG_ZOO_DISABLE"
BUILTIN_PLUGINS = ("catdog_zoo.default_plugins.cats_and_dogs", "catdog_zoo.models.builtin_engines",
                   "catdog_zoo.runs.builtin_exporters", "catdog_zoo.training.builtin_stages",
                   "catdog_zoo.training.tensorboard")
# The distributions the tool ships with (the core and plugins/): their model names win a conflict.
BUILTIN_DISTRIBUTIONS = frozenset({"catdog-zoo", "catdog-zoo-baseline", "catdog-zoo-dropout",
                                   "catdog-zoo-augmentation", "catdog-zoo-mobilenet-v2", "catdog-zoo-preprocess"})
SLOW_SECONDS = 20.0  # a plugin still loading after this long is named on stderr (it may hang)


@dataclass
class PluginInfo:
    """What ``catdog-zoo plugins`` reports about one plugin."""

    name: str
    module: str = ""
    distribution: str = ""
    version: str = ""
    hooks: list = field(default_factory=list)
    models: list = field(default_factory=list)
    datasets: list = field(default_factory=list)
    commands: list = field(default_factory=list)
    engines: list = field(default_factory=list)
    exporters: list = field(default_factory=list)
    trackers: list = field(default_factory=list)
    stages: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    disabled: bool = False
    skipped: str = ""  # why the plugin was not loaded (an incompatible API version)

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        if self.skipped:
            return "skipped"
        return "error" if self.errors else "ok"

    @property
    def builtin(self) -> bool:
        return self.distribution in BUILTIN_DISTRIBUTIONS

    @property
    def origin(self) -> str:
        return self.distribution or self.module

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status}


class Zoo:
    """The loaded plugins with the models and data sources they registered."""

    def __init__(self, entry_points=None, builtins=BUILTIN_PLUGINS):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.models = Registry()
        self.datasets: dict = {}
        # engines, exporters, trackers, stages: name -> spec (catdog_zoo/extensions.py), built-in ones first
        self.extensions: dict = {kind: {} for kind in extensions.KINDS}
        disabled = _disabled_names()
        for module_name in builtins:
            info = PluginInfo(name=module_name, module=module_name, distribution="catdog-zoo",
                              version=__version__)
            self._register(info, lambda m=module_name: importlib.import_module(m))
        for ep in _unique(entry_points if entry_points is not None
                          else importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(name=ep.name, module=ep.value,
                              distribution=dist.name if dist else "", version=dist.version if dist else "")
            if _loadable(info, ep, disabled):
                self._register(info, ep.load)
            else:
                self.plugins.setdefault(ep.name, info)
        self._call_each("register_models", lambda info: {"register": _model_registrar(self, info)})
        self._call_each("register_datasets", lambda info: {"register": _dataset_registrar(self, info)})
        for kind, (hook, spec_class) in extensions.KINDS.items():
            self._call_each(hook, lambda info, kind=kind, spec_class=spec_class:
                            {"register": _extension_registrar(self, info, kind, spec_class)})

    def extension(self, kind: str, name: str, flag: str = ""):
        """The ``kind`` ("engines", "exporters", ...) registered as ``name``; an unknown one is one error listing
        the known names (and, when a plugin of that name failed to load, its error)."""
        known = self.extensions[kind]
        if name in known:
            return known[name]
        what = flag or kind[:-1]
        info = self.plugins.get(name)
        if info is not None and info.status != "ok":
            why = info.errors[0] if info.errors else info.skipped or "disabled with " + DISABLE_ENV
            raise ConfigError(f"{what} '{name}' is unavailable: plugin {info.origin} {why}")
        raise ConfigError(f"unknown {what} '{name}' (known: {', '.join(sorted(known)) or 'none'}; see "
                          "'catdog-zoo plugins')")

    def model(self, name: str) -> ModelSpec:
        """The spec registered as ``name``; when a plugin of that name failed to load, its error."""
        try:
            return self.models.get(name)
        except UnknownModelError:
            info = self.plugins.get(name)
            if info is not None and info.status != "ok":
                why = info.errors[0] if info.errors else info.skipped or "disabled with " + DISABLE_ENV
                raise ZooError(f"model '{name}' is unavailable: plugin {info.distribution or info.module} "
                               f"{why}") from None
            if not self.models.list():
                raise UnknownModelError(f"unknown model '{name}': no models are installed. "
                                        f"{where_models_are()}") from None
            raise

    def register_commands(self, cli) -> None:
        """Let every plugin add its subcommands to the root click group. A plugin may add commands, never
        replace or remove one: a name taken (a built-in command, or another plugin's) keeps its command, and
        the plugin is reported as failed for it, naming both."""
        owners = {name: "catdog-zoo" for name in cli.commands}

        def watched(info, call):
            before = dict(cli.commands)
            try:
                call()
            finally:
                _keep_commands(cli, before, owners, info)
        self._call_each("register_commands", lambda info: {"cli": cli}, around=watched)

    # -- loading ---------------------------------------------------------------------------
    def _register(self, info: PluginInfo, load) -> None:
        if info.name in self.plugins:
            other = self.plugins[info.name]
            info.errors.append(f"plugin name '{info.name}' is already used by "
                               f"{other.distribution or other.module}; not loaded")
            self.plugins[f"{info.name} ({info.distribution or info.module})"] = info
            return
        self.plugins[info.name] = info
        module, failed = _isolated(info, "importing it", lambda: self._loaded(load, info))
        if failed:  # a plugin's import can fail in any way, sys.exit() included; report, never crash
            info.errors.append(f"failed to load: {failed}")
            return
        for impl_name in _marked(module, "impl"):
            if impl_name not in HOOK_NAMES:
                info.errors.append(f"unknown hook '{impl_name}' (see catdog_zoo/hookspecs.py)")
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(module) or [])

    def _loaded(self, load, info: PluginInfo):
        module = load()
        self.pm.register(module, name=info.name)
        return module

    def _call_each(self, hook_name: str, kwargs_for, around=None) -> None:
        """Every plugin's ``hook_name``, the built-in ones first (their names win), each isolated."""
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        for impl in sorted(impls, key=lambda i: not self.plugins[i.plugin_name].builtin):
            info = self.plugins[impl.plugin_name]
            available = kwargs_for(info)

            def call(impl=impl, available=available):
                impl.function(**{arg: available[arg] for arg in impl.argnames})
            _, failed = _isolated(info, f"in {hook_name}",
                                  (lambda: around(info, call)) if around is not None else call)
            if failed:
                info.errors.append(f"{hook_name} failed: {failed}")


# -- what each hook's register() does with what a plugin gives it ------------------------------
def _model_registrar(zoo: Zoo, info: PluginInfo):
    def register(spec: ModelSpec) -> None:
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"register() takes a catdog_zoo.ModelSpec, got {type(spec).__name__}")
        spec = with_origin(spec, info.name, info.distribution, info.version)
        builtin = [s for s in zoo.models.named(spec.name) if s.distribution in BUILTIN_DISTRIBUTIONS]
        if builtin and not info.builtin:  # a built-in model's name stays the built-in's
            info.errors.append(f"model name '{spec.name}' belongs to the built-in model of "
                               f"{builtin[0].distribution}; {info.origin}'s '{spec.name}' was not registered "
                               "(rename it)")
            return
        conflict = zoo.models.add(spec)
        if conflict:
            info.errors.append(conflict)
        info.models.append(spec.name)
    return register

def _extension_registrar(zoo: Zoo, info: PluginInfo, kind: str, spec_class):
    """``register(spec)`` for one extension point: a built-in's name stays the built-in's, a name taken by
    another plugin stays the first one's; either way the plugin is reported as failed for it."""
    def register(spec) -> None:
        if not isinstance(spec, spec_class):
            raise TypeError(f"register() takes a catdog_zoo.{spec_class.__name__}, got {type(spec).__name__}")
        taken = zoo.extensions[kind].get(spec.name)
        if taken is not None:
            info.errors.append(f"{kind[:-1]} name '{spec.name}' is already registered by "
                               f"{taken.distribution or taken.plugin}; {info.origin}'s was not registered "
                               "(rename it)")
            return
        zoo.extensions[kind][spec.name] = extensions.with_origin(spec, info.name, info.distribution,
                                                                   info.version)
        getattr(info, kind).append(spec.name)
    return register

def _dataset_registrar(zoo: Zoo, info: PluginInfo):
    def register(source) -> None:
        if source.name in zoo.datasets:
            info.errors.append(f"data source '{source.name}' is already registered by "
                               f"{zoo.datasets[source.name].plugin}")
            return
        source.plugin = info.distribution or info.name
        zoo.datasets[source.name] = source
        info.datasets.append(source.name)
    return register


_zoo: Optional[Zoo] = None


def where_models_are() -> str:
    """Where the reference models come from, in words: every model is a plugin, and installing the core alone
    (a wheel, or ``pip install -e .`` of a clone) installs none of them. They are the distributions under
    ``plugins/`` of a clone: named by their path when this core runs from one."""
    import shlex
    from pathlib import Path

    clone = Path(__file__).resolve().parent.parent
    if any((clone / "plugins").glob("*/pyproject.toml")):
        plugins = shlex.quote(str(clone / "plugins")) + "/*/"
        return f"The reference models are plugins in this clone: catdog-zoo install {plugins}"
    return ("The reference models are plugins in a clone of catdog-zoo: from its folder, catdog-zoo install "
            "plugins/*/ (or the wheels 'make dist' builds there: catdog-zoo install dist/catdog_zoo_*.whl)")


def get_zoo() -> Zoo:
    """The process-wide zoo, loaded on first use."""
    global _zoo
    if _zoo is None:
        _zoo = Zoo()
    return _zoo


def reset_zoo() -> None:
    """Forget the loaded plugins (after installing or removing one in-process, and in tests)."""
    global _zoo
    _zoo = None


def _loadable(info: PluginInfo, ep, disabled: set) -> bool:
    """Whether to import the entry point ``ep``: not disabled, and written for this plugin API (said on ``info``)."""
    if ep.name in disabled or info.distribution in disabled:
        info.disabled = True
        return False
    declared, failed = _isolated(info, "reading its API version",
                                 lambda: declared_api_version(ep.value.split(":")[0].strip()))
    if failed:  # finding the module ran a parent package's __init__, which failed
        info.errors.append(f"failed to load: {failed}")
        return False
    if declared is not None and declared not in hookspecs.SUPPORTED_API_VERSIONS:
        supported = " and ".join(map(str, hookspecs.SUPPORTED_API_VERSIONS))
        info.skipped = (f"written for plugin API {declared}, this catdog-zoo provides {supported}; upgrade one of "
                        "them")
        return False
    return True


def _keep_commands(cli, before: dict, owners: dict, info: PluginInfo) -> None:
    """After ``info``'s plugin added its commands: any it replaced or removed is put back and said on ``info``."""
    for name, command in list(cli.commands.items()):
        if name not in before:
            owners[name] = info.origin
            info.commands.append(name)
        elif command is not before[name]:
            cli.commands[name] = before[name]
            info.errors.append(f"command '{name}' belongs to {owners.get(name, 'catdog-zoo')}; {info.origin}'s "
                               f"'{name}' was not added (rename it)")
    for name in set(before) - set(cli.commands):
        cli.commands[name] = before[name]
        info.errors.append(f"removed the command '{name}' of {owners.get(name, 'catdog-zoo')}; it was put back")


def _isolated(info: PluginInfo, doing: str, call) -> tuple:
    """``(call(), "")``, or ``(None, why)`` when the plugin's code raised anything at all (``sys.exit()`` and a
    ``KeyboardInterrupt`` no one pressed included). Meanwhile the plugin's prints go to stderr, a real Ctrl-C
    stops the program naming the plugin, and a plugin that takes long is named once on stderr."""
    who = f"plugin {info.name} ({info.origin})"
    with _stdout_to_stderr(), _ctrl_c_watch() as pressed, _slow_note(who, doing):
        try:
            return call(), ""
        except KeyboardInterrupt as exc:
            if pressed:
                raise KeyboardInterrupt(f"while {doing}: {who}; {DISABLE_ENV}={info.name} skips it") from None
            return None, f"raised KeyboardInterrupt{f'({exc})' if str(exc) else ''} while {doing}, with no Ctrl-C " \
                         "pressed"
        except SystemExit as exc:
            return None, f"called sys.exit({'' if exc.code is None else repr(exc.code)[:60]}) while {doing}; a " \
                         "plugin may not end the program"
        except BaseException as exc:  # noqa: BLE001 - whatever a plugin raises, the tool goes on
            return None, f"{type(exc).__name__}: {str(exc)[:500]}"


@contextlib.contextmanager
def _stdout_to_stderr():
    """stdout (Python's and file descriptor 1) sent to stderr: a plugin's chatter never mixes into ``--json``."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    saved = None
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no descriptor 1 or 2 to speak of: Python's own stdout is still redirected
        if saved is not None:
            os.close(saved)
            saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def _ctrl_c_watch():
    """A list that holds True once a real SIGINT arrived (main thread only; elsewhere it stays empty)."""
    pressed: list = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            pressed.append(True)
            raise KeyboardInterrupt
        if callable(previous) or previous in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signal.SIGINT, handler)
        else:  # ignored (SIG_IGN), or set from C: left as it is
            previous = None
    try:
        yield pressed
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _slow_note(who: str, doing: str):
    def note():
        what = f"running {doing[3:]}" if doing.startswith("in ") else "loading"
        print(f"Note: {who} has been {what} for {SLOW_SECONDS:.0f} s; Ctrl-C stops it, {DISABLE_ENV}=NAME skips "
              "a plugin", file=sys.stderr, flush=True)
    timer = threading.Timer(SLOW_SECONDS, note)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _disabled_names() -> set:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def declared_api_version(module_name: str):
    """``CATDOG_ZOO_API_VERSION`` as written in a plugin module's source, read without running it."""
    try:
        found = importlib.util.find_spec(module_name)  # runs parent packages' __init__ only
    except (ImportError, ValueError):
        return None
    origin = getattr(found, "origin", None)
    if not origin or not origin.endswith(".py"):
        return None
    try:
        with open(origin, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return None  # let the real import report the problem
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CATDOG_ZOO_API_VERSION"
                                                for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return None
    return None


def _unique(entry_points):
    # The same distribution can be visible twice (e.g. installed and on PYTHONPATH).
    seen = set()
    for ep in entry_points:
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            yield ep


def _marked(module, kind: str) -> list:
    """Names in ``module`` carrying pluggy's hook ``kind`` ("spec" or "impl") marker."""
    marker = f"{hookspecs.PROJECT_NAME}_{kind}"
    return [name for name in dir(module) if hasattr(getattr(module, name, None), marker)]


HOOK_NAMES = frozenset(_marked(hookspecs, "spec"))


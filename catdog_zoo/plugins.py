"""Plugin discovery and loading, isolated so that one broken plugin never breaks the zoo.

Plugins are modules named by entry points in the ``catdog_zoo`` group. The core's own
built-in plugin goes through the same machinery, as ``llm``'s default plugins do.

Unlike ``pluggy.PluginManager.load_setuptools_entrypoints``, each entry point is imported and
each hook implementation is called on its own, inside ``try``: a failure is recorded on that
plugin's :class:`PluginInfo` (shown by ``catdog-zoo plugins``) and everything else keeps working.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
from dataclasses import asdict, dataclass, field
from typing import Optional

import pluggy

from . import hookspecs
from .errors import UnknownModelError, ZooError
from .registry import ModelSpec, Registry, with_origin
from .util.version import __version__

ENTRY_POINT_GROUP = "catdog_zoo"
# Comma-separated plugin (entry point) or distribution names to skip, like pytest's -p no:NAME.
DISABLE_ENV = "CATDOG_ZOO_DISABLE"
BUILTIN_PLUGINS = ("catdog_zoo.default_plugins.cats_and_dogs",)


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
            if ep.name in disabled or info.distribution in disabled:
                info.disabled = True
                self.plugins.setdefault(ep.name, info)
                continue
            declared = declared_api_version(ep.value.split(":")[0].strip())
            if declared is not None and declared != hookspecs.PLUGIN_API_VERSION:
                info.skipped = (f"written for plugin API {declared}, this catdog-zoo provides "
                                f"{hookspecs.PLUGIN_API_VERSION}; upgrade one of them")
                self.plugins.setdefault(ep.name, info)
                continue
            self._register(info, ep.load)
        self._call_each("register_models", lambda info: {"register": self._model_registrar(info)})
        self._call_each("register_datasets", lambda info: {"register": self._dataset_registrar(info)})

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
            raise

    def register_commands(self, cli) -> None:
        """Let every plugin add its subcommands to the root click group."""
        self._call_each("register_commands", lambda info: {"cli": cli})

    # -- loading ---------------------------------------------------------------------------
    def _register(self, info: PluginInfo, load) -> None:
        if info.name in self.plugins:
            other = self.plugins[info.name]
            info.errors.append(f"plugin name '{info.name}' is already used by "
                               f"{other.distribution or other.module}; not loaded")
            self.plugins[f"{info.name} ({info.distribution or info.module})"] = info
            return
        self.plugins[info.name] = info
        try:
            module = load()
            self.pm.register(module, name=info.name)
        except Exception as exc:  # a plugin's import can fail in any way; report, never crash
            info.errors.append(f"failed to load: {type(exc).__name__}: {exc}")
            return
        for impl_name in _marked(module, "impl"):
            if impl_name not in HOOK_NAMES:
                info.errors.append(f"unknown hook '{impl_name}' (see catdog_zoo/hookspecs.py)")
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(module) or [])

    def _call_each(self, hook_name: str, kwargs_for) -> None:
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            info = self.plugins[impl.plugin_name]
            available = kwargs_for(info)
            try:
                impl.function(**{arg: available[arg] for arg in impl.argnames})
            except Exception as exc:
                info.errors.append(f"{hook_name} failed: {type(exc).__name__}: {exc}")

    def _model_registrar(self, info: PluginInfo):
        def register(spec: ModelSpec) -> None:
            if not isinstance(spec, ModelSpec):
                raise TypeError(f"register() takes a catdog_zoo.ModelSpec, got {type(spec).__name__}")
            spec = with_origin(spec, info.name, info.distribution, info.version)
            conflict = self.models.add(spec)
            if conflict:
                info.errors.append(conflict)
            info.models.append(spec.name)
        return register

    def _dataset_registrar(self, info: PluginInfo):
        def register(source) -> None:
            if source.name in self.datasets:
                info.errors.append(f"data source '{source.name}' is already registered by "
                                   f"{self.datasets[source.name].plugin}")
                return
            source.plugin = info.distribution or info.name
            self.datasets[source.name] = source
            info.datasets.append(source.name)
        return register


_zoo: Optional[Zoo] = None


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


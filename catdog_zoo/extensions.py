"""What a plugin can register besides models and data sources: the extension points' specs.

Each extension point is a registry of named specs that plugins fill through one hook
(``catdog_zoo.hookspecs``), the built-in ones registered the same way by the core's own plugin modules:

- :class:`EngineSpec` (``register_engines``): what runs a frozen backbone when features are extracted.
- :class:`ExporterSpec` (``register_exporters``): an ``export --format``.
- :class:`TrackerSpec` (``register_trackers``): where a run's params, per-epoch metrics and artifacts go
  (``--track NAME``).
- :class:`StageSpec` (``register_stages``): one stage of a training run.

A spec is a description, cheap to make: its callables import TensorFlow (or the plugin's own heavy
dependencies) when they are called, never at registration, so ``catdog-zoo plugins`` and ``--help`` stay fast.
The core fills in ``plugin``, ``distribution`` and ``version`` from the entry point that registered it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Optional


@dataclass(frozen=True, kw_only=True)
class Extension:
    """What every registered extension has: a name (what the user types), a one-line summary, and its origin."""

    name: str
    summary: str
    plugin: str = ""
    distribution: str = ""
    version: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.replace("_", "").replace("-", "").isalnum() \
                or not self.name.isascii():
            raise ValueError(f"a {type(self).__name__}'s name must be letters, digits, '_' or '-'; got {self.name!r}")
        if not isinstance(self.summary, str):
            raise ValueError(f"{type(self).__name__} '{self.name}': summary must be a string")


@dataclass(frozen=True, kw_only=True)
class EngineSpec(Extension):
    """A feature-extraction engine: ``load(layers, image_shape, weights_digest, say)`` returns a callable on
    float32 batches (``engine(x) -> features``) for a model's frozen layers."""

    load: Callable
    chunk: int = 64  # images per call the engine runs best with
    precisions: tuple = ("float32",)  # what it can compute training features in
    converts: bool = True  # a conversion of the layers: checked against Keras on a probe before it is used
    available: Optional[Callable] = None  # () -> bool: whether it can run here (None: always)


@dataclass(frozen=True, kw_only=True)
class ExporterSpec(Extension):
    """An export format: ``write(model, out, context) -> dict`` writes ``model`` (a trained Keras model) to
    ``out``; ``load(out) -> callable`` runs the export on float32 images for the parity check."""

    write: Callable
    load: Optional[Callable] = None
    suffix: str = ""  # the default file name's suffix ("" for a folder)
    options: tuple = ()  # the export options that apply to it (e.g. "quantize", "version")


@dataclass(frozen=True, kw_only=True)
class TrackerSpec(Extension):
    """An experiment tracker: ``start(run_dir, config) -> tracker`` with ``params(dict)``,
    ``epoch(stage, epoch, logs)``, ``artifact(path)`` and ``finish(record)``, each optional."""

    start: Callable


@dataclass(frozen=True, kw_only=True)
class StageSpec(Extension):
    """A training stage: ``make(spec, cfg, plan_so_far) -> stage or None`` (None: the stage does not apply to this
    run); stages are planned in ``order``."""

    make: Callable
    order: int = 100
    records: tuple = field(default_factory=tuple)  # the facts it writes to the run record


# hook name, spec class and the PluginInfo list they fill, per extension point (models and data sources have theirs)
KINDS = {
    "engines": ("register_engines", EngineSpec),
    "exporters": ("register_exporters", ExporterSpec),
    "trackers": ("register_trackers", TrackerSpec),
    "stages": ("register_stages", StageSpec),
}


def with_origin(spec: Extension, plugin: str, distribution: str, version: str) -> Extension:
    return replace(spec, plugin=plugin, distribution=distribution, version=version)

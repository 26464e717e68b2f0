"""The model registry: a mapping from model name to :class:`ModelSpec`, as in timm.

A spec is everything the zoo knows about one architecture without building it:
its builder, training defaults, tags and provenance. Tools read the spec
instead of hard-coding per-model knowledge.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

from .config import KEYS
from .errors import ConfigError, UnknownModelError, ZooError
from .util.keras_cache import cache_problem, is_network_failure, not_downloadable, watched_downloads

# Marker meaning "whatever the spec's pretrained source is" (e.g. ImageNet via keras.applications).
DEFAULT_WEIGHTS = "default"
WEIGHTS_FLAG = "--weights PATH (weights=PATH in Python)"  # the way out when the pretrained source cannot be had


@dataclass(frozen=True)
class TrainingDefaults:
    """How a model trains unless the user says otherwise (flags or a YAML config).

    The fields are the config keys declared ``per_model`` in :data:`catdog_zoo.config.KEYS`, with the
    defaults declared there. The loss is not a setting: it follows the head (one logit: binary
    cross-entropy; several: sparse categorical cross-entropy; see ``catdog_zoo.models.heads``).
    """

    optimizer: str = KEYS["optimizer"].default
    learning_rate: float = KEYS["learning_rate"].default
    epochs: int = KEYS["epochs"].default
    batch_size: int = KEYS["batch_size"].default
    image_size: tuple = KEYS["image_size"].default

    def __post_init__(self):
        for name in ("optimizer", "learning_rate", "epochs", "batch_size", "image_size"):
            KEYS[name].check(getattr(self, name))  # a plugin's bad default fails at registration, named


@dataclass
class DataSource:
    """A named data source, usable as ``--data NAME``: ``fetch()`` returns the folder of class folders
    (optionally with ``train/`` and ``validation/`` inside), downloading it first if needed."""

    name: str
    summary: str
    fetch: Callable
    plugin: str = ""  # filled in by the core from the plugin that registered it


@dataclass(frozen=True)
class ModelSpec:
    """One registered architecture.

    ``builder(num_classes, image_size)`` returns an uncompiled ``keras.Model`` that takes
    float images in [0, 255] of shape ``image_size + (3,)`` and returns logits. When
    ``pretrained`` is set, the builder also accepts ``weights=`` ("imagenet"-style source,
    a local file path, or ``None`` for random initialisation).
    """

    name: str
    summary: str
    builder: Callable
    defaults: TrainingDefaults = field(default_factory=TrainingDefaults)
    tags: tuple = ()
    pretrained: Optional[str] = None  # the builder's default weights source, e.g. "imagenet"
    weights_licence: Optional[str] = None  # licence of the pretrained weights, where known
    # Name of the layer holding a frozen pretrained backbone. Declaring it lets the trainer cache the
    # backbone's features (training only the head) and unfreeze its top layers for fine-tuning.
    frozen_backbone: Optional[str] = None
    # The pretrained weights' published ImageNet top-1 accuracy (%), where known: shown beside the measured
    # extraction speed by `models --bench`, so a user can pick a backbone by both.
    imagenet_top1: Optional[float] = None
    # Filled in by the core from the entry point that registered the spec.
    plugin: str = ""
    distribution: str = ""
    version: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.distribution}:{self.name}" if self.distribution else self.name

    def no_weights_message(self) -> str:
        return f"model '{self.name}' has no pretrained weights; --weights does not apply to it"

    def build(self, num_classes: int = 2, image_size=None, weights=DEFAULT_WEIGHTS):
        """Build the Keras model; ``weights`` only applies to pretrained specs. A builder that returns anything
        but a ``keras.Model`` is one error naming the model and its plugin."""
        model = self._built(num_classes, tuple(image_size or self.defaults.image_size), weights)
        import keras

        if not isinstance(model, keras.Model):
            raise ZooError(f"model '{self.name}' of {self.distribution or self.plugin or 'its plugin'}: its builder "
                           f"returned {type(model).__name__}, not a keras.Model (a bug in that plugin)")
        return model

    def _built(self, num_classes: int, size: tuple, weights):
        if self.pretrained is None:
            if weights not in (DEFAULT_WEIGHTS, None):
                raise ConfigError(self.no_weights_message())
            return self.builder(num_classes, size)
        source = self.pretrained if weights == DEFAULT_WEIGHTS else weights
        with watched_downloads() as asked:
            try:
                return self.builder(num_classes, size, weights=source)
            except Exception as exc:
                cache = cache_problem(exc)  # the disk, not the network: said as such
                if cache:
                    raise ZooError(f"model '{self.name}' could not save its {source} weights: {cache}; or pass "
                                   f"{WEIGHTS_FLAG} to a local weights file") from None
                if not is_network_failure(exc):
                    raise
                wanted = asked[-1] if asked else None
                raise ZooError(not_downloadable(f"model '{self.name}' needs its {source} weights", wanted, exc,
                                                f"pass {WEIGHTS_FLAG} to a copy of that file")) from None


def configured_weights(weights_file) -> str:
    """What a run builds its model with: the ``--weights`` file it was given, else the spec's pretrained source."""
    return weights_file if weights_file is not None else DEFAULT_WEIGHTS


class Registry:
    """Specs keyed by name; ``distribution:name`` always works, a bare name when it is unique."""

    def __init__(self):
        self._specs: dict[str, ModelSpec] = {}  # qualified name -> spec
        self._by_name: dict[str, list[ModelSpec]] = {}

    def add(self, spec: ModelSpec) -> Optional[str]:
        """Store ``spec``; returns a conflict message when another distribution has the same name."""
        if spec.qualified_name in self._specs:
            return f"model '{spec.name}' is registered twice by {spec.distribution or spec.plugin}"
        self._specs[spec.qualified_name] = spec
        same = self._by_name.setdefault(spec.name, [])
        same.append(spec)
        if len(same) > 1:
            return f"model name '{spec.name}' is registered by {_owners(same)}; use {_choices(same)}"
        return None

    def named(self, name: str) -> list:
        """Every spec registered under the bare ``name``."""
        return list(self._by_name.get(name, []))

    def get(self, name: str) -> ModelSpec:
        if name in self._specs:
            return self._specs[name]
        candidates = self._by_name.get(name, [])
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise ConfigError(f"model name '{name}' is registered by {_owners(candidates)}; use {_choices(candidates)}")
        close = difflib.get_close_matches(name, sorted(self._by_name), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see 'catdog-zoo models')"
        raise UnknownModelError(f"unknown model '{name}'{hint}")

    def list(self, pattern: Optional[str] = None) -> list[ModelSpec]:
        """All specs sorted by name, optionally filtered by an fnmatch pattern on the name."""
        specs = sorted(self._specs.values(), key=lambda s: (s.name, s.qualified_name))
        if pattern:
            specs = [s for s in specs if fnmatch.fnmatchcase(s.name, pattern)
                     or fnmatch.fnmatchcase(s.qualified_name, pattern)]
        return specs

    def __len__(self):
        return len(self._specs)


def _owners(specs) -> str:
    return " and ".join(s.distribution or s.plugin for s in specs)


def _choices(specs) -> str:
    return " or ".join(f"'{s.qualified_name}'" for s in specs)


def with_origin(spec: ModelSpec, plugin: str, distribution: str, version: str) -> ModelSpec:
    return replace(spec, plugin=plugin, distribution=distribution, version=version)

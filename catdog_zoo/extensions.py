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

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Union


CORE_DISTRIBUTION = "catdog-zoo"


@dataclass(frozen=True, kw_only=True)
class Extension:
    """What every registered extension has: a name (what the user types), a one-line summary, and its origin."""

    name: str
    summary: str
    plugin: str = ""
    distribution: str = ""
    version: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", self.name):
            raise ValueError(f"{type(self).__name__}: the name must be lower-case letters, digits, '_' or '-', from "
                             f"a letter, at most 64 (what a user types after a flag); got {str(self.name)[:80]!r}")
        if not isinstance(self.summary, str) or not self.summary.isprintable():
            raise ValueError(f"{type(self).__name__} '{self.name}': summary must be one line of printable text")

    @property
    def origin(self) -> str:
        """The distribution (or plugin) it came from, as its errors and warnings name it; "" for catdog-zoo's own,
        whose messages need no origin."""
        where = self.distribution or self.plugin
        return "" if where == CORE_DISTRIBUTION else where

    @property
    def from_origin(self) -> str:
        """What follows its name in a message: `` (DISTRIBUTION)``, or nothing for catdog-zoo's own."""
        return f" ({self.origin})" if self.origin else ""


@dataclass(frozen=True, kw_only=True)
class EngineSpec(Extension):
    """A feature-extraction engine: what runs a model's frozen layers on float32 batches (``--engine NAME``).

    A converting engine gives ``convert(layers, image_shape) -> bytes`` and ``load(content) -> engine``: the
    core converts once, checks the result against Keras on a probe image (features within 1e-4) and caches the
    bytes (keyed by the frozen weights, the shape and ``runtime()``), so a conversion is checked once. An engine
    that runs the layers as they are gives ``load(layers, image_shape) -> engine`` alone, checked the same way
    each time it is made. An engine that fails its check is named in one line: ``--engine NAME`` stops there,
    ``auto`` goes on to the next engine.

    An engine is a callable ``engine(x) -> features`` on float32 arrays, called ``chunk`` rows at a time (the
    last call padded); one with ``"bfloat16"`` in ``precisions`` also has ``engine.bfloat16() -> engine``, and
    ``engine.native_bfloat16`` true where that is faster than float32 here (else it is used only when asked
    for).
    """

    load: Callable
    convert: Optional[Callable] = None
    runtime: Optional[Callable] = None  # () -> str: what converted bytes depend on beyond the layers
    chunk: Union[int, dict] = 64  # images per call it runs best with, or {precision: images}; 0: whole batches
    precisions: tuple = ("float32",)  # what it can compute the training split's features in
    available: Optional[Callable] = None  # () -> str: "" when it can run here, else why not (None: always)
    faster_here: Optional[Callable] = None  # () -> bool: --engine auto tries it here (None: only by name)
    title: str = ""  # how messages name it ("" : its name)

    def chunk_for(self, precision: str = "float32") -> int:
        """Images per call when computing in ``precision`` (0: the whole batch in one call)."""
        return self.chunk.get(precision, 0) if isinstance(self.chunk, dict) else self.chunk

    @property
    def shown(self) -> str:
        return self.title or self.name


@dataclass(frozen=True, kw_only=True)
class ExporterSpec(Extension):
    """An export format (``export --format NAME``): ``write(model, staged, context) -> dict`` writes ``model`` (the
    run's trained Keras model, augmentation left out; images in [0, 255] -> logits) to the path ``staged`` (a file
    or a folder, not there yet) and returns what it adds to the export's report (e.g. ``{"output": "..."}``;
    ``{}`` for none); ``load(path) -> run`` opens the written export, ``run(images) -> logits`` on float32 batches
    ``(N, H, W, 3)`` in [0, 255].

    The core does everything around it, for every format alike: the run's lock, the destination's checks and
    ``--overwrite`` rules, the ``OUT.export.json`` record written before the export is moved into place, the
    labels file (``labels.txt`` inside a folder, ``OUT.labels.txt`` beside a file), and the parity check: the
    export, opened by ``load``, beside the Keras model on the run's test split; a float export whose
    probabilities differ by more than 1e-3 fails the command. An exception from ``write``, ``load`` or ``run``, and
    logits of another shape than ``(N, classes)``, are reported in one line naming the format.
    """

    write: Callable
    load: Callable
    suffix: str = ""  # the default file name's suffix ("" for a folder): RUN_DIR/export/model[-QUANTIZE]SUFFIX
    quantizations: tuple = ()  # the --quantize values it takes beyond "none" (a quantized export is judged by accuracy)
    versioned: bool = False  # TF Serving's layout: OUT/VERSION/ (--version), default OUT RUN_DIR/export/serving/MODEL
    steps: int = 1  # how many times write() calls context.advance(): the progress bar's length

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.suffix, str) or not re.fullmatch(r"(\.[A-Za-z0-9_-]{1,16})*", self.suffix):
            raise ValueError(f"ExporterSpec '{self.name}': suffix must be '' (a folder) or from its dot, as '.onnx'; "
                             f"got {str(self.suffix)[:40]!r}")


@dataclass(frozen=True, kw_only=True)
class ExportContext:
    """What an exporter's ``write`` is told about the run besides its model."""

    run_dir: Path
    class_names: tuple  # the class of each logit, in order
    image_size: tuple  # (height, width) of the images the export takes
    quantize: str = "none"  # one of the spec's ``quantizations``, or "none"
    temperature: float = 1.0  # the run's calibration: logits / temperature before probabilities
    calibration: Optional[Callable] = None  # () -> iterator of float32 training images (HxWx3), for quantizing
    novelty: object = None  # the run's open-set rejection (the core's, for the SavedModel's answers), or None
    chain: object = None  # the model split at its frozen backbone (with ``novelty``), or None
    scratch: Optional[Path] = None  # a folder for intermediate files, removed after the export
    advance: Callable = lambda steps=1: None  # a step of ``write`` done (the progress bar)


@dataclass(frozen=True, kw_only=True)
class TrackerSpec(Extension):
    """An experiment tracker: ``start(run_dir, config) -> tracker`` when a run starts (``run_dir`` an absolute
    Path, ``config`` the run's recorded config as a dict), the tracker having any of these methods, each called
    on the chief worker only:

    - ``params(params: dict)``: once, after ``start`` (the config's keys, the model's name and plugin);
    - ``epoch(stage: str, epoch: int, logs: dict)``: after every epoch (``epoch`` counts from 0 across stages,
      as Keras callbacks and TensorBoard's steps do; history.csv's row ``epoch + 1``; ``logs``: ``loss``,
      ``accuracy``, ``val_loss``, ``val_accuracy`` as floats);
    - ``artifact(path: Path)``: each (absolute) file the run wrote that a tracker keeps (model, metrics, report);
    - ``finish(status: str, metrics: dict)``: last; ``status`` "finished", "failed" or "interrupted".

    A tracker that raises is named in one warning and dropped for the rest of the run: a run is never lost to
    its tracker.
    """

    start: Callable


@dataclass(frozen=True, kw_only=True)
class StageSpec(Extension):
    """A training stage. ``make(spec, cfg, net, planned) -> stage or None`` is asked once per run, in ``order``
    (the built-in ``head`` is 10, ``fine_tune`` 20), with the model's ModelSpec, the resolved TrainConfig, the
    built Keras model and the stages planned before it; None: the stage does not apply to this run. The plan
    is made once, when a run starts or resumes, and a checkpoint records it: a resumed run whose plan differs
    (a stage plugin installed or removed meanwhile) is refused, naming the stages.

    A stage is an object with ``epochs`` (an int) and ``run(context, first, last, checkpoint)``, which trains
    epochs ``first..last-1`` (they count across stages) through ``context.fit(model, first, last, train,
    validation, checkpoint)`` and returns a ``StageResult`` (``catdog_zoo.training.context``: ``facts`` for the
    run record, an optional ``scorer``, a ``cache_report``). ``context`` holds what the stage may read: ``spec``,
    ``cfg``, ``net`` (the run's model, what is saved), ``splits``, ``decoded``, ``cluster``, ``say``,
    ``progress``, and ``compile(model, learning_rate)``, ``images(split, shuffle, first_epoch)``,
    ``labels(split)``. Optional: ``prepare(model)`` (what it trains: make a model as trainable as the stage left
    the run's one; the finish calls it on a rebuilt copy) and ``prepare_early(net, cfg, say)``.

    The core names the stage after its spec: ``history.csv``'s ``stage`` column, the run record's ``stages``
    (each with ``epochs``, ``seconds``, ``val_accuracy`` and the stage's ``records``), the TensorBoard folder.
    """

    make: Callable
    order: int = 100
    records: tuple = field(default_factory=tuple)  # the facts its result gives, by name (documentation)
    drawn: str = ""  # how the learning curves mark where it starts ("" : no mark): "fine-tuning starts"


# hook name, spec class and the PluginInfo list they fill, per extension point (models and data sources have theirs)
KINDS = {
    "engines": ("register_engines", EngineSpec),
    "exporters": ("register_exporters", ExporterSpec),
    "trackers": ("register_trackers", TrackerSpec),
    "stages": ("register_stages", StageSpec),
}


def with_origin(spec: Extension, plugin: str, distribution: str, version: str) -> Extension:
    return replace(spec, plugin=plugin, distribution=distribution, version=version)

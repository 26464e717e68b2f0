"""What a model is converted to when it is checked: the converting feature-extraction engines and the export
formats, each as a :class:`Target` with a name, why it cannot run here ("" when it can) and ``make``.

They are the zoo's registered extensions (``get_zoo().extensions``: the built-in ones and every plugin's), called
through the extension protocols of ``catdog_zoo/extensions.py``: an engine's ``convert(layers, shape) -> bytes``
and ``load(bytes)``, an exporter's ``write(model, path, context)`` and ``load(path)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..extensions import ExportContext
from ..plugins import get_zoo


@dataclass(frozen=True)
class Target:
    """``make(...)`` returns ``run(x) -> array`` on float32 batches: an engine's features, an export's logits."""

    name: str
    unavailable: str  # why it cannot run here, "" when it can
    make: Callable
    origin: str = ""  # " (DISTRIBUTION)" of a plugin's, named in the check's line (Extension.from_origin)

    @property
    def shown(self) -> str:
        return self.name + self.origin


def converting_engines() -> list:
    """Every registered engine that converts the frozen layers (one that runs them as they are, as the
    ``tensorflow`` reference, has nothing to check): ``make(layers, image_shape)``."""
    return [Target(spec.name, spec.available() if spec.available else "",
                   lambda layers, shape, spec=spec: spec.load(spec.convert(layers, shape)), spec.from_origin)
            for spec in get_zoo().extensions["engines"].values() if spec.convert is not None]


def exporters() -> list:
    """Every registered export format: ``make(model, folder, class_names, image_size)`` writes the export into
    ``folder`` and opens it."""
    return [Target(spec.name, "", lambda model, folder, names, size, spec=spec: _exported(spec, model, folder, names,
                                                                                       size), spec.from_origin)
            for spec in get_zoo().extensions["exporters"].values()]


def _exported(spec, model, folder: Path, class_names, image_size):
    scratch = folder / "scratch"
    scratch.mkdir()
    context = ExportContext(run_dir=folder, class_names=tuple(class_names), image_size=tuple(image_size),
                                       scratch=scratch)
    path = folder / ("export" + spec.suffix)
    spec.write(model, path, context)
    return spec.load(path)

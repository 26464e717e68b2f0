"""What a model is converted to when it is checked: the converting feature-extraction engines and the export
formats, each as a :class:`Target` with a name, why it cannot run here ("" when it can) and ``make``.

They are the zoo's registered extensions (``get_zoo().extensions``: the built-in ones and every plugin's), called
through the extension protocols of ``catdog_zoo/extensions.py``: an engine's ``convert(layers, shape) -> bytes``
and ``load(bytes)``, an exporter's ``write(model, path, context)`` and ``load(path)``. Where the built-in engines
or formats are not registered (yet), the kit adds them from ``models/engine.py`` and ``runs/export.py`` directly
(:func:`_builtin_engines`, :func:`_builtin_exporters`): delete those two once the registry holds the built-ins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..plugins import get_zoo


@dataclass(frozen=True)
class Target:
    """``make(...)`` returns ``run(x) -> array`` on float32 batches: an engine's features, an export's logits."""

    name: str
    unavailable: str  # why it cannot run here, "" when it can
    make: Callable


def converting_engines() -> list:
    """Every registered engine that converts the frozen layers (one that runs them as they are, as the
    ``tensorflow`` reference, has nothing to check): ``make(layers, image_shape)``."""
    specs = get_zoo().extensions["engines"]
    registered = [Target(spec.name, spec.available() if spec.available else "",
                         lambda layers, shape, spec=spec: spec.load(spec.convert(layers, shape)))
                  for spec in specs.values() if spec.convert is not None]
    return registered + [t for t in _builtin_engines() if t.name not in specs]


def exporters() -> list:
    """Every registered export format: ``make(model, folder, class_names, image_size)`` writes the export into
    ``folder`` and opens it."""
    from .. import extensions

    specs = get_zoo().extensions["exporters"]
    # A core without ExportContext cannot run a registered format (its export command knows only its own).
    unusable = "" if hasattr(extensions, "ExportContext") else \
        "this catdog-zoo's export does not run registered formats"
    registered = [Target(spec.name, unusable, lambda model, folder, names, size, spec=spec: _exported(
        spec, model, folder, names, size)) for spec in specs.values()]
    return registered + [t for t in _builtin_exporters() if t.name not in specs]


def _exported(spec, model, folder: Path, class_names, image_size):
    from .. import extensions

    scratch = folder / "scratch"
    scratch.mkdir()
    context = extensions.ExportContext(run_dir=folder, class_names=tuple(class_names), image_size=tuple(image_size),
                                       scratch=scratch)
    path = folder / ("export" + spec.suffix)
    spec.write(model, path, context)
    return spec.load(path)


def _builtin_engines() -> list:
    """models/engine.py's converting engines, for a core whose registry does not hold them."""
    from ..models import engine, openvino_engine

    kinds = engine._kinds()  # noqa: SLF001 - the one place that knows how each converts, until they are registered
    why = {"openvino": "" if openvino_engine.available() else "needs OpenVINO: pip install 'catdog-zoo[openvino]'"}
    return [Target(name, why.get(name, ""), lambda layers, shape, convert=convert, load=load: load(convert(layers,
                                                                                                            shape)))
            for name, (convert, load, _) in kinds.items()]


def _builtin_exporters() -> list:
    """runs/export.py's formats, for a core whose registry does not hold them."""
    def saved_model(model, folder, class_names, image_size):
        from ..runs.export import runner
        from ..runs.serving import write_saved_model

        write_saved_model(model, folder / "saved_model", class_names, image_size)
        return runner(folder / "saved_model", "saved_model")

    def tflite(model, folder, class_names, image_size):
        from ..runs.export import runner
        from ..runs.serving import tflite_bytes

        saved_model(model, folder, class_names, image_size)
        (folder / "model.tflite").write_bytes(tflite_bytes(folder / "saved_model", "none"))
        return runner(folder / "model.tflite", "tflite")

    return [Target("saved_model", "", saved_model), Target("tflite", "", tflite)]

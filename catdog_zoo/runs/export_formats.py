"""Which export format: ``--format NAME`` looked up among the registered exporters (the built-in ``saved_model``
and ``tflite``, and any a plugin adds: :class:`catdog_zoo.ExporterSpec`), the options it takes, and where its
export goes by default. Light to import: the CLI checks a command line here before TensorFlow loads."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..plugins import get_zoo
from .confine import safe_name
from .layout import EXPORT_DIR

NO_QUANTIZATION = "none"


def exporter(fmt: str, quantize: str = NO_QUANTIZATION, version: int | None = None):
    """The :class:`catdog_zoo.ExporterSpec` registered as ``fmt``; ``quantize`` and ``version`` checked against
    what it says it takes. Each refusal is one line naming the flag and the formats it applies to."""
    spec = get_zoo().extension("exporters", fmt, "export format")
    if quantize != NO_QUANTIZATION and quantize not in spec.quantizations:
        takers = _formats(lambda s: s.quantizations)
        if spec.quantizations or not takers:
            raise ConfigError(f"--quantize {quantize}: --format {fmt} takes one of "
                              f"{', '.join((NO_QUANTIZATION, *spec.quantizations))}")
        raise ConfigError(f"--quantize applies to --format {' or '.join(takers)} only")
    if version is not None and (not spec.versioned or version < 1):
        raise ConfigError(f"--version applies to --format {' or '.join(_formats(lambda s: s.versioned))} only, "
                          "and is a whole number from 1")
    return spec


def _formats(takes) -> list:
    return sorted(name for name, spec in get_zoo().extensions["exporters"].items() if takes(spec))


def default_out(run_dir, spec, model_name: str, quantize: str = NO_QUANTIZATION) -> Path:
    """Where an export goes without ``--out``: TF Serving's model base path for a versioned format (the model's
    name from the run's ``config.yaml``, made a plain folder name, never a path such as ``../../x``), else
    ``RUN_DIR/export/model[-QUANTIZE]SUFFIX``."""
    if spec.versioned:
        return Path(run_dir) / EXPORT_DIR / "serving" / safe_name(model_name)
    return Path(run_dir) / EXPORT_DIR / ("model" + ("" if quantize == NO_QUANTIZATION else f"-{quantize}")
                                         + spec.suffix)

"""How features of a frozen backbone are extracted, decided once: the engines to try and the precision.

:func:`decide` turns the ``engine`` and precision a run asks for into an :class:`Extraction` for this machine
(``auto``: TensorFlow where a GPU is visible, else the registered engines that say they are fastest here, in
registration order; ``--train-precision auto``: bfloat16 only when the first of them computes in it natively).
Training's stages, the feature store and ``evaluate``/``predict``/``serve`` (``runs/inference.py``) take that
value instead of deciding again; what actually ran (after any fallback) is recorded in ``metrics.json``'s
``feature_cache`` (``engine``, ``train_precision``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..plugins import get_zoo
from .engine import REFERENCE, gpu_visible


@dataclass(frozen=True)
class Extraction:
    """``engine``: what was asked, ``auto`` or a registered engine's name (part of the feature cache's keys: its
    features are not TensorFlow's bits). ``candidates``: the engines to try, best first (empty: TensorFlow's own
    layers). ``precision``: of the training split's features when training (``float32``; ``bfloat16``, asked for,
    so an engine that cannot is an error; ``auto``, bfloat16 if the engine made computes in it natively), of
    every feature when scoring (``float32`` or ``bfloat16``)."""

    engine: str = REFERENCE
    candidates: tuple = ()
    precision: str = "float32"

    def in_float32(self) -> "Extraction":
        """The same engines, computing in float32 (fine-tuning's activations, every score)."""
        return replace(self, precision="float32")


IN_TENSORFLOW = Extraction()


def decide(engine: str = "auto", precision: str = "float32") -> Extraction:
    """The extraction for ``engine`` (``auto`` or a registered name; an unknown one is one error listing the
    known) and ``precision`` on this machine."""
    specs = get_zoo().extensions["engines"]
    if engine == REFERENCE:
        return Extraction(precision="float32" if precision == "auto" else precision)
    if engine != "auto":
        get_zoo().extension("engines", engine, "engine")  # unknown: the one line naming the known ones
        candidates = (engine,)
    elif gpu_visible():  # the CPU engines would leave the GPU idle
        candidates = ()
    else:
        candidates = tuple(name for name, spec in specs.items() if spec.faster_here and spec.faster_here())
    if precision == "auto" and not (candidates and _native_bfloat16(specs[candidates[0]])):
        precision = "float32"  # told without making an engine: a warm run makes none
    return Extraction(engine=engine, candidates=candidates, precision=precision)


def _native_bfloat16(spec) -> bool:
    return "bfloat16" in spec.precisions and bool(spec.faster_here and spec.faster_here())

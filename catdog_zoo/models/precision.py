"""What the training split's features are computed in, float32 or bfloat16, once the engine is known.

bfloat16 (the OpenVINO engine on a CPU with AMX or AVX512-BF16, :mod:`.openvino_engine`) computes them about 2x
faster; validation and test features are always float32, so every score of the head describes the float32
model that is saved. :func:`.extraction.decide` has already said float32 where no engine here could do better;
this finishes the decision where it needs the engine (or the cache), and keeps workers agreeing.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..errors import first_line


def training_precision(asked: str, cached, engine_of) -> str:
    """float32, or bfloat16 where ``asked`` (``auto``: where the engine computes in it natively). ``cached()``:
    bfloat16 features are in the cache already (no engine is made then); ``engine_of()``: the engine (None for
    TensorFlow)."""
    if asked == "float32":
        return "float32"
    if cached():
        return "bfloat16"
    engine = engine_of()
    if engine is not None and (getattr(engine, "native_bfloat16", False) or
                               (asked == "bfloat16" and engine.computes("bfloat16"))):
        try:
            engine.bfloat16()  # compiled once, here: a failure falls back to float32 (or is said, if asked for)
            return "bfloat16"
        except Exception as exc:  # noqa: BLE001 - OpenVINO's RuntimeError and kin
            if asked == "bfloat16":
                raise ConfigError(f"--train-precision bfloat16: the {engine.spec.shown} engine cannot compile this "
                                  f"backbone in bfloat16 ({first_line(exc)})") from None
            return "float32"
    if asked == "bfloat16":
        raise ConfigError(f"--train-precision bfloat16 needs an engine that computes in bfloat16 (this run extracts "
                          f"with {getattr(engine, 'name', 'tensorflow')}): use --engine openvino or auto (pip install "
                          "'catdog-zoo[openvino]' where it is missing), or --train-precision auto")
    return "float32"


def agreed(cluster, precision: str) -> str:
    """Several workers: bfloat16 only if every one chose it, so that their shares meet under one name."""
    if getattr(cluster, "workers", 1) > 1:
        return "bfloat16" if cluster.all_agree(precision == "bfloat16") else "float32"
    return precision


def bfloat16_of(engine):
    """The engine's bfloat16 variant. (An engine without one gets here only when bfloat16 training features
    were chosen from the cache, or by another worker, and this process must compute them.)"""
    if engine is None or not engine.computes("bfloat16"):
        raise ConfigError("the training features are to be computed in bfloat16 (cached so, or chosen by another "
                          "worker) and this process's engine cannot: use --train-precision float32")
    return engine.bfloat16()

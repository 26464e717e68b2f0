"""The built-in feature-extraction engines, registered through the public hook as a plugin's would be.

- ``tensorflow``: the frozen layers as Keras runs them (a traced ``tf.function``); the reference every other
  engine is checked against, and the one ``auto`` uses when a GPU is visible (the others run on the CPU).
- ``tflite``: converted once to float32 TFLite and run by XNNPACK (:mod:`.tflite_engine`), about 2.4x
  TensorFlow's throughput on a CPU; what ``auto`` takes everywhere else.
- ``openvino`` (an extra, :mod:`.openvino_engine`): float32 at XNNPACK's speed, and bfloat16 for the training
  split's features about 2x faster on CPUs that compute in it natively, the only CPUs ``auto`` takes it on.

Nothing heavy is imported here: each callable imports its engine when called, so listing plugins stays instant.
"""

from __future__ import annotations

from ..extensions import EngineSpec
from ..hookspecs import hookimpl

# Images per call into a CPU engine. Small batches keep each layer's activations in the caches: MobileNetV2 at
# 224 px on this project's machine, images/s by batch size (docs/performance.md): XNNPACK 445 (4), 438 (8),
# 371 (16), 312 (64); OpenVINO float32 423 (4), 359 (8), 262 (64); bfloat16 739 (4), 895 (8), 630 (64).
TFLITE_CHUNK = 8
OPENVINO_CHUNKS = {"float32": 4, "bfloat16": 8}


def _tensorflow(layers, image_shape):
    from .engine import TensorFlowFrozen

    return TensorFlowFrozen(layers, image_shape)


def _tflite_convert(layers, image_shape) -> bytes:
    from .tflite_engine import convert

    return convert(layers, image_shape)


def _tflite_load(content: bytes):
    from .tflite_engine import TFLiteFrozen

    return TFLiteFrozen(content)


def _tflite_runtime() -> str:
    from .tflite_engine import runtime

    return runtime()


def _openvino_convert(layers, image_shape) -> bytes:
    """OpenVINO reads the TFLite conversion with its runtime (openvino_engine.convert says why)."""
    from . import openvino_engine

    return openvino_engine.convert(_tflite_convert(layers, image_shape))


def _openvino_load(content: bytes):
    from . import openvino_engine

    return openvino_engine.load(content)


def _openvino_runtime():
    from . import openvino_engine

    return f"{openvino_engine.version()} from tflite" if openvino_engine.available() else None


def _openvino_available() -> str:
    from . import openvino_engine

    return "" if openvino_engine.available() else "needs OpenVINO: pip install 'catdog-zoo[openvino]'"


def _openvino_faster_here() -> bool:
    """Only where bfloat16 is native: in float32 OpenVINO runs at XNNPACK's speed and weighs 180 MB more."""
    from . import openvino_engine

    return openvino_engine.faster_here()


ENGINES = (
    EngineSpec(name="openvino", title="OpenVINO", summary="OpenVINO on the CPU: float32, and bfloat16 for the "
               "training features where the CPU has it (an extra)", load=_openvino_load, convert=_openvino_convert,
               runtime=_openvino_runtime, chunk=OPENVINO_CHUNKS, precisions=("float32", "bfloat16"),
               available=_openvino_available, faster_here=_openvino_faster_here),
    EngineSpec(name="tflite", title="TFLite", summary="float32 TFLite run by XNNPACK on the CPU", load=_tflite_load,
               convert=_tflite_convert, runtime=_tflite_runtime, chunk=TFLITE_CHUNK, faster_here=lambda: True),
    EngineSpec(name="tensorflow", title="TensorFlow", summary="the frozen layers as Keras runs them (the reference)",
               load=_tensorflow, chunk=0),
)


@hookimpl
def register_engines(register):
    for spec in ENGINES:
        register(spec)

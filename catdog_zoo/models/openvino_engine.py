"""The OpenVINO engine for a model's frozen part: float32 for every feature a score is computed from, and
bfloat16 on request for the training split's features on CPUs that compute in bfloat16 natively.

Why a second engine beside TFLite's XNNPACK: float32 runs at the same speed on both (docs/performance.md),
but on a CPU with AMX or AVX512-BF16 OpenVINO's bfloat16 kernels run MobileNetV2 about 2.1x faster. Those
features differ from Keras' (up to ~0.4 on a feature, ~0.02 on average), so they are used only for the
training split (:mod:`.features`): validation and test features, and so every recorded metric, come from
the float32 model, exactly the ``model.keras`` saved. A head trained on bfloat16 features scored the same
or better on float32 validation and test features in every measurement (docs/performance.md).

OpenVINO is an optional extra (``pip install 'catdog-zoo[openvino]'``, 180 MB): without it this module
is never imported and the TFLite engine runs.
"""

from __future__ import annotations

import functools
import tempfile
import threading
from pathlib import Path

import numpy as np


def available() -> bool:
    """OpenVINO is installed and importable (the ``openvino`` EngineSpec's ``available``, :mod:`.builtin_engines`)."""
    try:
        import openvino  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed, or a broken install: the TFLite engine runs instead
        return False
    return True


def faster_here() -> bool:
    """OpenVINO is installed and this CPU computes in bfloat16 natively: what ``--engine auto`` and
    ``--train-precision auto`` take it for."""
    return available() and native_bfloat16()


@functools.lru_cache(maxsize=1)  # the CPU does not change while the process runs
def native_bfloat16() -> bool:
    """This CPU computes in bfloat16 natively (AMX or AVX512-BF16, as OpenVINO reports it): only then is
    bfloat16 faster than float32 rather than emulated. False when OpenVINO cannot tell (a broken install)."""
    try:
        import openvino as ov

        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - then OpenVINO is not used: the TFLite engine runs
        return False


class OpenVINOFrozen:
    """The frozen layers compiled by OpenVINO for the CPU; calls compute in float32.

    :meth:`OpenVINOFrozen.bfloat16` is the same model compiled to compute in bfloat16 (made on first use).
    """

    def __init__(self, model):
        import openvino as ov

        self._core, self._model = ov.Core(), model
        self._f32 = self._bf16 = None  # compiled on first use: scoring runs on streams() and never needs them
        self._streams: dict = {}
        self.native_bfloat16 = native_bfloat16()  # bfloat16 is faster here, not emulated: ``auto`` takes it

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self._f32 is None:
            self._f32 = _Compiled(self._core, self._model, "f32")
        return self._f32(x)

    def bfloat16(self):
        """The frozen layers computing in bfloat16 (float32 in and out)."""
        if self._bf16 is None:
            self._bf16 = _Compiled(self._core, self._model, "bf16")
        return self._bf16

    def streams(self, precision: str = "f32"):
        """The frozen layers compiled for requests that come together from a busy process (:class:`_Streams`):
        the same results as calling the engine, ``precision`` ``f32`` or ``bf16``."""
        if precision not in self._streams:
            self._streams[precision] = _Streams(self._core, self._model, precision)
        return self._streams[precision]


class _Compiled:
    """One compiled model and its infer request, called like the other engines: float32 batch in, rows out."""

    def __init__(self, core, model, precision: str):
        # The precision is always set: OpenVINO's own default on a bfloat16 CPU is bfloat16. LATENCY: one
        # stream using every core, for one batch at a time.
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                     "PERFORMANCE_HINT": "LATENCY"})
        self._request = compiled.create_infer_request()
        self.precision = precision

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """One chunk of rows (the core calls it ``EngineSpec.chunk`` rows at a time, models/engine.py)."""
        return np.array(self._request.infer({0: x})[0])  # a copy: the request reuses its output buffer


class _Streams:
    """The model compiled for throughput: OpenVINO's number of streams for this CPU (one per core on a small
    machine), each image its own request, the requests of a batch in flight together.

    For scoring beside other work (``serve`` decodes and answers HTTP on the same cores): a stream runs on one
    thread, so it keeps its pace when another thread takes a core, where one stream over every core (the
    LATENCY compilation) waits at each layer for its slowest thread. Under load that roughly halves a
    request's latency and lifts images/s by a third (docs/serve.md). The kernels are the same: results are
    bit-identical to :class:`_Compiled`'s (tests/test_engine.py)."""

    def __init__(self, core, model, precision: str):
        import openvino as ov

        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                     "PERFORMANCE_HINT": "THROUGHPUT"})
        self._queue = ov.AsyncInferQueue(compiled, compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._queue.set_callback(_keep_rows)
        self._lock = threading.Lock()  # one batch in the queue at a time, whichever thread calls
        self.precision = precision

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        inputs = x if len(x) else np.zeros((1, *x.shape[1:]), np.float32)  # no rows: one, for the shape
        rows: list = [None] * len(inputs)
        with self._lock:
            for i in range(len(inputs)):
                self._queue.start_async({0: inputs[i:i + 1]}, (rows, i))
            self._queue.wait_all()
        return np.concatenate(rows)[:len(x)]


def _keep_rows(request, place) -> None:
    rows, i = place
    rows[i] = np.array(request.get_output_tensor(0).data)  # a copy: the request reuses its output buffer


def convert(tflite: bytes) -> bytes:
    """The frozen layers' float32 TFLite model (``tflite_engine.convert``) as OpenVINO's IR, XML and weights in one
    blob (:func:`load`), then cached. Read by OpenVINO's runtime (``Core.read_model``), not converted by
    ``openvino.convert_model``: that one sends usage statistics over the network unless the user opted out,
    and this tool never phones home."""
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="catdog-zoo-ov-") as tmp:
        source = Path(tmp) / "frozen.tflite"
        source.write_bytes(tflite)
        model = ov.Core().read_model(source)
        xml = Path(tmp) / "frozen.xml"
        ov.save_model(model, xml, compress_to_fp16=False)  # weights stay float32: the parity check is in f32
        graph, weights = xml.read_bytes(), xml.with_suffix(".bin").read_bytes()
    return len(graph).to_bytes(8, "little") + graph + weights


def load(blob: bytes) -> OpenVINOFrozen:
    """The engine of a blob made by :func:`convert`."""
    import openvino as ov

    size = int.from_bytes(blob[:8], "little")
    graph, weights = blob[8:8 + size].decode(), np.frombuffer(blob[8 + size:], np.uint8)
    engine = OpenVINOFrozen(ov.Core().read_model(model=graph, weights=ov.Tensor(weights)))
    engine.blob_weights = weights  # the model may share this memory rather than copy it: kept alive with it
    return engine


def version() -> str:
    import openvino as ov

    return ov.__version__


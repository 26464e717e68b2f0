"""How many images each call into a CPU engine gets (``models.engine``, ``models.openvino_engine``).

The extraction loop hands engines batches of 64 (one cache write, one traced front call per batch); inside,
each engine runs them a few images at a time, where both CPU engines are fastest here.
"""

from __future__ import annotations

import numpy as np

# Images per call into a CPU engine. Small batches keep each layer's activations in the caches: MobileNetV2 at
# 224 px on this project's machine, images/s by batch size (docs/performance.md): XNNPACK 445 (4), 438 (8),
# 371 (16), 312 (64); OpenVINO float32 423 (4), 359 (8), 262 (64); bfloat16 739 (4), 895 (8), 630 (64).
CHUNK = {"tflite": 8, "openvino-f32": 4, "openvino-bf16": 8}


def in_chunks(run, x: np.ndarray, chunk: int) -> np.ndarray:
    """``run`` over ``x`` ``chunk`` rows at a time, the rows of its results joined. Every call gets exactly
    ``chunk`` rows (the last is padded with zeros, their results dropped): one shape, so no engine plans its
    memory or picks its kernels again for a short batch (up to a second in OpenVINO)."""
    x = np.ascontiguousarray(x, np.float32)
    out = []
    for start in range(0, max(len(x), 1), chunk):  # no rows: one padded chunk, for the results' shape
        part = x[start:start + chunk]
        if len(part) < chunk:
            part = np.concatenate([part, np.zeros((chunk - len(part), *x.shape[1:]), np.float32)])
        out.append(run(part)[:len(x) - start])
    return np.concatenate(out) if len(out) != 1 else out[0]

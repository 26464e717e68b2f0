"""Calling an engine a fixed number of images at a time (its ``EngineSpec.chunk``, ``models.engine``).

The extraction loop hands engines batches of 64 (one cache write, one traced front call per batch); inside,
each CPU engine runs them a few images at a time, where it is fastest (the built-in engines' chunks, with the
measurements behind them, are in :mod:`.builtin_engines`).
"""

from __future__ import annotations

import numpy as np


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

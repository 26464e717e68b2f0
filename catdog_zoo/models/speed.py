"""How fast a model's frozen backbone extracts features on this machine (``catdog-zoo models --bench``).

The backbone is built with random weights (``weights=None``): the same layers and arithmetic as the pretrained
ones, so the same speed, and nothing to download. It runs the way a training run extracts its cached features:
the engine the trainer would prepare (``--engine``, ``auto`` by default: TFLite/XNNPACK or OpenVINO on a CPU,
TensorFlow on a GPU; :mod:`.engine`), through the same extraction function, after a warm-up batch. A converted
engine of random weights is of no use to a later run, so the conversion is made in a scratch cache folder
that is deleted afterwards instead of the user's cache. NumPy and TensorFlow load on the first call, so the
command line can read this module's defaults at start-up.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time

from ..errors import ZooError
from ..registry import ModelSpec

BENCH_IMAGES = 32  # images timed per backbone: a few seconds for the slowest at its native size on 2 cores
BENCH_SEED = 0  # the random "weights": the same backbone at every bench


def extraction_speed(spec: ModelSpec, images: int = BENCH_IMAGES, engine: str = "auto", say=print) -> dict:
    """``{"images_per_s", "seconds", "images", "engine", "params", "image_size"}`` for ``spec``'s frozen part at
    its default (native) input size."""
    import keras
    import numpy as np

    from .engine import prepared_engine
    from .extraction import decide
    from .frozen import extract, extractor, split_frozen

    if not spec.frozen_backbone:
        raise ZooError(f"model '{spec.name}' has no frozen backbone to time (ModelSpec.frozen_backbone)")
    size = tuple(spec.defaults.image_size)
    keras.backend.clear_session()  # a whole catalogue in one process: the previous backbone's graphs let go
    keras.utils.set_random_seed(BENCH_SEED)
    model = spec.build(2, size, weights=None)
    chain = split_frozen(model, spec.frozen_backbone)
    if chain is None:
        raise ZooError(f"model '{spec.name}': its frozen backbone '{spec.frozen_backbone}' cannot be split off "
                       "(the trainer would not cache its features either)")
    with _scratch_cache():
        runner = prepared_engine(chain, size, decide(engine), say)
    step = extractor(chain, False, (*size, 3), None if runner.name == "tensorflow" else runner)
    batch = np.random.default_rng(BENCH_SEED).integers(0, 256, (images, *size, 3), dtype=np.uint8)
    # Warm-up: traces the front and sets kernels up. TensorFlow picks its kernels per batch size, so it warms up on
    # the timed batch itself; a converted engine always gets chunks of one size (models/chunks.py).
    extract(step, batch if runner.name == "tensorflow" else batch[:8], lambda features: None)
    started = time.perf_counter()
    extract(step, batch, lambda features: None)
    seconds = time.perf_counter() - started
    return {"images_per_s": images / seconds, "seconds": seconds, "images": images, "engine": runner.name,
            "params": int(model.count_params()), "image_size": list(size)}


@contextlib.contextmanager
def _scratch_cache():
    """The cache folder pointed at a temporary one (deleted after) while random weights are converted."""
    from ..data import cache

    saved = os.environ.get(cache.CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="catdog-zoo-bench-") as scratch:
        os.environ[cache.CACHE_ENV] = scratch
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(cache.CACHE_ENV, None)
            else:
                os.environ[cache.CACHE_ENV] = saved


def on_the_frontier(rows: list) -> set:
    """Names of the rows no other row beats on both speed and published accuracy (the ones worth picking)."""
    known = [r for r in rows if r.get("images_per_s") and r.get("imagenet_top1") is not None]
    return {r["name"] for r in known
            if not any(o["images_per_s"] >= r["images_per_s"] and o["imagenet_top1"] >= r["imagenet_top1"]
                       and (o["images_per_s"], o["imagenet_top1"]) != (r["images_per_s"], r["imagenet_top1"])
                       for o in known)}

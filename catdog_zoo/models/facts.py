"""Facts about a registered model that need building it: parameters and estimated FLOPs per image.

Counting means building the model (with random weights, never downloading) and, for FLOPs, tracing
it once through TensorFlow's profiler, about a second per model, so results are kept in the cache
keyed by the spec's distribution, version, name and image size.
"""

from __future__ import annotations

import numpy as np

from ..data import cache
from ..registry import ModelSpec


def count_flops(model, image_size) -> int:
    """Floating-point operations for one image (a multiply-add counts as two), from TF's profiler."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    @tf.function(autograph=False)
    def forward(x):
        return model(x, training=False)

    concrete = forward.get_concrete_function(tf.TensorSpec([1, *image_size, 3], tf.float32))
    graph = convert_variables_to_constants_v2(concrete).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the v1 profiler logs its own deprecation on every call
    try:
        return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)
    finally:
        logger.setLevel(level)


def _key(spec: ModelSpec, num_classes: int, size: tuple) -> str:
    return cache.key("facts", model=spec.qualified_name, version=spec.version, classes=num_classes, size=size)


def counted(spec: ModelSpec) -> bool:
    """Whether ``spec``'s facts at its defaults are in the cache already (listing them costs nothing)."""
    return cache.exists(_key(spec, 2, tuple(spec.defaults.image_size)))


def model_facts(spec: ModelSpec, num_classes: int = 2, image_size=None) -> dict:
    """``{"params", "flops", "image_size"}`` at ``image_size`` (default: the spec's)."""
    size = tuple(image_size or spec.defaults.image_size)
    name = _key(spec, num_classes, size)

    def compute():
        model = spec.build(num_classes, size, weights=None)
        return np.array([model.count_params(), count_flops(model, size)], dtype=np.int64)

    params, flops = (int(v) for v in cache.cached(name, compute))
    return {"params": params, "flops": flops, "image_size": list(size)}

"""A frozen-backbone model read as a chain ``front -> frozen -> head``, and the frozen part as a function.

When a spec names its frozen backbone (``ModelSpec.frozen_backbone``), ``front`` holds the
preprocessing and augmentation layers before the backbone, ``frozen`` the backbone plus any
weightless, deterministic layers right after it (global pooling), ``head`` the rest. The frozen part
can then run once per image and view instead of once per image per epoch (:mod:`.features`); the
head shares its layer objects with the full model, so training it trains the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ..errors import ConfigError
from ..util.digest import arrays_digest

EXTRACT_BATCH = 64
WEIGHTLESS_FOLLOWERS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D, keras.layers.Flatten)


@dataclass
class FrozenChain:
    front: list
    frozen: list
    head: list

    def head_model(self, feature_dim: int) -> keras.Model:
        """The head as its own model over feature vectors, sharing weights with the full model."""
        return keras.Sequential([keras.Input(shape=(feature_dim,)), *self.head], name="cached_feature_head")

    def weights_digest(self) -> str:
        return arrays_digest(keras.ops.convert_to_numpy(w) for layer in self.front + self.frozen
                                   for w in layer.weights)

    def front_config(self) -> list:
        """What the front layers do, without their auto-generated names (which change per build)."""
        return [_without_names(layer.get_config()) for layer in self.front]


def _without_names(config):
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


def split_frozen(model: keras.Model, backbone: str):
    """The model as a :class:`FrozenChain` around layer ``backbone``, or None when that is not valid.

    Not valid: no such layer, the backbone is trainable, the head is not a pure function of the
    pooled backbone output (checked numerically on a random batch, so any graph that is not
    a simple chain falls back to ordinary training).
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [layer.name for layer in layers]
    if backbone not in names:
        return None
    i = names.index(backbone)
    if layers[i].trainable_weights:
        return None
    j = i + 1
    while j < len(layers) and isinstance(layers[j], WEIGHTLESS_FOLLOWERS):
        j += 1
    chain = FrozenChain(layers[:i], layers[i:j], layers[j:])
    probe = np.random.default_rng(0).uniform(0, 255, size=(2, *model.input_shape[1:])).astype("float32")
    x = probe
    for layer in chain.front + chain.frozen + chain.head:
        x = layer(x, training=False)
    if not np.allclose(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(model(probe, training=False)),
                       atol=1e-4):
        return None
    return chain


def extractor(chain: FrozenChain, augment: bool, image_shape, engine=None):
    """A compiled ``uint8 images -> features`` function: front (augmenting if asked), then frozen layers.

    Without ``engine`` both run in one traced TensorFlow function; with one (:mod:`.engine`), the
    front runs in TensorFlow (random augmentation is TensorFlow's) and the frozen part in the engine.
    Build it once and reuse it: tracing MobileNetV2 costs about a second. The signature leaves the
    batch size open, so the short last batch of a split does not trigger another trace.
    """

    @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.uint8)])
    def step(x):
        x = tf.cast(x, tf.float32)
        for layer in chain.front:
            x = layer(x, training=augment)
        for layer in ([] if engine is not None else chain.frozen):
            x = layer(x, training=False)
        return x
    if engine is None:
        return step
    return lambda x: engine(step(x).numpy())


class AcrossReplicas:
    """``step`` run by every replica of a one-machine strategy (``mirrored``: one per GPU) on its slice of
    each batch, the slices' results joined in order: N devices each extract 1/N of the images.
    :meth:`AcrossReplicas.take_shares` tells how many images each replica extracted since it was last asked."""

    def __init__(self, step, strategy):
        self.step, self.strategy = step, strategy
        self.counts = [0] * strategy.num_replicas_in_sync
        # strategy.run inside a graph, as tf.distribute asks (run eagerly it warns of its overhead), over a plain
        # function: handed a tf.function itself, it would pass it the per-replica value whole.
        self._everywhere = tf.function(lambda parts: strategy.run(lambda part: step(part), args=(parts,)),
                                       reduce_retracing=True)

    def __call__(self, x):
        n = len(self.counts)
        if len(x) < n:  # not a row for every replica: the first runs it all
            self.counts[0] += len(x)
            return self.step(x)
        bounds = [len(x) * r // n for r in range(n + 1)]
        parts = self.strategy.experimental_distribute_values_from_function(
            lambda context: x[bounds[context.replica_id_in_sync_group]:bounds[context.replica_id_in_sync_group + 1]])
        out = self.strategy.experimental_local_results(self._everywhere(parts))
        for r in range(n):
            self.counts[r] += bounds[r + 1] - bounds[r]
        return tf.concat([tf.convert_to_tensor(part) for part in out], axis=0)

    def take_shares(self) -> list:
        shares, self.counts = self.counts, [0] * len(self.counts)
        return shares


def extract(step, images, sink, batch_size: int = EXTRACT_BATCH, advance=lambda n: None, first_batch: int = 0,
            before_batch=None) -> None:
    """Run ``step`` (from :func:`extractor`) over ``images`` a batch at a time, handing each result to
    ``sink`` (a cache writer's ``append``): memory holds one batch, whatever the number of images.

    ``before_batch(b)`` runs before batch ``b`` (numbered from ``first_batch``: a worker's share continues
    the numbering of the whole split), to reseed random layers.
    """
    for b, i in enumerate(range(0, len(images), batch_size), start=first_batch):
        if before_batch is not None:
            before_batch(b)
        batch = np.asarray(images[i:i + batch_size])
        sink(np.asarray(step(tf.constant(batch)), np.float32))
        advance(len(batch))


def fine_tune_index(model, spec, fine_tune_at) -> int:
    """The index of the first backbone layer to unfreeze (``fine_tune_at``: an index or a layer name)."""
    backbone = model.get_layer(spec.frozen_backbone)
    names = [layer.name for layer in backbone.layers]
    if isinstance(fine_tune_at, str):
        if fine_tune_at not in names:
            raise ConfigError(f"fine_tune_at: no layer '{fine_tune_at}' in {spec.name}'s backbone")
        return names.index(fine_tune_at)
    if fine_tune_at >= len(names):
        raise ConfigError(f"fine_tune_at must be < {len(names)} (layers in {spec.name}'s backbone), "
                          f"got {fine_tune_at}")
    return fine_tune_at


def unfreeze_top(backbone, first: int) -> None:
    """Make backbone layers from index ``first`` on trainable, BatchNormalization excepted.

    Keras 3 runs a BatchNormalization layer in training mode (batch statistics, moving averages
    updated) whenever it is trainable, even inside a backbone that was called with training=False;
    only ``trainable=False`` keeps its ImageNet statistics, as the fine-tuning recipe requires.
    """
    backbone.trainable = True
    for index, layer in enumerate(backbone.layers):
        layer.trainable = index >= first and not isinstance(layer, keras.layers.BatchNormalization)


@dataclass
class BackboneSplit:
    """A backbone cut where one tensor alone carries everything below to everything above: ``lower``
    (input -> that tensor) and ``upper`` (that tensor -> output) share the backbone's layer objects."""

    lower: keras.Model
    upper: keras.Model
    cut: int  # index of the first backbone layer in ``upper``


def split_backbone(backbone, first_trainable: int):
    """The highest single-tensor cut at or below ``first_trainable``, or None (a backbone that is not a
    Keras functional model). Layers between the cut and ``first_trainable`` stay frozen in ``upper``."""
    layers = getattr(backbone, "layers", [])
    graph = getattr(backbone, "_functional", None) or backbone  # a Sequential keeps its graph there
    try:
        (start,), (end,) = graph.inputs, graph.outputs
    except (AttributeError, TypeError, ValueError):  # not a single-input, single-output functional graph
        return None
    if not layers:
        return None
    for cut in range(min(first_trainable, len(layers) - 1), 1, -1):
        below = {id(layer) for layer in layers[:cut]}
        crossing = {}
        for layer in layers[cut:]:
            # The first node is the backbone's own graph; later ones are clones made by sub-models of it.
            for node in layer._inbound_nodes[:1]:
                for tensor in node.input_tensors:
                    if id(tensor._keras_history[0]) in below:
                        crossing[id(tensor)] = tensor
        if len(crossing) == 1:
            (tensor,) = crossing.values()
            try:
                return BackboneSplit(keras.Model(start, tensor), keras.Model(tensor, end), cut)
            except (ValueError, TypeError):
                return None
    return None

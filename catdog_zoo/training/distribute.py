"""Training on several devices or machines with TensorFlow's own ``tf.distribute``.

``one_device`` trains with ``model.fit`` as always. ``mirrored`` (``MirroredStrategy``: the local GPUs,
or ``--devices``) and ``multi_worker`` (``MultiWorkerMirroredStrategy``, cluster from ``TF_CONFIG``)
train through :class:`ReplicatedLoop`, a custom step run with ``strategy.run``: Keras 3's
``model.fit`` does not work under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), and one
loop for both strategies means a plugin's model trains unchanged on either.

Batches: ``batch_size`` is per replica; a step consumes ``batch_size x replicas`` items (the global
batch). Each epoch's order is the same ``(seed, epoch)`` permutation as single-process training; step
``s`` takes global items ``s*G .. s*G+G-1``, and worker ``w`` reads only its contiguous slice of them
(the dataset is sharded per worker). The last global batch is padded with zero-weight items, so
every worker runs the same number of steps (collectives need that) and padding changes no gradient.
The loss of a step is ``sum(weight * loss) / sum(weight)`` over the whole global batch: the same
mean a single process would take over that batch.

Learning rate: the linear scaling rule (Goyal et al., 2017): with ``scale_learning_rate`` (default)
the configured rate, meant for one replica's batch, is multiplied by the number of replicas.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from typing import Optional

import numpy as np
import tensorflow as tf

from ..config import STRATEGIES
from ..errors import ConfigError
from ..models.heads import is_binary, loss_for
from ..util.rows import take


@dataclass
class Cluster:
    """This process's place in a run: the strategy (None: plain ``model.fit``) and its role."""

    name: str
    strategy: Optional[object] = None
    workers: int = 1
    worker_index: int = 0

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1

    @property
    def is_chief(self) -> bool:
        return self.worker_index == 0

    @property
    def distributed(self) -> bool:
        return self.strategy is not None

    def scope(self):
        """Create models and optimizers in here: under a strategy their variables are mirrored."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def barrier(self) -> None:
        """Wait until every worker gets here. Called last: a worker that exits while the chief still
        writes the run would look, to the chief's coordination service, like a crashed task."""
        self.all_agree(True)

    def all_agree(self, flag: bool) -> bool:
        """Whether ``flag`` is true on every worker (each waits for all): how workers decide together
        whether to use a cache entry, so none skips a step the others wait in."""
        if self.strategy is None or self.workers < 2:
            return flag
        vote = tf.constant(1.0 if flag else 0.0)

        @tf.function
        def count():
            return self.strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("sum", vote))
        return float(self.strategy.reduce("mean", count(), axis=None)) >= self.replicas - 0.5

    def describe(self) -> dict:
        return {"strategy": self.name, "replicas": self.replicas, "workers": self.workers,
                "worker_index": self.worker_index}


def _devices(spec: str) -> list:
    """"0,1" (GPU indices) or "/gpu:0,/cpu:0" (device names), checked against the logical devices."""
    names = [d.strip() for d in spec.split(",") if d.strip()]
    if not names:
        raise ConfigError("devices: give at least one device, e.g. 0,1 or /gpu:0,/gpu:1")
    names = [f"/gpu:{d}" if d.isdigit() else d for d in names]
    known = {d.name.lower().replace("/device:", "/") for d in tf.config.list_logical_devices()}
    for name in names:
        short = name.lower().replace("/device:", "/")
        if not any(k.endswith(short.lstrip("/")) for k in known):
            raise ConfigError(f"devices: no device '{name}' here (known: {', '.join(sorted(known))})")
    return names


def local_tf_configs(workers: int) -> list:
    """``TF_CONFIG`` values for ``workers`` processes on this machine, on free localhost ports (index 0
    is the chief): a cluster to try or test ``multi_worker`` without one."""
    sockets = [socket.socket() for _ in range(workers)]
    for s in sockets:
        s.bind(("localhost", 0))
    cluster = {"worker": [f"localhost:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(workers)]


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError("strategy multi_worker needs TF_CONFIG (the cluster and this task); "
                          "see docs/distributed.md")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"TF_CONFIG is not valid cluster JSON ({type(exc).__name__}: {exc}); "
                          "see docs/distributed.md") from None
    if task.get("type") != "worker" or not 0 <= int(task.get("index", -1)) < len(workers):
        raise ConfigError(f"TF_CONFIG task must be {{'type': 'worker', 'index': 0..{len(workers) - 1}}}, "
                          f"got {task}")
    return config


def make_cluster(strategy: str = "auto", devices: Optional[str] = None) -> Cluster:
    """The strategy for this process. Create it before any other TensorFlow work: the multi-worker
    strategy configures the runtime, and TensorFlow refuses once it has started."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if devices and strategy not in ("mirrored", "auto"):
        raise ConfigError(f"devices applies to the mirrored strategy, not {strategy}")
    if strategy == "multi_worker":
        config = _tf_config()
        made = tf.distribute.MultiWorkerMirroredStrategy()
        return Cluster("multi_worker", made, len(config["cluster"]["worker"]), int(config["task"]["index"]))
    gpus = tf.config.list_logical_devices("GPU")
    if strategy == "auto":
        strategy = "mirrored" if devices or len(gpus) > 1 else "one_device"
    if strategy == "one_device":
        return Cluster("one_device")
    return Cluster("mirrored", tf.distribute.MirroredStrategy(_devices(devices) if devices else None))


class ReplicatedLoop:
    """Train and evaluate one compiled Keras model under ``cluster``'s strategy, epoch by epoch.

    ``model`` and its optimizer must have been created in ``cluster.scope()``. Data comes as
    :class:`catdog_zoo.data.batches.EpochBatches`, whose ``(seed, epoch)`` order and views it reuses.
    """

    def __init__(self, cluster: Cluster, model, global_batch: int):
        self.cluster, self.model, self.global_batch = cluster, model, global_batch
        strategy = cluster.strategy
        self.binary = is_binary(model)
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)  # not lazily inside the step's tf.function
        per_item = loss_for(model, reduction=None)

        def scores(x, y, w, training):
            logits = model(tf.cast(x, tf.float32), training=training)
            if self.binary:
                losses = per_item(tf.cast(y, tf.float32)[:, None], logits)
                right = tf.cast(tf.equal(tf.cast(logits[:, 0] > 0, tf.int32), y), tf.float32)
            else:
                losses = per_item(y, logits)
                right = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y), tf.float32)
            return tf.reduce_sum(losses * w), tf.reduce_sum(right * w)

        def train_replica(x, y, w):
            context = tf.distribute.get_replica_context()
            weight = context.all_reduce("sum", tf.reduce_sum(w))  # real items in the global batch
            with tf.GradientTape() as tape:
                loss_sum, right = scores(x, y, w, True)
                loss = loss_sum / tf.maximum(weight, 1.0)
                if model.losses:  # regularisers: once per step in total, not once per replica
                    loss += tf.add_n(model.losses) / strategy.num_replicas_in_sync
            grads = tape.gradient(loss, model.trainable_variables)
            # Keras' optimizer sums gradients across replicas, hence the division by the global weight.
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss_sum, right, tf.reduce_sum(w)

        def eval_replica(x, y, w):
            loss_sum, right = scores(x, y, w, False)
            return loss_sum, right, tf.reduce_sum(w)

        def step(replica_fn):
            @tf.function
            def run(iterator):
                results = strategy.run(replica_fn, args=next(iterator))
                return [strategy.reduce("sum", r, axis=None) for r in results]
            return run
        self._train_step, self._eval_step = step(train_replica), step(eval_replica)

    def _dataset(self, views, labels, order, view_of):
        """This worker's share of every global batch, as per-replica batches, padded to whole steps."""
        g, workers = self.global_batch, self.cluster.workers
        steps = max(1, -(-len(order) // g))
        padded = np.zeros(steps * g, np.int64)
        padded[:len(order)] = order
        weight = np.zeros(steps * g, np.float32)
        weight[:len(order)] = 1.0
        per_worker = g // workers
        mine = np.concatenate([np.arange(s * g + self.cluster.worker_index * per_worker,
                                         s * g + (self.cluster.worker_index + 1) * per_worker) for s in range(steps)])
        chosen = padded[mine]
        y = np.asarray(labels, np.int32)[chosen]
        w = weight[mine]

        def shares():  # this worker's rows of one global batch at a time: memory holds a batch, not an epoch
            for s in range(steps):
                part = slice(s * per_worker, (s + 1) * per_worker)
                yield take(views, view_of[chosen[part]], chosen[part]), y[part], w[part]
        first = views[0]
        signature = (tf.TensorSpec((per_worker, *first.shape[1:]), tf.as_dtype(first.dtype)),
                     tf.TensorSpec((per_worker,), tf.int32), tf.TensorSpec((per_worker,), tf.float32))

        def dataset_fn(context):
            # Already this worker's shard: split into per-replica batches, in order.
            return (tf.data.Dataset.from_generator(shares, output_signature=signature).unbatch()
                    .batch(context.get_per_replica_batch_size(g)).prefetch(2))
        options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
        return self.cluster.strategy.distribute_datasets_from_function(dataset_fn, options), steps

    def _run(self, step_fn, batches) -> dict:
        data, steps = self._dataset(batches.views, batches.labels, batches.order, batches.view_of)
        iterator = iter(data)
        total = None
        for _ in range(steps):  # sums stay on the device: reading them back every step would stall it
            sums = step_fn(iterator)
            total = sums if total is None else [t + s for t, s in zip(total, sums)]
        loss_sum, right, count = (float(t) for t in total)
        return {"accuracy": right / max(count, 1), "loss": loss_sum / max(count, 1)}

    def train_epoch(self, batches) -> dict:
        """One epoch over ``batches``: the next epoch's order (the first call keeps the planned one)."""
        batches.on_epoch_begin()
        return self._run(self._train_step, batches)

    def evaluate(self, batches) -> dict:
        return self._run(self._eval_step, batches)


def scaled_learning_rate(learning_rate: float, cluster: Cluster, scale: bool) -> float:
    """The linear scaling rule: ``learning_rate x replicas`` when ``scale``."""
    return learning_rate * cluster.replicas if scale and cluster.distributed else learning_rate

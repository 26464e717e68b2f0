"""Fitting a model for a range of epochs: Keras' ``model.fit``, or the replicated loop under a strategy.

Either way the runner hears of every epoch through two calls, ``epoch_begin(epoch)`` and
``epoch_end(epoch, model, logs)`` (True stops the stage early), which it hands to the run's listeners
(:mod:`.listeners`: reseeding, history, trackers, early stopping, checkpoint), so both loops train, record,
checkpoint and stop alike.
"""

from __future__ import annotations

import sys

import keras

from .distribute import ReplicatedLoop


def keras_verbosity(quiet: bool) -> int:
    # Progress bars only on a terminal; one line per epoch in logs and CI.
    if quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


def fit_keras(model, first_epoch: int, last_epoch: int, train, validation, listener, verbose: int) -> None:
    """``model.fit`` for epochs ``first_epoch..last_epoch`` (0-based, end excluded)."""
    class EpochEvents(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            listener.epoch_begin(epoch)

        def on_epoch_end(self, epoch, logs=None):
            if listener.epoch_end(epoch, model, logs or {}):
                model.stop_training = True

    # shuffle=False: EpochBatches already orders each epoch by (seed, epoch); Keras would otherwise
    # reorder its batches with Python's global random state, which a resumed run does not share.
    steps = None
    if train.in_memory() and validation.in_memory():  # the same batches, without Python in between
        steps, train = len(train), train.as_dataset(last_epoch - first_epoch, repeat=True)
        validation = validation.as_dataset(1)
    model.fit(train, validation_data=validation, initial_epoch=first_epoch, epochs=last_epoch, shuffle=False,
              steps_per_epoch=steps, verbose=verbose, callbacks=[EpochEvents()])


def fit_replicated(cluster, model, per_replica_batch: int, first_epoch: int, last_epoch: int, train, validation,
                   listener) -> None:
    """``model.fit``'s job under a tf.distribute strategy, through :class:`.distribute.ReplicatedLoop`."""
    loop = ReplicatedLoop(cluster, model, per_replica_batch * cluster.replicas)
    for epoch in range(first_epoch, last_epoch):
        listener.epoch_begin(epoch)
        logs = loop.train_epoch(train)
        logs.update({f"val_{k}": v for k, v in loop.evaluate(validation).items()})
        if listener.epoch_end(epoch, model, logs):  # the epoch's line: listeners.EpochLines
            break

"""What a model's output means: one logit for two classes, one logit per class otherwise.

This module is the only place that knows it: the units of a head, the loss and accuracy that
match it, the probabilities it gives, and the optimizer that trains it.
"""

from __future__ import annotations

import keras
import numpy as np


def logit_units(num_classes: int) -> int:
    """One logit for two classes (binary cross-entropy), one per class otherwise (softmax)."""
    return 1 if num_classes == 2 else num_classes


def is_binary(model) -> bool:
    """Whether ``model`` ends in a single logit (two classes)."""
    return model.output_shape[-1] == 1


def loss_for(model, reduction="sum_over_batch_size"):
    """The cross-entropy on logits that matches ``model``'s head."""
    loss_class = keras.losses.BinaryCrossentropy if is_binary(model) else keras.losses.SparseCategoricalCrossentropy
    return loss_class(from_logits=True, reduction=reduction)


def make_optimizer(name: str, learning_rate: float):
    optimizers = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                  "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    return optimizers[name](learning_rate=learning_rate)


def compile_model(model, optimizer: str = "adam", learning_rate: float = 1e-3, steps_per_execution: int = 1):
    """Compile with the loss and accuracy that match the head (``steps_per_execution``: as Keras' own)."""
    loss = loss_for(model)
    if is_binary(model):
        accuracy = keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)  # threshold on the logit
    else:
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss=loss, metrics=[accuracy],
                  steps_per_execution=steps_per_execution)
    return model


def probabilities(logits) -> np.ndarray:
    """Per-class probabilities from the model's logits (sigmoid for one logit, softmax otherwise)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] == 1:
        p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        return np.stack([1.0 - p1, p1], axis=1)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)

"""Random augmentation layers: finding them in a model, and a copy of a model without them."""

from __future__ import annotations

import keras


def is_augmentation(layer) -> bool:
    """Keras names its random augmentation layers Random* (RandomFlip, RandomRotation, RandomZoom...):
    active only while training, identity at inference."""
    return type(layer).__name__.startswith("Random")


def augmentation_layers(model) -> list:
    """The model's random augmentation layers, in call order, nested ones included."""
    found = []
    for layer in getattr(model, "layers", []):  # Sequential and functional models list layers in call order
        if is_augmentation(layer):
            found.append(layer)
        else:
            found.extend(augmentation_layers(layer))
    return found


def without_augmentation(model):
    """``model`` with every Random* layer (nested ones too) replaced by Identity; other layers shared."""
    def swap(layer):
        return keras.layers.Identity(name=layer.name) if is_augmentation(layer) else layer
    return keras.models.clone_model(model, clone_function=swap, recursive=True)

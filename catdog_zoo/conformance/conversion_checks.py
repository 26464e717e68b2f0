"""The checks of what a model is turned into: its frozen backbone read as a chain (the feature cache's fast
path), each converting engine's features and each export format's logits beside Keras'.

An engine that cannot convert a backbone is not the plugin's failure: runs then extract with TensorFlow (slower,
the same features), which the check reports as a SKIP saying so. An engine that converts but computes other
features, or an export whose answers differ, fails.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..errors import first_line
from .outcome import failed, passed, skipped
from .subject import shown

QUICK = "left out by --quick"


def check_frozen_split(subject) -> tuple:
    """A spec naming ``frozen_backbone`` is read as ``front -> frozen -> head`` (models.frozen.split_frozen), the
    chain the trainer caches features of; else its runs silently train end to end."""
    backbone = subject.spec.frozen_backbone
    if not backbone:
        return skipped("the spec declares no frozen_backbone")
    chain = _chain(subject)
    if chain is None:
        model = subject.model(2, subject.work_size)
        names = [layer.name for layer in model.layers]
        if backbone not in names:
            return failed(f"frozen_backbone '{backbone}' is not a layer of the model (its layers: "
                          f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''})")
        return failed(f"the model is not a chain front -> '{backbone}' (frozen, no trainable weights) -> head that "
                      "gives the model's own logits: runs would train it end to end, without the feature cache")
    features = _frozen_input(subject, chain, 1)
    for layer in chain.frozen:
        features = layer(features, training=False)
    return passed(f"front {len(chain.front)} layers, frozen {len(chain.frozen)}, head {len(chain.head)}; "
                  f"{int(np.prod(features.shape[1:]))} features per image")


def _chain(subject):
    from ..models.frozen import split_frozen

    return split_frozen(subject.model(2, subject.work_size), subject.spec.frozen_backbone)


def _frozen_input(subject, chain, n: int):
    """The kit's images as the frozen part sees them: through the front, as extraction feeds it."""
    x = subject.images(subject.work_size, n=n)
    for layer in chain.front:
        x = layer(x, training=False)
    return np.asarray(x)


def check_engine(subject, target) -> tuple:
    """The engine's conversion of the frozen layers gives Keras' features within the engines' tolerance (relative to
    the features' scale where that is below 1), on the kit's images through the model's front (the engine's own
    check at conversion uses one probe)."""
    from ..models.engine import PARITY_TOLERANCE

    if not subject.spec.frozen_backbone:
        return skipped("no frozen backbone: features are not extracted")
    if subject.quick:
        return skipped(QUICK)
    if target.unavailable:
        return skipped(target.unavailable)
    chain = _chain(subject)
    if chain is None:
        return skipped("no frozen chain (see frozen backbone): features are not extracted")
    x = _frozen_input(subject, chain, 4)
    expected = x
    for layer in chain.frozen:
        expected = layer(expected, training=False)
    try:
        got = np.asarray(target.make(chain.frozen, tuple(x.shape[1:]))(x))
    except Exception as exc:  # noqa: BLE001 - a converter refusing a layer: runs fall back, said as such
        return skipped(f"cannot convert this backbone ({first_line(exc)}): runs extract with TensorFlow instead")
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        return failed(f"features of shape {got.shape[1:]}, Keras' {expected.shape[1:]}")
    worst, scale = float(np.abs(got - expected).max()), float(np.abs(expected).max())
    if not scale > 0:
        return skipped("the backbone's features are all zero with random weights (weights=None): nothing to compare")
    # Random weights (weights=None) can shrink a deep backbone's features to 1e-11 (MobileNetV2), where the engines'
    # absolute tolerance would pass anything: below a scale of 1 the tolerance is relative to the largest feature.
    limit = PARITY_TOLERANCE * min(1.0, scale)
    if not worst <= limit:
        return failed(f"features differ from Keras' by {worst:.1e} (largest feature {scale:.1e}, tolerance "
                      f"{limit:.1e}): runs would refuse this engine and extract with TensorFlow")
    return passed(f"features within {worst:.1e} of Keras' (largest feature {scale:.1e}, tolerance {limit:.1e}) at "
                  f"{shown(x.shape[1:3])}")


def check_export(subject, target) -> tuple:
    """The format writes the model (augmentation left out, as ``export`` does) and the written export, opened again,
    gives Keras' class probabilities within the export tolerance."""
    from ..models.augment import without_augmentation
    from ..models.heads import probabilities
    from ..runs.export import PARITY_TOLERANCE

    if subject.quick:
        return skipped(QUICK)
    if target.unavailable:
        return skipped(target.unavailable)
    size = subject.work_size
    model = without_augmentation(subject.model(2, size))
    x = subject.images(size, n=4)
    expected = probabilities(model(x, training=False))
    with tempfile.TemporaryDirectory(prefix="catdog-zoo-check-") as tmp:
        try:
            got = probabilities(target.make(model, Path(tmp), ("class0", "class1"), size)(x))
        except Exception as exc:  # noqa: BLE001 - the converter's refusal is the finding
            return failed(f"cannot export this model: {type(exc).__name__}: {first_line(exc)}")
    if got.shape != expected.shape:
        return failed(f"the export gives {got.shape[1]} class probabilities, Keras {expected.shape[1]}")
    worst = float(np.abs(got - expected).max())
    if not worst <= PARITY_TOLERANCE:
        return failed(f"its probabilities differ from Keras' by {worst:.1e} (tolerance {PARITY_TOLERANCE:g})")
    return passed(f"probabilities within {worst:.1e} of Keras' (tolerance {PARITY_TOLERANCE:g})")

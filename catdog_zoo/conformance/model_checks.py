"""The checks every model gets: it loads, describes itself, builds at several sizes and class counts with the
logits the trainer expects, trains, repeats itself from a seed and survives a save and a safe-mode load.

Each check is a function of the :class:`~.subject.Subject` returning ``(status, why)`` (:mod:`.outcome`).
"""

from __future__ import annotations

import numpy as np

from ..errors import first_line
from .outcome import failed, passed, skipped
from .subject import FIXED_SIZE_TAG, NotBuilt, shown

TRAIN_STEPS = 3  # training steps on one batch


def check_loads(subject, zoo) -> tuple:
    """The plugin that registered the model loaded without errors (what ``catdog-zoo plugins`` would flag)."""
    info = zoo.plugins.get(subject.spec.plugin)
    if info is None:
        return skipped("registered by no plugin the zoo knows")
    if info.errors:
        return failed(f"plugin {info.name} ({info.origin}): " + "; ".join(info.errors))
    return passed(f"plugin {info.name} ({info.origin} {info.version}) loaded with no errors")


def check_metadata(subject) -> tuple:
    """What ``catdog-zoo models`` and a run record show: a one-line summary, the input size, the parameter count,
    the pretrained source with its licence."""
    spec, problems = subject.spec, []
    if not isinstance(spec.name, str) or not spec.name.strip():
        problems.append("the model needs a name")
    if not isinstance(spec.summary, str) or not spec.summary.strip() or "\n" in spec.summary.strip():
        problems.append("summary must be one non-empty line")
    if spec.pretrained and not spec.weights_licence:
        problems.append(f"pretrained source '{spec.pretrained}' without weights_licence")
    if spec.weights_licence and not spec.pretrained:
        problems.append("weights_licence without a pretrained source")
    try:
        model = subject.model(2, subject.default_size)
        params = model.count_params()
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        counted = f"{params:,} params ({trainable:,} trainable)"
        if params <= 0:
            problems.append("the model has no parameters")
    except NotBuilt:  # its build check says why
        counted = "params not counted (the model does not build)"
    if problems:
        return failed("; ".join(problems))
    source = (f"pretrained '{spec.pretrained}' ({spec.weights_licence}), built with weights=None: nothing downloaded"
              if spec.pretrained else "no pretrained weights")
    return passed(f"default input {shown(subject.default_size)}, {counted}, {source}")


def check_build(subject, classes: int, size: tuple) -> tuple:
    """Built for ``classes`` at ``size``: a keras.Model taking (N, H, W, 3) and giving finite float logits of shape
    (N, 1) for two classes with one logit, else (N, classes)."""
    try:
        model = subject.model(classes, size)
    except NotBuilt as exc:  # the builder's own error is the finding
        hint = (f"; a model that takes one input size declares tags=('{FIXED_SIZE_TAG}',)"
                if size != subject.default_size else "")
        return failed(f"the builder raised {_first_line(exc.cause)}{hint}")
    if tuple(model.input_shape[1:]) != (*size, 3):
        return failed(f"input shape {model.input_shape}, asked for {shown(size)} (N, {size[0]}, {size[1]}, 3)")
    x = subject.images(size, n=4)
    logits = np.asarray(model(x, training=False))
    expected = [(4, 1), (4, 2)] if classes == 2 else [(4, classes)]
    if logits.shape not in expected:
        return failed(f"logits of shape {logits.shape} for {classes} classes; expected "
                      + " or ".join(map(str, expected)))
    if logits.dtype.kind != "f":
        return failed(f"logits of dtype {logits.dtype}, not floating point")
    if not np.isfinite(logits).all():
        return failed("logits are not all finite on random images in [0, 255]")
    return passed(f"logits {logits.shape} {logits.dtype}")


def check_train_step(subject) -> tuple:
    """Compiled as a run compiles it (models.heads, the spec's optimizer and learning rate), a few steps on one
    batch keep the loss finite, change the trainable weights and leave a frozen backbone as it was. (Whether the
    loss falls is said, not required: on random images a from-scratch CNN's first Adam steps may overshoot.)"""
    from ..models.heads import compile_model

    size, spec = subject.work_size, subject.spec
    model = subject.build(2, size)
    compile_model(model, spec.defaults.optimizer, spec.defaults.learning_rate)
    x, y = subject.batch(size)
    frozen = _frozen_weights(model, spec.frozen_backbone)
    trainable = [np.array(w) for w in model.trainable_weights]
    if not trainable:
        return failed("the model has no trainable weights")
    before = float(np.asarray(model.test_on_batch(x, y, return_dict=True)["loss"]))
    for _ in range(TRAIN_STEPS):
        model.train_on_batch(x, y)
    after = float(np.asarray(model.test_on_batch(x, y, return_dict=True)["loss"]))
    changed = sum(not np.array_equal(a, np.asarray(w)) for a, w in zip(trainable, model.trainable_weights))
    steps = f"{TRAIN_STEPS} steps on {len(x)} random images at {shown(size)}"
    if not np.isfinite(after):
        return failed(f"the loss is {after} after {steps}")
    if not changed:
        return failed(f"no trainable weight changed after {steps}")
    if frozen is not None and not _same(frozen, _frozen_weights(model, spec.frozen_backbone)):
        return failed(f"the frozen backbone '{spec.frozen_backbone}' changed in training (a BatchNormalization "
                      "left trainable updates its statistics)")
    return passed(f"loss {before:.4f} -> {after:.4f} after {steps}; {changed} of {len(trainable)} trainable "
                  "weights changed" + ("; frozen backbone unchanged" if frozen is not None else ""))


def _frozen_weights(model, backbone):
    if not backbone:
        return None
    try:
        return [np.array(w) for w in model.get_layer(backbone).weights]
    except ValueError:  # no such layer: the frozen-backbone check says so
        return None


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def check_seeding(subject) -> tuple:
    """Built twice from the same seed: the same initial weights, and the same weights after one seeded step (its
    dropout and augmentation draws included)."""
    import keras

    from ..models.heads import compile_model

    size, spec = subject.work_size, subject.spec
    x, y = subject.batch(size)
    first, second = subject.build(2, size), subject.build(2, size)
    if not _same(first.get_weights(), second.get_weights()):
        return failed("two builds from the same seed have different initial weights (an initializer or a "
                      "random draw that ignores keras.utils.set_random_seed)")
    stepped = []
    for model in (first, second):
        compile_model(model, spec.defaults.optimizer, spec.defaults.learning_rate)
        keras.utils.set_random_seed(1)
        model.train_on_batch(x, y)
        stepped.append(model.get_weights())
    if not _same(*stepped):
        return failed("the same seeded training step on the same batch gave different weights (a random layer "
                      "that ignores keras.utils.set_random_seed)")
    return passed("same seed: the same initial weights and the same weights after a training step")


def check_save_load(subject) -> tuple:
    """Saved as a run saves it and loaded as every command loads it (``models.saving``: Keras safe mode, no code
    from the file), the model gives the same logits."""
    import tempfile
    from pathlib import Path

    from ..errors import ZooError
    from ..models.saving import load_model, save_model

    size = subject.work_size
    model = subject.model(2, size)
    x = subject.images(size, n=4)
    with tempfile.TemporaryDirectory(prefix="catdog-zoo-check-") as tmp:
        path = Path(tmp) / "model.keras"
        save_model(model, path)
        try:
            loaded = load_model(path)
        except ZooError as exc:
            return failed(str(exc).replace(str(path), "model.keras"))
    worst = float(np.abs(np.asarray(loaded(x, training=False)) - np.asarray(model(x, training=False))).max())
    if worst > 1e-6:
        return failed(f"the loaded model's logits differ from the saved one's by {worst:.2e}")
    return passed(f"model.keras loads in safe mode with the same logits (max difference {worst:.1e})")


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"

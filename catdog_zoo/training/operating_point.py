"""At the end of a run: the operating point of its "unknown" answers (:mod:`catdog_zoo.runs.rejection`).

Set from the run's own training and validation photos only. The features are those the head was trained on
when they still describe the final model (a head on cached, un-augmented features); otherwise (fine-tuned
backbone, augmented views, no feature cache) the final model computes them, on the same engine as ``predict``.
"""

from __future__ import annotations

import numpy as np

from ..runs import rejection
from ..runs.inference import RunModel, run_extraction

NO_BACKBONE = ("its model has no pretrained backbone (ModelSpec.frozen_backbone), and features learnt from scratch "
               "on these classes alone cannot tell them from everything else")


def fit_rejection(trained, net, scorer) -> dict:
    """Fit, save ``novelty.npy`` into the run folder and return what ``metrics.json`` records (``net``: the
    trained model as saved)."""
    spec, cfg = trained.spec, trained.cfg
    if not (spec.frozen_backbone and spec.pretrained):
        return rejection.unavailable(NO_BACKBONE)
    features = _features(trained, net, scorer)
    if features is None:
        return rejection.unavailable(f"{spec.name}'s model does not split at its backbone '{spec.frozen_backbone}'")
    novelty, facts = rejection.fit(features["train"], features["validation"], seed=cfg.seed)
    rejection.save(trained.run_dir, novelty)
    return facts


def _features(trained, net, scorer):
    """``{"train": rows, "validation": rows}`` of the final model's backbone features, or None."""
    cached = scorer.features if scorer is not None else None
    if cached is not None and not trained.cfg.aug_views:
        return {"train": np.asarray(cached["train"][0][:]), "validation": np.asarray(cached["validation"][:])}
    backbone = net.get_layer(trained.spec.frozen_backbone)
    trainable = [(layer, layer.trainable) for layer in [backbone, *getattr(backbone, "layers", [])]]
    try:
        model = RunModel(net, trained.spec.name, trained.cfg.image_size, run_extraction(trained.cfg.engine))
        if not model.has_backbone:
            return None
        out = {}
        for name in ("train", "validation"):
            images, count = trained.decoded[name].images, len(trained.decoded[name].split)
            out[name] = np.concatenate([model.features(images[i:i + 64]) for i in range(0, count, 64)]) if count \
                else np.zeros((0, 1), np.float32)
        return out
    finally:  # RunModel fixes the backbone for inference; the run's model keeps what training made of it
        for layer, flag in trainable:
            layer.trainable = flag

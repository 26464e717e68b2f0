"""The built-in stages, registered through the ``register_stages`` hook as a plugin's are (docs/plugins.md#stages).

``head`` trains the model as built (its head on cached features when it has a frozen backbone and the feature
cache is on); ``fine_tune`` then unfreezes the backbone's top layers, when ``fine_tune_epochs`` asks for it. The
stage classes live in :mod:`.stages`, imported when a run is planned (they import Keras; ``catdog-zoo plugins``
does not).
"""

from __future__ import annotations

from ..extensions import StageSpec
from ..hookspecs import hookimpl


def _head(spec, cfg, net, planned):
    from .stages import HeadOnFeatures, HeadOnImages
    if cfg.feature_cache and spec.frozen_backbone:
        return HeadOnFeatures(cfg.epochs, spec.frozen_backbone)
    return HeadOnImages(cfg.epochs)


def _fine_tune(spec, cfg, net, planned):
    if not (cfg.fine_tune_epochs and spec.frozen_backbone):
        return None
    from ..models.frozen import fine_tune_index
    from .stages import FineTune, FineTuneOnActivations
    stage = FineTuneOnActivations if cfg.feature_cache else FineTune
    return stage(cfg.fine_tune_epochs, spec.frozen_backbone, fine_tune_index(net, spec, cfg.fine_tune_at))


@hookimpl
def register_stages(register):
    register(StageSpec(name="head", summary="Train the model as built: a frozen backbone's head on cached features, "
                       "else end to end on images", make=_head, order=10, records=("feature_cache",)))
    register(StageSpec(name="fine_tune", summary="Unfreeze the backbone's top layers (fine_tune_at) and train "
                       "fine_tune_epochs more at fine_tune_learning_rate", make=_fine_tune, order=20,
                       records=("from_layer", "feature_cache", "activations_at", "activations"),
                       drawn="fine-tuning starts"))

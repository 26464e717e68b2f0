"""A finished run's model, ready to score image batches as fast as training scored them.

Training extracted the features of a model's frozen backbone on the engine of ``models.engine``
(TFLite/XNNPACK by default, 2-2.5x TensorFlow's throughput on a CPU, features within 1e-4). Scoring
does the same: when the run's plugin names a backbone (``frozen_backbone``) and the model splits there
into front, backbone and head, ``evaluate`` and ``predict`` run the front in TensorFlow, the backbone on
the engine (its conversion cached by weights digest, so usually the one training made) and the head in
Keras. A fine-tuned backbone is just as fixed at inference and runs on the engine too. Anything else
(no backbone declared, the plugin not installed, a model that does not split, an engine that cannot take
the backbone) runs whole in Keras, as ``model.keras`` does.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..errors import ConfigError, ZooError
from ..models.engine import frozen_engine
from ..models.features import frozen_input_shape
from ..models.frozen import extractor, split_frozen
from ..models.heads import probabilities
from ..plugins import get_zoo


class RunModel:
    """``logits(float32 images)`` and ``probabilities(images, tta)`` of a run's model."""

    def __init__(self, model, model_name: str = "", image_size=None, engine: str = "auto", class_names=None):
        self.model = model
        outputs = model.output_shape[-1]
        if class_names is not None and (2 if outputs == 1 else outputs) != len(class_names):
            raise ZooError(f"the run's metrics.json names {len(class_names)} classes but its model has "
                           f"{2 if outputs == 1 else outputs} (metrics.json edited?)")
        self.engine = "keras"
        self._extract = self._head = None
        takes = tuple(model.input_shape[1:3])
        if image_size is not None and None not in takes and takes != tuple(image_size):
            raise ZooError(f"the run's config says image_size {list(image_size)} but its model takes {list(takes)} "
                           "(config.yaml edited?)")
        if engine != "tensorflow" and image_size is not None:
            self._use_engine(model_name, tuple(image_size), engine)

    def _use_engine(self, model_name: str, image_size, engine: str) -> None:
        try:
            backbone = get_zoo().model(model_name).frozen_backbone if model_name else None
        except Exception:  # noqa: BLE001 - the run's plugin is gone or broken: model.keras alone still works
            backbone = None
        if not backbone or backbone not in {layer.name for layer in self.model.layers}:
            return
        self.model.get_layer(backbone).trainable = False  # fixed at inference, fine-tuned or not
        chain = split_frozen(self.model, backbone)
        if chain is None:
            return
        try:
            frozen = frozen_engine(chain.frozen, frozen_input_shape(chain, image_size), chain.weights_digest(),
                                   engine, say=lambda text: None)  # a fallback is Keras' own speed: nothing to say
        except ConfigError:  # the run's engine is not here (an extra not installed) or cannot run it: model.keras
            return
        if frozen.name == "tensorflow":
            return
        self._extract = extractor(chain, False, (*image_size, 3), frozen)  # as training extracted features
        self._head = chain.head_model(self._extract(tf.zeros((1, *image_size, 3), tf.uint8)).shape[-1])
        self.engine = frozen.name

    def logits(self, images) -> np.ndarray:
        """Logits of uint8 pixel batches (decoded images)."""
        if self._extract is None:
            return np.asarray(self.model.predict_on_batch(np.asarray(images, np.float32)))
        return np.asarray(self._head.predict_on_batch(self._extract(tf.constant(np.asarray(images, np.uint8)))))

    def probabilities(self, images, tta: bool = False) -> np.ndarray:
        """Per-class probabilities; with ``tta``, the mean over the image and its mirror image (test-time
        augmentation with the one transform every model here trains with: a horizontal flip)."""
        images = np.asarray(images)
        probs = probabilities(self.logits(images))
        if tta:
            probs = (probs + probabilities(self.logits(images[:, :, ::-1]))) / 2
        return probs

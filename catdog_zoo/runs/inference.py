"""A finished run's model, ready to score image batches as fast as training scored them.

Training extracted the features of a model's frozen backbone on the engine of ``models.engine``
(TFLite/XNNPACK by default, 2-2.5x TensorFlow's throughput on a CPU, features within 1e-4). Scoring
does the same, with the run's engine decided as training decides it (``models.extraction``): when the
run's plugin names a backbone (``frozen_backbone``) and the model splits there into front, backbone and
head, ``evaluate`` and ``predict`` run the front in TensorFlow, the backbone on the engine (its conversion
cached by weights digest, so usually the one training made) and the head in Keras. A fine-tuned backbone
is just as fixed at inference and runs on the engine too. Anything else (no backbone declared, the plugin
not installed, a model that does not split, an engine that is not here or cannot take the backbone) runs
whole in Keras, as ``model.keras`` does.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..errors import ConfigError, ZooError
from ..models.engine import REFERENCE, frozen_engine, frozen_input_shape
from ..models.extraction import IN_TENSORFLOW, Extraction, decide
from ..models.frozen import extractor, split_frozen
from ..models.heads import probabilities
from ..plugins import get_zoo


class RunModel:
    """``logits(uint8 images)``, ``probabilities(images, tta)`` and, for a model with a pretrained backbone,
    ``features(images)`` (what the backbone makes of them: the input of rejection, :mod:`.rejection`).

    ``temperature``: the run's calibration (``metrics.json``), dividing the logits before probabilities.
    ``extraction`` (:func:`run_extraction`): the engines to try and what the backbone computes in: ``float32``
    (the answers ``evaluate`` measured), or ``bfloat16`` (faster on a CPU that computes in it natively, with
    the OpenVINO engine; answers may differ on images near the decision boundary, docs/serve.md).
    """

    def __init__(self, model, model_name: str = "", image_size=None, extraction=IN_TENSORFLOW, class_names=None,
                 temperature: float = 1.0):
        self.model, self.temperature = model, float(temperature)
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
        if image_size is not None:
            self._split(model_name, tuple(image_size), extraction)
        if extraction.precision != "float32" and self.engine == "keras":
            raise ConfigError(_needs(extraction.precision, self.engine))

    @property
    def has_backbone(self) -> bool:
        """Whether the model splits at a declared pretrained backbone (so ``features`` works)."""
        return self._extract is not None

    def _split(self, model_name: str, image_size, extraction) -> None:
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
        frozen = None
        if extraction.engine != REFERENCE:
            try:
                # a fallback is Keras' own speed: nothing to say
                frozen = frozen_engine(chain.frozen, frozen_input_shape(chain, image_size), chain.weights_digest(),
                                       extraction, say=lambda text: None)
            except ConfigError:  # the run's engine is not here (an extra not installed) or cannot run it
                frozen = None
            if frozen is not None and frozen.name == REFERENCE:
                frozen = None
        name = frozen.name if frozen is not None else "keras"
        if frozen is not None:
            if extraction.precision != "float32" and not frozen.computes(extraction.precision):
                raise ConfigError(_needs(extraction.precision, frozen.name))
            if extraction.precision == "bfloat16" and not frozen.native_bfloat16:
                raise ConfigError("precision bfloat16: this CPU does not compute in bfloat16 natively (AMX or "
                                  "AVX512-BF16), so it would be slower than float32, not faster")
            # scoring shares the cores with decoding (and serve's HTTP): an engine's streams keep pace
            frozen = frozen.streams(extraction.precision)
        # As training extracted features: the front in TensorFlow, the frozen part on the engine (or in TensorFlow).
        self._extract = extractor(chain, False, (*image_size, 3), frozen)
        self._head = chain.head_model(np.asarray(self._extract(tf.zeros((1, *image_size, 3), tf.uint8))).shape[-1])
        self.engine = name

    def features(self, images) -> np.ndarray:
        """The pretrained backbone's (pooled) features of uint8 pixel batches; only when ``has_backbone``."""
        return np.asarray(self._extract(tf.constant(np.asarray(images, np.uint8))), np.float32)

    def logits(self, images, features=None) -> np.ndarray:
        """Logits of uint8 pixel batches (decoded images); ``features``: theirs, when already computed."""
        if self._extract is None:
            return np.asarray(self.model.predict_on_batch(np.asarray(images, np.float32)))
        if features is None:
            features = self.features(images)
        return np.asarray(self._head.predict_on_batch(features))

    def probabilities(self, images, tta: bool = False, features=None) -> np.ndarray:
        """Per-class probabilities (temperature-scaled); with ``tta``, the mean over the image and its mirror
        image (test-time augmentation with the one transform every model here trains with: a horizontal flip)."""
        images = np.asarray(images)
        probs = probabilities(self.logits(images, features) / self.temperature)
        if tta:
            probs = (probs + probabilities(self.logits(images[:, :, ::-1]) / self.temperature)) / 2
        return probs


def _needs(precision: str, engine: str) -> str:
    return (f"precision {precision} needs the openvino engine, and this run scores on {engine} (pip install "
            "'catdog-zoo[openvino]'; a model with a pretrained backbone)")


def run_temperature(record) -> float:
    """The temperature a run's calibration fitted (1.0 for runs without one); an edited value is refused."""
    calibration = getattr(record, "calibration", None) or {}
    value = calibration.get("temperature", 1.0) if isinstance(calibration, dict) else 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.01 <= value <= 100:
        raise ZooError(f"metrics.json: calibration temperature must be a number in [0.01, 100], got {str(value)[:40]}")
    return float(value)


def run_extraction(engine: str, precision: str = "float32"):
    """How a run's backbone is scored here: its recorded ``engine`` decided as training decides it; an engine no
    longer registered (its plugin uninstalled) leaves the backbone to TensorFlow, as ``model.keras`` runs."""
    try:
        return decide(engine, precision)
    except ConfigError:
        return Extraction(precision=precision)


def open_run_model(run_dir, config, record, model, reject: bool = True, precision: str = "float32") -> tuple:
    """``(RunModel, Novelty or None, why or None)`` for scoring with a finished run: ``why`` there is no
    rejection when ``reject`` was asked for and the run cannot do it (to be said once)."""
    from .rejection import load as load_novelty

    scorer = RunModel(model, record.model, config.image_size, run_extraction(config.engine, precision),
                      record.class_names, temperature=run_temperature(record))
    if not reject:
        return scorer, None, None
    facts = getattr(record, "rejection", None) or {}
    if not facts.get("available"):
        why = facts.get("why") or "it was trained by a version of catdog-zoo without rejection (train it again)"
        return scorer, None, why
    if not scorer.has_backbone:
        return scorer, None, f"its plugin's model ({record.model}) is not installed here to split at its backbone"
    dim = scorer.features(np.zeros((1, *config.image_size, 3), np.uint8)).shape[-1]
    return scorer, load_novelty(run_dir, facts, dim), None

"""The stages of a run, each a small unit with one job; :class:`.runner.Runner` strings them together.

A stage has a ``name`` (the ``stage`` column of ``history.csv`` and of a checkpoint: its StageSpec's), a
number of ``epochs``, ``prepare(model)`` (what it trains: makes a model trainable that way) and
``run(context, first, last, checkpoint)``, which trains epochs ``first..last-1`` through ``context.fit``
(:mod:`.context`; every epoch is recorded and checkpointed; epoch numbers count across stages) and returns a
:class:`~.context.StageResult`: its facts for the run record, and a :class:`Scorer` when it knows a cheaper way
to score the trained model than running it on images.

- :class:`HeadOnImages`: the model as built, on decoded images (every model without a frozen backbone).
- :class:`HeadOnFeatures`: a frozen-backbone model's head, on cached backbone features.
- :class:`FineTune`: the backbone's top layers unfrozen, the whole model on images at a low rate.
- :class:`FineTuneOnActivations`: the same, on cached activations of the frozen layers below them.

The built-in stages are planned by :mod:`.builtin_stages` through the ``register_stages`` hook, as a plugin's are
(docs/plugins.md#stages); :mod:`.plan` makes a run's list.
"""

from __future__ import annotations

import keras

from ..data.batches import EpochBatches
from ..data.cache import cache_root
from ..models.engine import prepared_engine
from ..models.extraction import decide
from ..models.features import FeatureStore
from ..models.frozen import FrozenChain, split_backbone, split_frozen, unfreeze_top
from ..models.heads import probabilities
from ..util.names import terminal
from ..util.rows import in_memory_if_small
from .context import StageResult
from .leakage import leakage_hint


class Scorer:
    """Scores a split with ``model`` fed by ``inputs(split_name)``: the full model on images, or the
    cached-feature head on features (the same numbers, without running the backbone again)."""

    def __init__(self, model, inputs):
        self.model, self.inputs = model, inputs
        # {"train": [view, ...], "validation": rows, ...}: the pretrained backbone's own features, when the
        # scored model is a head on them (what rejection measures novelty with, training/operating_point.py)
        self.features = None

    def evaluate(self, name) -> dict:
        return self.model.evaluate(self.inputs(name), verbose=0, return_dict=True)

    def logits(self, name):
        """The model's raw outputs on split ``name``: ``(N, 1)`` for a one-logit binary model, else ``(N, C)``."""
        return self.model.predict(self.inputs(name), verbose=0)

    def probabilities(self, name):
        return probabilities(self.logits(name))


class Stage:
    """What every stage has: a name, a number of epochs, and training the whole model on images."""

    name = ""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def facts(self) -> dict:
        return {}

    def prepare(self, model) -> None:
        """Make ``model`` (the run's, or a copy of it) trainable the way this stage trains it; the finish
        does this for every stage of the plan to a model it builds again (nothing, for most stages)."""

    def result(self, scorer=None, cache_report=None) -> StageResult:
        return StageResult(facts=self.facts(), scorer=scorer, cache_report=cache_report)

    def prepare_early(self, net, cfg, say) -> None:
        """Work that needs the model but not the images, done while they are decoded (a new run only:
        a resumed one restores weights after this point)."""

    def _on_images(self, context, first: int, last: int, checkpoint) -> None:
        context.fit(context.net, first, last, context.images("train", shuffle=True, first_epoch=first),
                    context.images("validation"), checkpoint)


class HeadOnImages(Stage):
    """Train the model as built, end to end on images (its frozen layers, if any, stay frozen)."""

    name = "head"

    def facts(self) -> dict:
        return {"feature_cache": False}

    def run(self, context, first: int, last: int, checkpoint) -> StageResult:
        context.compile(context.net, context.cfg.learning_rate)
        self._on_images(context, first, last, checkpoint)
        return self.result()


class HeadOnFeatures(HeadOnImages):
    """Train a frozen-backbone model's head on cached features of the frozen part (``models.features``).

    Falls back to :class:`HeadOnImages` when the model is not a simple ``front -> frozen -> head`` chain.
    """

    def __init__(self, epochs: int, backbone: str):
        super().__init__(epochs)
        self.backbone = backbone
        self.used = True
        self.chain = self.engine = None  # the model split and its engine, when prepared while images were decoded
        self.extraction = None  # engines and precision, decided once (models/extraction.py)

    def facts(self) -> dict:
        return {"feature_cache": self.used}

    def prepare_early(self, net, cfg, say) -> None:
        """Convert the frozen part for the feature engine: single-threaded work that decoding leaves a core
        for (about 1.5 s of a cold run's set-up at 224 px)."""
        self.chain = split_frozen(net, self.backbone)
        self.extraction = decide(cfg.engine, cfg.train_precision)
        if self.chain is not None and self.extraction.candidates:
            self.engine = prepared_engine(self.chain, cfg.image_size, self.extraction, say)

    def run(self, context, first: int, last: int, checkpoint) -> StageResult:
        context.compile(context.net, context.cfg.learning_rate)
        chain = self.chain or split_frozen(context.net, self.backbone)
        if chain is None:
            context.say(f"Note: {terminal(context.spec.name)}'s layers around '{terminal(self.backbone)}' are not a "
                        "simple chain; training end to end without the feature cache")
            self.used = False
            self._on_images(context, first, last, checkpoint)
            return self.result()
        context.say(f"Features of the frozen '{terminal(self.backbone)}' (cache: {terminal(cache_root())})")
        # Handed over, not kept: the engine's working memory (hundreds of MB at batch 64) must go once the
        # features are extracted, before the head trains.
        engine, self.engine = self.engine, None
        self.extraction = self.extraction or decide(context.cfg.engine, context.cfg.train_precision)  # resumed
        features, report = cached_inputs(context, chain, "features", self.extraction, engine)
        del engine
        if not context.cfg.aug_views:  # training features are the photos themselves: copies across splits show
            hint = leakage_hint(context.decoded, {**features, "train": features["train"][0]}, context.splits.root)
            if hint:
                context.say(hint)
        with context.cluster.scope():
            head = chain.head_model(features["train"][0].shape[-1])
        scorer = train_on_cached(context, head, first, last, checkpoint, features, context.cfg.learning_rate)
        scorer.features = features  # the backbone's own features: rejection's measure, unless fine-tuning follows
        return self.result(scorer, cache_report=report)


def cached_inputs(context, chain, part: str, extraction, engine=None) -> tuple:
    """``({"train": [view, ...], "validation": rows, "test": rows}, report)`` (each view or rows ``(N, ...)``,
    read from disk on demand): what ``chain``'s
    frozen part makes of every image (and augmented view), cached on disk (``models.features``)."""
    cfg, decoded = context.cfg, context.decoded
    # Only the head's training features may be bfloat16: fine-tuning's activations were not measured so.
    store = FeatureStore(chain, context.spec.qualified_name, cfg.image_size, cfg.seed, context.progress,
                         extraction if part == "features" else extraction.in_float32(), say=context.say, part=part,
                         cluster=context.cluster, prepared=engine)
    train = decoded["train"]
    inputs = {"train": store.augmented(train.images, train.digest, cfg.aug_views) if cfg.aug_views
              else [store.plain(train.images, train.digest, f"{part} of train", training=True)]}
    for name in ("validation", "test"):
        inputs[name] = store.plain(decoded[name].images, decoded[name].digest, f"{part} of {name}")
    r = store.report.as_dict()
    views = f" ({cfg.aug_views} augmented views)" if cfg.aug_views else ""
    precision = f"; train in {r['train_precision']}" if r["train_precision"] != "float32" else ""
    computed = (f"{r['misses']} computed ({r['images_extracted']} images in {r['extract_seconds']}s)"
                if r["misses"] else "none computed")
    context.say(f"{part.capitalize()} ready (train{views}, validation, test{precision}): {r['hits']} from the cache, "
                f"{computed}")
    return inputs, store.report


def train_on_cached(context, model, first: int, last: int, checkpoint, inputs: dict, learning_rate):
    """Compile and fit ``model`` on cached inputs; a :class:`Scorer` of it on the same inputs."""
    cfg = context.cfg
    inputs = {"train": [in_memory_if_small(view) for view in inputs["train"]],
              **{name: in_memory_if_small(inputs[name]) for name in ("validation", "test")}}

    def plain(name) -> EpochBatches:
        return EpochBatches([inputs[name]], context.labels(name), cfg.batch_size)
    train = EpochBatches(inputs["train"], context.labels("train"), cfg.batch_size, shuffle=True, seed=cfg.seed,
                         first_epoch=first)
    # Steps on cached inputs take about a millisecond; one call into TensorFlow per epoch instead of one per
    # batch makes the head's 20 epochs about 1.4x faster, with the same losses (epochs still end alike).
    context.compile(model, learning_rate, steps_per_execution=len(train))
    context.fit(model, first, last, train, plain("validation"), checkpoint, fast_epochs=True)
    return Scorer(model, plain)


class FineTune(Stage):
    """Unfreeze the backbone's layers from ``from_layer`` on (BatchNorm stays frozen) and train the whole
    model on images at the fine-tuning learning rate, as the TensorFlow transfer-learning guide does."""

    name = "fine_tune"

    def __init__(self, epochs: int, backbone: str, from_layer: int):
        super().__init__(epochs)
        self.backbone, self.from_layer = backbone, from_layer

    def facts(self) -> dict:
        return {"from_layer": self.from_layer, "feature_cache": False}

    def prepare(self, model) -> None:
        """Make ``model`` (the run's, or a copy of it) trainable the way this stage trains it."""
        unfreeze_top(model.get_layer(self.backbone), self.from_layer)

    def run(self, context, first: int, last: int, checkpoint) -> StageResult:
        cfg = context.cfg
        context.say(f"Fine-tuning {terminal(self.backbone)} from layer {self.from_layer} for "
                    f"{self.epochs} epochs at learning rate {cfg.fine_tune_learning_rate:g}")
        self.prepare(context.net)
        context.compile(context.net, cfg.fine_tune_learning_rate)
        self._on_images(context, first, last, checkpoint)
        return self.result()  # no scorer: the backbone changed, cached features no longer describe the model


class FineTuneOnActivations(FineTune):
    """:class:`FineTune` without running the frozen layers every epoch: the backbone is cut where one tensor
    carries everything below the first unfrozen layer (``models.frozen.split_backbone``), that tensor is
    computed once per image and view and cached, and only the layers above it train, on those
    activations. BatchNorm stays in inference mode, as in :class:`FineTune`; the saved model is whole.
    Falls back to :class:`FineTune` when the model cannot be cut so."""

    def __init__(self, epochs: int, backbone: str, from_layer: int):
        super().__init__(epochs, backbone, from_layer)
        self.cut, self.activation_report = None, None

    def facts(self) -> dict:
        facts = {**super().facts(), "activations_at": self.cut, "feature_cache": self.cut is not None}
        return {**facts, "activations": self.activation_report} if self.activation_report else facts

    def run(self, context, first: int, last: int, checkpoint) -> StageResult:
        chain = split_frozen(context.net, self.backbone)  # before unfreezing: the chain needs a frozen backbone
        parts = split_backbone(context.net.get_layer(self.backbone), self.from_layer)
        if chain is None or parts is None:
            return super().run(context, first, last, checkpoint)
        self.cut = parts.cut
        cfg = context.cfg
        context.say(f"Fine-tuning {terminal(self.backbone)} from layer {self.from_layer} for {self.epochs} epochs at "
                    f"learning rate {cfg.fine_tune_learning_rate:g}, on cached activations of its layer {parts.cut}")
        lower = FrozenChain(front=chain.front, frozen=[parts.lower], head=[])
        activations, report = cached_inputs(context, lower, f"activations-{parts.cut}", decide(cfg.engine))
        self.activation_report = report.as_dict()
        self.prepare(context.net)
        with context.cluster.scope():
            model = keras.Sequential([keras.Input(activations["train"][0].shape[1:]), parts.upper, *chain.frozen[1:],
                                      *chain.head], name="fine_tune_on_activations")
        scorer = train_on_cached(context, model, first, last, checkpoint, activations, cfg.fine_tune_learning_rate)
        return self.result(scorer)


def augments_images(spec, cfg) -> bool:
    """Whether a run of ``spec`` with ``cfg`` trains on what the model's Random* layers make: always on images;
    on cached features only through ``aug_views`` augmented views (else features of the photos as they are)."""
    return not (cfg.feature_cache and spec.frozen_backbone) or cfg.aug_views > 0

"""Cached features of a frozen backbone: computed once per image (and augmented view), then reused.

Augmentation is kept: ``aug_views`` augmented copies of every training image are extracted (the
front layers in training mode, reseeded per view) and each epoch draws one of them per image.
Validation and test features are un-augmented. Entries are keyed by everything that changes them:
model, frozen weights' digest, image size, front layers' configuration, seed, the files' content, and for
the training split the precision its features were computed in.

What runs the frozen part and in what precision is decided once (an :class:`.extraction.Extraction`); the
training split's features may be bfloat16 (:mod:`.precision`), validation and test features are always float32.
Several workers each extract a share of an entry (:mod:`.feature_shares`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import tensorflow as tf

from ..data import cache
from ..util.progress import SILENT
from .engine import REFERENCE, prepared_engine
from .extraction import IN_TENSORFLOW
from .feature_shares import count_shares, extract_into, extract_shared
from .frozen import EXTRACT_BATCH, AcrossReplicas, FrozenChain, extract, extractor
from .precision import agreed, bfloat16_of, training_precision
from .seeding import batch_seed, reseed, view_seed


@dataclass
class FeatureCacheReport:
    """What the cache did: hits, misses, and extraction time with its one-off set-up told apart.

    ``setup_seconds`` is tracing each extraction function and its first batch (oneDNN picks its
    kernels then). ``images_per_second`` excludes it, as a forward-pass benchmark times after a
    warm-up batch; ``overall_images_per_second`` includes it.
    """

    hits: int = 0
    misses: int = 0
    extract_seconds: float = 0.0  # everything, set-up included
    setup_seconds: float = 0.0
    images_extracted: int = 0
    engine: str = ""  # what ran the frozen part ("" when every entry was cached)
    engine_seconds: float = 0.0  # converting (or loading) the engine, while decoding when ``engine_early``
    engine_early: bool = False
    replica_images: list = None  # images each replica extracted (mirrored, TensorFlow engine)
    train_precision: str = "float32"  # what the training split's features were computed in

    def as_dict(self) -> dict:
        steady = self.extract_seconds - self.setup_seconds
        rate = self.images_extracted / steady if steady > 0 else None
        overall = self.images_extracted / self.extract_seconds if self.extract_seconds else None
        return {"used": True, "hits": self.hits, "misses": self.misses,
                "extract_seconds": round(self.extract_seconds, 2), "setup_seconds": round(self.setup_seconds, 2),
                "images_extracted": self.images_extracted,
                "images_per_second": round(rate, 1) if rate else None,
                "overall_images_per_second": round(overall, 1) if overall else None, "engine": self.engine,
                "engine_seconds": round(self.engine_seconds, 2), "engine_early": self.engine_early,
                "train_precision": self.train_precision,
                **({"replica_images": self.replica_images} if self.replica_images else {})}


class FeatureStore:
    """Cached features of one model's frozen part, keyed by everything that changes them."""

    def __init__(self, chain: FrozenChain, model_name: str, image_size, seed: int, progress=SILENT,
                 extraction=IN_TENSORFLOW, say=print, part: str = "features", cluster=None, prepared=None):
        self.chain = chain
        # Several workers (``cluster.workers``): each extracts its share of every entry (see _extract_shared).
        self.cluster = cluster
        self.weights = chain.weights_digest()
        self.base_key = {"model": model_name, "weights": self.weights, "image_size": list(image_size),
                         "front": json.dumps(chain.front_config(), sort_keys=True, default=str)}
        if part != "features":  # another cut of the model (activations for fine-tuning): its own entries
            self.base_key["part"] = part
        if extraction.engine != REFERENCE:  # features within 1e-4 of TensorFlow's, but not the same bits: own entries
            self.base_key["engine"] = extraction.engine
        self.seed, self.image_size = seed, tuple(image_size)
        self.report, self.progress = FeatureCacheReport(), progress
        self.extraction, self.say = extraction, say
        self._frozen = None  # the engine, made the first time an extraction needs one
        self._replicated = None  # the plain step split across a mirrored strategy's replicas, when it is
        # ... or made already, while the images were decoded (used if it is of these very weights)
        self._prepared = prepared if getattr(prepared, "weights_digest", None) == self.weights else None
        self._steps, self._made = {}, False

    def _engine(self):
        """The engine (None: TensorFlow's frozen layers traced with the front), made the first time it is asked
        for, or the one prepared while the images were decoded."""
        if not self._made:
            if self.extraction.engine == REFERENCE:
                self.report.engine = REFERENCE
            else:
                engine = self._prepared or prepared_engine(self.chain, self.image_size, self.extraction, self.say)
                self.report.engine, self.report.engine_seconds = engine.name, engine.seconds
                self.report.engine_early = self._prepared is not None
                self._frozen = None if engine.name == REFERENCE else engine
            self._made = True
        return self._frozen

    def _names(self, training: bool, **key):
        """The cache entry's name for these key parts, in the precision the split's features are in."""
        def name_of(precision):
            extra = {"precision": precision} if precision != "float32" else {}
            return cache.key("features", **key, **self.base_key, **extra)
        if not training:
            return name_of("float32"), "float32"
        precision = self.report.train_precision = agreed(self.cluster, training_precision(
            self.extraction.precision, lambda: self._prepared is None and cache.exists(name_of("bfloat16")),
            self._engine))
        return name_of(precision), precision

    def _step(self, augment: bool, precision: str = "float32"):
        """The extraction function, traced and warmed up on a blank batch the first time it is needed."""
        if (augment, precision) not in self._steps:
            started = time.perf_counter()
            engine = self._engine()
            if precision == "bfloat16":
                engine = bfloat16_of(engine)
            step = extractor(self.chain, augment, (*self.image_size, 3), engine)
            if engine is None and not augment and getattr(self.cluster, "name", "") == "mirrored" \
                    and self.cluster.replicas > 1:
                # Several devices in this process (mirrored): each extracts its slice of every batch. Augmented
                # views stay on one device, where their random draws are those of a one-device run.
                step = self._replicated = AcrossReplicas(step, self.cluster.strategy)
            # An engine is warm already (prepared_engine): one image traces the front. TensorFlow's layers pick
            # their kernels for the batch size, so they warm up on a whole batch.
            step(tf.zeros((1 if engine is not None else EXTRACT_BATCH, *self.image_size, 3), tf.uint8))
            if self._replicated is not None:
                self._replicated.take_shares()  # the blank batch is not an image
            self.report.setup_seconds += time.perf_counter() - started
            self._steps[augment, precision] = step
        return self._steps[augment, precision]

    def _get(self, name, images, run, label):
        """The entry ``name``: loaded when it is there and checks out (on every worker), else computed by
        ``run(images, append, advance, first_batch)`` straight into the cache, by this process alone or
        a share per worker; hits, misses and the time spent extracting are counted."""
        found = cache.load(name)
        usable = found is not None and len(found) == len(images) and found.ndim >= 2
        workers = getattr(self.cluster, "workers", 1)
        if workers > 1:
            usable = self.cluster.all_agree(usable)  # decided together: every worker takes the same steps
        if usable:
            self.report.hits += 1
            return found
        started = time.perf_counter()
        if workers > 1:
            rows, extracted = extract_shared(self.cluster, name, images, run, label, self.progress, self.say)
        else:
            rows, extracted = extract_into(name, images, 0, len(images), run, label, self.progress), len(images)
            if self._replicated:
                count_shares(self._replicated.take_shares(), self.report, f"of {len(images)} images ({label})",
                              self.say)
        self.report.misses += 1
        self.report.extract_seconds += time.perf_counter() - started
        self.report.images_extracted += extracted
        return rows

    def plain(self, images, files_digest: str, label: str = "features", training: bool = False):
        """``(N, D)`` rows: the frozen part's output for each image (``training``: of the training split)."""
        name, precision = self._names(training, files=files_digest, augment=0)

        def run(part, append, advance, first_batch):
            extract(self._step(False, precision), part, append, advance=advance)
        return self._get(name, images, run, label)

    def augmented(self, images, files_digest: str, views: int) -> list:
        """``views`` ``(N, D)`` rows of augmented copies; view k is the same for any ``views`` >= k."""
        out = []
        for k in range(views):
            name, precision = self._names(True, files=files_digest, augment=1, view=k, seed=self.seed,
                                          draws="per-batch")

            def run(part, append, advance, first_batch, k=k, precision=precision):
                step = self._step(True, precision)  # before reseeding: its warm-up batch draws random numbers too
                extract(step, part, append, advance=advance, first_batch=first_batch,
                        before_batch=lambda b: reseed(self.chain.front, batch_seed(view_seed(self.seed, k), b)))
            out.append(self._get(name, images, run, f"features of train, augmented view {k + 1}/{views}"))
        return out

"""Cached features of a frozen backbone: computed once per image (and augmented view), then reused.

Augmentation is kept: ``aug_views`` augmented copies of every training image are extracted (the
front layers in training mode, reseeded per view) and each epoch draws one of them per image.
Validation and test features are un-augmented. Entries are keyed by everything that changes them:
model, frozen weights' digest, image size, front layers' configuration, seed and the files' content.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..data import cache
from ..util.progress import SILENT
from ..util.rows import RowsView, shard_bounds
from .engine import frozen_engine
from .frozen import EXTRACT_BATCH, AcrossReplicas, FrozenChain, extract, extractor
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
                **({"replica_images": self.replica_images} if self.replica_images else {})}


class FeatureStore:
    """Cached features of one model's frozen part, keyed by everything that changes them."""

    def __init__(self, chain: FrozenChain, model_name: str, image_size, seed: int, progress=SILENT,
                 engine: str = "tensorflow", say=print, part: str = "features", cluster=None, prepared=None):
        self.chain = chain
        # Several workers (``cluster.workers``): each extracts its share of every entry (see _extract_shared).
        self.cluster = cluster
        self.weights = chain.weights_digest()
        self.base_key = {"model": model_name, "weights": self.weights, "image_size": list(image_size),
                         "front": json.dumps(chain.front_config(), sort_keys=True, default=str)}
        if part != "features":  # another cut of the model (activations for fine-tuning): its own entries
            self.base_key["part"] = part
        if engine != "tensorflow":  # features within 1e-4 of TensorFlow's, but not the same bits: own entries
            self.base_key["engine"] = engine
        self.seed = seed
        self.image_size = tuple(image_size)
        self.report = FeatureCacheReport()
        self.progress = progress
        self.engine_choice, self.say = engine, say
        self._frozen = None  # the engine, made the first time an extraction needs one
        self._replicated = None  # the plain step split across a mirrored strategy's replicas, when it is
        # ... or made already, while the images were decoded (used if it is of these very weights)
        self._prepared = prepared if getattr(prepared, "weights_digest", None) == self.weights else None
        self._steps = {}

    def _engine(self):
        if self.engine_choice == "tensorflow":
            self.report.engine = "tensorflow"
            return None  # the frozen layers traced together with the front, as Keras runs them
        engine = self._prepared or prepared_engine(self.chain, self.image_size, self.engine_choice, self.say)
        self.report.engine, self.report.engine_seconds = engine.name, engine.seconds
        self.report.engine_early = self._prepared is not None
        return None if engine.name == "tensorflow" else engine

    def _step(self, augment: bool):
        """The extraction function, traced and warmed up on a blank batch the first time it is needed."""
        if augment not in self._steps:
            started = time.perf_counter()
            if not self._steps:
                self._frozen = self._engine()
            step = extractor(self.chain, augment, (*self.image_size, 3), self._frozen)
            if self._frozen is None and not augment and getattr(self.cluster, "name", "") == "mirrored" \
                    and self.cluster.replicas > 1:
                # Several devices in this process (mirrored): each extracts its slice of every batch. Augmented
                # views stay on one device, where their random draws are those of a one-device run.
                step = self._replicated = AcrossReplicas(step, self.cluster.strategy)
            # An engine is warm already (prepared_engine): one image traces the front. TensorFlow's layers pick
            # their kernels for the batch size, so they warm up on a whole batch.
            step(tf.zeros((1 if self._frozen is not None else EXTRACT_BATCH, *self.image_size, 3), tf.uint8))
            if self._replicated is not None:
                self._replicated.take_shares()  # the blank batch is not an image
            self.report.setup_seconds += time.perf_counter() - started
            self._steps[augment] = step
        return self._steps[augment]

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
            rows, extracted = _extract_shared(self.cluster, name, images, run, label, self.progress, self.say)
        else:
            rows, extracted = _extract_into(name, images, 0, len(images), run, label, self.progress), len(images)
            shares = self._replicated.take_shares() if self._replicated else []
            if any(shares):
                self.say(f"{len(shares)} replicas extracted {' + '.join(map(str, shares))} of {len(images)} images "
                         f"({label})")
                so_far = self.report.replica_images or [0] * len(shares)
                self.report.replica_images = [a + b for a, b in zip(so_far, shares)]
        self.report.misses += 1
        self.report.extract_seconds += time.perf_counter() - started
        self.report.images_extracted += extracted
        return rows

    def plain(self, images, files_digest: str, label: str = "features"):
        """``(N, D)`` rows: the frozen part's output for each image."""
        name = cache.key("features", files=files_digest, augment=0, **self.base_key)

        def run(part, append, advance, first_batch):
            extract(self._step(False), part, append, advance=advance)
        return self._get(name, images, run, label)

    def augmented(self, images, files_digest: str, views: int) -> list:
        """``views`` ``(N, D)`` rows of augmented copies; view k is the same for any ``views`` >= k."""
        out = []
        for k in range(views):
            name = cache.key("features", files=files_digest, augment=1, view=k, seed=self.seed, draws="per-batch",
                             **self.base_key)

            def run(part, append, advance, first_batch, k=k):
                step = self._step(True)  # before reseeding: its warm-up batch draws random numbers too
                extract(step, part, append, advance=advance, first_batch=first_batch,
                        before_batch=lambda b: reseed(self.chain.front, batch_seed(view_seed(self.seed, k), b)))
            out.append(self._get(name, images, run, f"features of train, augmented view {k + 1}/{views}"))
        return out


def _extract_into(name: str, images, start: int, stop: int, run, label: str, progress):
    """Rows ``start..stop`` of ``images`` through ``run``, straight into the cache entry ``name``."""
    with progress(label, stop - start) as bar, cache.writing(name, dtype=np.float32) as out:
        run(RowsView(images, start, stop), out.append, bar.advance, start // EXTRACT_BATCH)
        return out.commit()


def _extract_shared(cluster, name: str, images, run, label: str, progress, say) -> tuple:
    """``(rows, images this worker extracted)``: each worker extracts its share (whole batches) into an
    entry of its own in the cache folder, waits for the others, then joins the shares into ``name``.

    The shares meet through the cache folder, which workers on one machine share (a cluster needs it on
    a shared file system; the secret that signs entries too). A share another worker's folder does not
    show here is extracted here as well, after one line saying so: slower, never wrong.
    """
    w, n = cluster.worker_index, cluster.workers
    bounds = shard_bounds(len(images), n, EXTRACT_BATCH)

    def share_name(i):
        return f"{name}-share{i}of{n}"
    mine = _extract_into(share_name(w), images, bounds[w], bounds[w + 1], run, label, progress)
    print(f"Worker {w} of {n}: extracted {bounds[w + 1] - bounds[w]} of {len(images)} images ({label})", flush=True)
    cluster.barrier()
    extracted = bounds[w + 1] - bounds[w]
    with cache.writing(name, dtype=np.float32) as whole:
        for i in range(n):
            share = mine if i == w else cache.load(share_name(i))
            if share is None or len(share) != bounds[i + 1] - bounds[i]:
                say(f"Note: worker {i}'s share of {label} is not in {cache.cache_root()} here (is the cache folder "
                    "shared between workers?); extracting it in this worker too")
                run(RowsView(images, bounds[i], bounds[i + 1]), whole.append, lambda k: None,
                    bounds[i] // EXTRACT_BATCH)
                extracted += bounds[i + 1] - bounds[i]
                continue
            for start in range(0, len(share), 4096):
                whole.append(share[start:start + 4096])
        rows = whole.commit()
    cluster.barrier()  # every worker has read every share: each removes its own
    getattr(mine, "close", lambda: None)()  # (an array when the cache folder cannot be written)
    cache.remove(share_name(w))
    return rows, extracted


def prepared_engine(chain: FrozenChain, image_size, choice: str, say):
    """The engine of ``chain``'s frozen part (``models.engine``), run once, with the seconds that took and the
    weights it was made from."""
    started = time.perf_counter()
    weights, shape = chain.weights_digest(), frozen_input_shape(chain, image_size)
    engine = frozen_engine(chain.frozen, shape, weights, choice, say)
    engine(np.zeros((1, *shape), np.float32))  # its first run sets its kernels up (0.3 s for TFLite's XNNPACK)
    engine.seconds, engine.weights_digest = time.perf_counter() - started, weights
    return engine


def frozen_input_shape(chain: FrozenChain, image_size) -> tuple:
    """The shape of one input of the frozen part: what the front layers make of an image."""
    x = tf.zeros((1, *image_size, 3), tf.float32)
    for layer in chain.front:
        x = layer(x, training=False)
    return tuple(x.shape[1:])


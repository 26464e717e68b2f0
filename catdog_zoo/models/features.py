"""Cached features of a frozen backbone: computed once per image (and augmented view), then reused.

Augmentation is kept: ``aug_views`` augmented copies of every training image are extracted (the
front layers in training mode, reseeded per view) and each epoch draws one of them per image.
Validation and test features are un-augmented. Entries are keyed by everything that changes them:
model, frozen weights' digest, image size, front layers' configuration, seed, the files' content, and for
the training split the precision its features were computed in.

``train_precision``: the training split's features may be computed in bfloat16 (the OpenVINO engine on a CPU
with native bfloat16, :mod:`.openvino_engine`), about 2x faster. Validation and test features are always
float32, so every score of the head describes the float32 model that is saved.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..data import cache
from ..errors import ConfigError
from ..util.progress import SILENT
from ..util.rows import RowsView, shard_bounds
from .engine import first_line, frozen_engine
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
                 engine: str = "tensorflow", say=print, part: str = "features", cluster=None, prepared=None,
                 train_precision: str = "float32"):
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
        self.seed, self.image_size = seed, tuple(image_size)
        self.report, self.progress = FeatureCacheReport(), progress
        # train_precision: float32, bfloat16 or auto (bfloat16 where the engine has it natively)
        self.engine_choice, self.say, self.train_precision = engine, say, train_precision
        self._frozen = None  # the engine, made the first time an extraction needs one
        self._replicated = None  # the plain step split across a mirrored strategy's replicas, when it is
        # ... or made already, while the images were decoded (used if it is of these very weights)
        self._prepared = prepared if getattr(prepared, "weights_digest", None) == self.weights else None
        self._steps, self._made = {}, False

    def _engine(self):
        """The engine (None: TensorFlow's frozen layers traced with the front), made the first time it is asked
        for, or the one prepared while the images were decoded."""
        if not self._made:
            if self.engine_choice == "tensorflow":
                self.report.engine = "tensorflow"
            else:
                engine = self._prepared or prepared_engine(self.chain, self.image_size, self.engine_choice, self.say)
                self.report.engine, self.report.engine_seconds = engine.name, engine.seconds
                self.report.engine_early = self._prepared is not None
                self._frozen = None if engine.name == "tensorflow" else engine
            self._made = True
        return self._frozen

    def _names(self, training: bool, **key):
        """The cache entry's name for these key parts, in the precision the split's features are in."""
        def name_of(precision):
            extra = {"precision": precision} if precision != "float32" else {}
            return cache.key("features", **key, **self.base_key, **extra)
        if not training:
            return name_of("float32"), "float32"
        precision = self.report.train_precision = _agreed(self.cluster, training_precision(
            self.train_precision, lambda: self._prepared is None and cache.exists(name_of("bfloat16")), self._engine,
            likely=self.train_precision == "bfloat16" or bfloat16_likely(self.engine_choice)))
        return name_of(precision), precision

    def _step(self, augment: bool, precision: str = "float32"):
        """The extraction function, traced and warmed up on a blank batch the first time it is needed."""
        if (augment, precision) not in self._steps:
            started = time.perf_counter()
            engine = self._engine()
            if precision == "bfloat16":
                engine = _bfloat16_of(engine)
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
            rows, extracted = _extract_shared(self.cluster, name, images, run, label, self.progress, self.say)
        else:
            rows, extracted = _extract_into(name, images, 0, len(images), run, label, self.progress), len(images)
            if self._replicated:
                _count_shares(self._replicated.take_shares(), self.report, f"of {len(images)} images ({label})",
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


def training_precision(asked: str, cached, engine_of, likely: bool = True) -> str:
    """What the training split's features are computed in: float32, or bfloat16 where ``asked`` (``auto``:
    where the engine computes in it natively). ``cached()``: bfloat16 features are in the cache already (no
    engine is made then); ``engine_of()``: the engine (None for TensorFlow); ``likely``: False when a cheap
    check (:func:`bfloat16_likely`) already says no, so that a warm run makes no engine."""
    if asked == "float32" or not likely:
        return "float32"
    if cached():
        return "bfloat16"
    engine = engine_of()
    if getattr(engine, "native_bfloat16", False) or (asked == "bfloat16" and hasattr(engine, "bfloat16")):
        try:
            engine.bfloat16()  # compiled once, here: a failure falls back to float32 (or is said, if asked for)
            return "bfloat16"
        except Exception as exc:  # noqa: BLE001 - OpenVINO's RuntimeError and kin
            if asked == "bfloat16":
                raise ConfigError(f"--train-precision bfloat16: OpenVINO cannot compile this backbone in bfloat16 "
                                  f"({first_line(exc)})") from None
            return "float32"
    if asked == "bfloat16":
        raise ConfigError(f"--train-precision bfloat16 needs the OpenVINO engine (this run extracts with "
                          f"{getattr(engine, 'name', 'tensorflow')}): use --engine openvino or auto (pip install "
                          "'catdog-zoo[openvino]' where it is missing), or --train-precision auto")
    return "float32"


def _agreed(cluster, precision: str) -> str:
    """Several workers: bfloat16 only if every one chose it, so that their shares meet under one name."""
    if getattr(cluster, "workers", 1) > 1:
        return "bfloat16" if cluster.all_agree(precision == "bfloat16") else "float32"
    return precision


def bfloat16_likely(engine_choice: str) -> bool:
    """Whether ``auto`` will take bfloat16 with this engine choice here, told without making an engine (a warm
    run makes none): what ``models.engine`` would pick is OpenVINO on a CPU with native bfloat16."""
    from . import openvino_engine
    from .engine import gpu_visible

    return (engine_choice == "openvino" or (engine_choice == "auto" and not gpu_visible())) and \
        openvino_engine.faster_here()


def _bfloat16_of(engine):
    """The engine's bfloat16 variant. (An engine without one gets here only when bfloat16 training features
    were chosen from the cache, or by another worker, and this process must compute them.)"""
    if not hasattr(engine, "bfloat16"):
        raise ConfigError("the training features are to be computed in bfloat16 (cached so, or chosen by another "
                          "worker) and this process's engine cannot: use --train-precision float32")
    return engine.bfloat16()


def _count_shares(shares: list, report: FeatureCacheReport, what: str, say) -> None:
    """Images each replica extracted (mirrored), said and added to the report."""
    if any(shares):
        say(f"{len(shares)} replicas extracted {' + '.join(map(str, shares))} {what}")
        so_far = report.replica_images or [0] * len(shares)
        report.replica_images = [a + b for a, b in zip(so_far, shares)]


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


def prepared_engine(chain: FrozenChain, image_size, choice: str, say, bfloat16: bool = False):
    """The engine of ``chain``'s frozen part (``models.engine``), run once (its bfloat16 variant too when
    ``bfloat16`` and it is native here), with the seconds that took and the weights it was made from."""
    started = time.perf_counter()
    weights, shape = chain.weights_digest(), frozen_input_shape(chain, image_size)
    engine = frozen_engine(chain.frozen, shape, weights, choice, say)
    engine(np.zeros((1, *shape), np.float32))  # its first run sets its kernels up (0.3 s for TFLite's XNNPACK)
    if bfloat16 and getattr(engine, "native_bfloat16", False):
        try:
            engine.bfloat16()(np.zeros((1, *shape), np.float32))
        except Exception:  # noqa: BLE001 - said (or fallen back from) where the precision is chosen
            pass
    engine.seconds, engine.weights_digest = time.perf_counter() - started, weights
    return engine


def frozen_input_shape(chain: FrozenChain, image_size) -> tuple:
    """The shape of one input of the frozen part: what the front layers make of an image."""
    x = tf.zeros((1, *image_size, 3), tf.float32)
    for layer in chain.front:
        x = layer(x, training=False)
    return tuple(x.shape[1:])


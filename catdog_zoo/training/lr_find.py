"""``catdog-zoo lr-find``: the learning-rate range test (Smith, 2017; fastai's ``lr_find``) on a run's first stage.

What the first stage of ``train`` would train (a frozen-backbone model's head on its cached features, else
the whole model on images) starts from the model's initial weights and takes ``steps`` batches while the
learning rate grows exponentially from ``start`` to ``end``. Each batch's loss, smoothed (an exponential
moving average with bias correction, as fastai), is kept against its rate; the sweep stops early once the
smoothed loss passes four times its lowest. The suggestion is fastai's "steep" one, the rate where the
smoothed loss falls fastest; a rate somewhat below the one with the lowest loss is the usual choice. On a
frozen-backbone model the inputs are the feature cache's, so after the first run the sweep takes seconds.
Nothing is written but the plot asked for: the model and its weights are thrown away.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from ..config import check_for_model, resolve_config
from ..data.batches import EpochBatches
from ..models.frozen import split_frozen
from ..plugins import get_zoo
from .distribute import make_cluster
from .runner import Runner, Setup
from .stages import HeadOnFeatures, cached_inputs

SMOOTHING = 0.98
DIVERGED = 4.0  # the sweep stops when the smoothed loss passes this many times its lowest


def lr_find(model: str, *, start: float = 1e-7, end: float = 10.0, steps: int = 100, quiet: bool = False,
            **options) -> dict:
    """Sweep the learning rate for ``model`` (config keys in ``options``, as for ``train``); returns
    ``{"model", "stage", "rates", "losses", "suggested", "lowest_loss_rate", "configured"}``."""
    from .session import _build

    if not 0 < start < end:
        raise ValueError(f"the sweep needs 0 < start < end, got {start:g} and {end:g}")
    spec = get_zoo().model(model)
    cfg = resolve_config(spec, None, **options)
    check_for_model(spec, cfg)
    cluster = make_cluster("one_device")
    weights = cfg.weights if cfg.weights is not None else "default"
    net, splits, decoded, _, _, stages = _build(spec, cfg, cluster, quiet, weights)
    with tempfile.TemporaryDirectory(prefix="catdog-zoo-lr-find-") as scratch:
        runner = Runner(Setup(spec, cfg, net, splits, decoded, Path(scratch), cluster, quiet, None, 0.0, stages))
        trained, train, stage = _first_stage(runner, stages[0])
        runner.compile(trained, start)
        rates, losses = _sweep(trained, train, start, end, steps)
    smooth = _smoothed(losses)
    return {"model": spec.name, "stage": stage, "rates": rates, "losses": losses, "smoothed": smooth,
            "suggested": _steepest(rates, smooth),
            "lowest_loss_rate": rates[int(np.argmin(smooth))] if smooth else None, "configured": cfg.learning_rate}


def _first_stage(runner, stage) -> tuple:
    """``(model to train, its training batches, what it is)``: the head on cached features when the first stage
    would use them, else the whole model on images."""
    cfg = runner.cfg
    chain = split_frozen(runner.net, stage.backbone) if isinstance(stage, HeadOnFeatures) else None
    if chain is None:
        return runner.net, runner.images("train", shuffle=True), "the whole model, on images"
    features, _ = cached_inputs(runner, chain, "features")
    head = chain.head_model(features["train"][0].shape[-1])
    train = EpochBatches(features["train"], runner.labels("train"), cfg.batch_size, shuffle=True, seed=cfg.seed)
    return head, train, "the head, on cached features"


def _sweep(model, train: EpochBatches, start: float, end: float, steps: int) -> tuple:
    rates, losses, lowest = [], [], math.inf
    for step in range(steps):
        if step and step % len(train) == 0:
            train.on_epoch_begin()  # the next epoch's seeded order
        rate = start * (end / start) ** (step / max(steps - 1, 1))
        model.optimizer.learning_rate.assign(rate)
        x, y = train[step % len(train)]
        loss = float(np.asarray(model.train_on_batch(x, y, return_dict=True)["loss"]))
        if not math.isfinite(loss):  # diverged for good: the curve ends at the last finite loss
            break
        rates.append(rate)
        losses.append(loss)
        smooth = _smoothed(losses)[-1]
        if smooth > DIVERGED * lowest:
            break
        lowest = min(lowest, smooth)
    return rates, losses


def _smoothed(losses) -> list:
    out, average = [], 0.0
    for i, loss in enumerate(losses, 1):
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        out.append(average / (1 - SMOOTHING ** i))
    return out


def _steepest(rates, smooth):
    """The rate where the smoothed loss falls fastest per decade of rate, before its lowest point."""
    lowest = int(np.argmin(smooth)) if smooth else 0
    if lowest < 2:
        return None
    slopes = np.gradient(np.asarray(smooth[:lowest + 1]), np.log10(rates[:lowest + 1]))
    return float(rates[int(np.argmin(slopes))])

"""``catdog-zoo lr-find``: the learning-rate range test (Smith, 2017; fastai's ``lr_find``) on a run's first stage.

What the first stage of ``train`` would train (a frozen-backbone model's head on its cached features, else
the whole model on images) starts from the model's initial weights and takes ``steps`` batches while the
learning rate grows exponentially from ``start`` to ``end``. The suggestions follow fastai exactly, because
its rules are what users have learnt to read:

- each batch's loss is smoothed by an exponential moving average with bias correction (beta 0.98);
- the sweep stops once the smoothed loss passes four times its lowest (it has diverged), or is not finite;
- the first tenth of the planned batches (warm-up: the average is still mostly its first, noisy losses)
  and the last five recorded (the divergence) are left out of the suggestions;
- ``valley`` (fastai's default): the longest stretch over which the smoothed loss keeps falling, and the
  rate a half of the way down it; ``steep``: where it falls fastest per decade of rate.

One check fastai leaves to the eye: a loss that never gets below that of answering the classes' shares
(:func:`chance_loss`) means the sweep saw no learning, and nothing is suggested. The reference's scratch CNN,
fed raw pixels, is such a model: its loss falls from about 6 as its first huge logits shrink and, at high
rates, as its units die, and the valley of that curve (1.8e-2) leaves it at 50% after two epochs.

On a frozen-backbone model the inputs are the feature cache's, so after the first run the sweep takes
seconds. Nothing is written but the plot asked for: the model and its weights are thrown away.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from ..data.batches import EpochBatches
from ..models.extraction import decide
from ..models.frozen import split_frozen
from ..registry import configured_weights
from ..util.progress import progress_factory
from .distribute import make_cluster
from .context import StageContext
from .resolve import resolve_run
from .runner import say_to
from .stages import HeadOnFeatures, cached_inputs

SMOOTHING = 0.98  # fastai's beta
DIVERGED = 4.0  # the sweep stops when the smoothed loss passes this many times its lowest
WARM_UP = 0.1  # share of the planned batches left out at the start (fastai: num_it // 10)
SKIP_END = 5  # batches left out at the end (fastai: the last five, the divergence)
RULES = {"valley": "half-way down the longest fall of the loss (fastai's default)",
         "steep": "where the loss falls fastest"}


def lr_find(model, *, start: float = 1e-7, end: float = 10.0, steps: int = 100, quiet: bool = False,
            config_file=None, **options) -> dict:
    """Sweep the learning rate for ``model`` (config keys in ``options`` and ``config_file``, as for ``train``;
    those of later stages and of where a run goes do not apply): :func:`sweep` of what
    :func:`.resolve.resolve_run` makes of them."""
    spec, cfg = resolve_run(model, config_file, trackers=False, **options)
    return sweep(spec, cfg, start=start, end=end, steps=steps, quiet=quiet)


def sweep(spec, cfg, *, start: float = 1e-7, end: float = 10.0, steps: int = 100, quiet: bool = False) -> dict:
    """Sweep the learning rate for ``spec`` with the resolved ``cfg``.

    Returns ``{"model", "stage", "rates", "losses", "smoothed", "stopped", "considered", "suggestions",
    "chance_loss", "learned", "suggested", "configured", "image_size"}``: ``stopped`` says why the sweep ended
    before ``steps`` batches (None when it did not), ``considered`` the ``[first, last)`` batches the rules
    looked at, ``suggestions`` each rule's rate (None when the curve gives it nothing to find), ``learned``
    whether the smoothed loss got below ``chance_loss`` there, ``suggested`` the valley's rate if it did.
    """
    from .session import _build

    if not 0 < start < end:
        raise ValueError(f"the sweep needs 0 < start < end, got {start:g} and {end:g}")
    cluster = make_cluster("one_device")
    built = _build(spec, cfg, cluster, quiet, configured_weights(cfg.weights))
    context = StageContext(spec, cfg, built.net, built.splits, built.decoded, cluster, say_to(quiet),
                           progress_factory(quiet))
    trained, train, stage = _first_stage(context, built.stages[0])
    context.compile(trained, start)
    rates, losses, stopped = _sweep(trained, train, start, end, steps)
    chance = chance_loss(context.labels("train"))
    smooth = smoothed(losses)
    first, last = int(steps * WARM_UP), max(len(smooth) - SKIP_END, 0)
    window = (np.asarray(rates[first:last]), np.asarray(smooth[first:last]))
    suggestions = {"valley": valley(*window), "steep": steep(*window)}
    # Judged on a running median of the raw losses, not the smoothed curve: from a high start (a network fed raw
    # pixels) the smoothing lags so far behind that losses of 0.02 still read as 1.9 on it
    learned = bool(len(window[1])) and float(running_median(losses[first:last]).min()) < chance
    return {"model": spec.name, "stage": stage, "rates": rates, "losses": losses, "smoothed": smooth,
            "stopped": stopped, "considered": [first, max(last, first)], "suggestions": suggestions,
            "chance_loss": chance, "learned": learned, "suggested": suggestions["valley"] if learned else None,
            "configured": cfg.learning_rate, "image_size": list(cfg.image_size)}


def running_median(values, width: int = 5) -> np.ndarray:
    """Each value's median with its ``width - 1`` predecessors (fewer at the start): one noisy batch moves it not."""
    values = np.asarray(values, np.float64)
    return np.asarray([np.median(values[max(0, i - width + 1):i + 1]) for i in range(len(values))])


def chance_loss(labels) -> float:
    """The cross-entropy of a model that learned only the classes' shares (ln 2 for two even classes): a sweep
    whose loss never gets below it saw no learning at any rate, only the initial error shrinking (a network fed
    raw pixels starts far off) or the network dying, and the rules would read the wrong curve."""
    shares = np.bincount(np.asarray(labels, int)) / max(len(labels), 1)
    return float(-sum(p * math.log(p) for p in shares if p > 0))


def _first_stage(context, stage) -> tuple:
    """``(model to train, its training batches, what it is)``: the head on cached features when the first stage
    would use them, else the whole model on images."""
    cfg = context.cfg
    chain = split_frozen(context.net, stage.backbone) if isinstance(stage, HeadOnFeatures) else None
    if chain is None:
        return context.net, context.images("train", shuffle=True), "the whole model, on images"
    features, _ = cached_inputs(context, chain, "features", decide(cfg.engine, cfg.train_precision))
    head = chain.head_model(features["train"][0].shape[-1])
    train = EpochBatches(features["train"], context.labels("train"), cfg.batch_size, shuffle=True, seed=cfg.seed)
    return head, train, "the head, on cached features"


def _sweep(model, train: EpochBatches, start: float, end: float, steps: int) -> tuple:
    """``(rates, losses, why it stopped early or None)``."""
    rates, losses, lowest = [], [], math.inf
    for step in range(steps):
        if step and step % len(train) == 0:
            train.on_epoch_begin()  # the next epoch's seeded order
        rate = start * (end / start) ** (step / max(steps - 1, 1))
        model.optimizer.learning_rate.assign(rate)
        x, y = train[step % len(train)]
        loss = float(np.asarray(model.train_on_batch(x, y, return_dict=True)["loss"]))
        if not math.isfinite(loss):  # diverged for good: the curve ends at the last finite loss
            return rates, losses, f"the loss was not finite at {rate:.1e}"
        rates.append(rate)
        losses.append(loss)
        smooth = smoothed(losses)[-1]
        lowest = min(lowest, smooth)
        if smooth > DIVERGED * lowest:
            return rates, losses, f"the smoothed loss passed {DIVERGED:g}x its lowest at {rate:.1e} (diverged)"
    return rates, losses, None


def smoothed(losses) -> list:
    """fastai's ``SmoothenValue``: an exponential moving average, divided by ``1 - beta**n`` so that its first
    values are not pulled towards the zero it starts from."""
    out, average = [], 0.0
    for i, loss in enumerate(losses, 1):
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        out.append(average / (1 - SMOOTHING ** i))
    return out


def valley(rates, losses):
    """fastai's ``valley``: the longest strictly decreasing run of ``losses`` (a subsequence, so a bump does not
    end it) and the rate ``1/3 + 1/6`` of the way along it, where the fall is well under way and far from the
    rise; None when the loss never falls for three points. fastai's quadratic search, in ``n log n``."""
    lengths, tails = [], []  # tails[k]: the highest loss ending a falling run of k + 1 points (negated to sort)
    for loss in losses:
        k = bisect.bisect_left(tails, -loss)
        tails[k:k + 1] = [-loss]
        lengths.append(k + 1)
    if not lengths or max(lengths) < 3:
        return None
    end = lengths.index(max(lengths))  # the first point where the longest run ends, as fastai's loop finds it
    begin = end - lengths[end]
    third = (end - begin) / 3
    return float(rates[begin + int(third) + int(third / 2)])


def steep(rates, losses):
    """fastai's ``steep``: the rate where the loss falls fastest per unit of log rate (the left end of the
    steepest segment); None when it never falls."""
    if len(losses) < 2:
        return None
    slopes = np.diff(losses) / np.diff(np.log(rates))
    return float(rates[int(np.argmin(slopes))]) if slopes.min() < 0 else None

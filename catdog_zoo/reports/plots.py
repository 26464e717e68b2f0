"""Every figure catdog-zoo draws, as PNG files written whole (temporary name, then rename).

Matplotlib runs on its file-only Agg backend, so no display is ever needed. Each function takes
plain data (lists, arrays, names), never a run directory: :mod:`.run_report`, the leaderboard and the CLI
decide what to draw and where.

Every text that can hold a name (titles, tick labels, legend entries) is drawn as :mod:`catdog_zoo.util.names`
decides: callers pass names through ``plot`` (``terminal``) where they compose a title, the text is drawn with
``parse_math=False`` (a ``$`` in a class name is a dollar sign: mathtext would fail on ``$\\cmd$`` while the
figure is saved), and ``lines`` guards the rest (a byte that is not UTF-8 has no glyph).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..util.files import atomic_write, output_path
from ..util.names import lines, plot


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator
    return MaxNLocator(integer=True)  # epochs are whole numbers


def _entry(text) -> str:
    """A legend entry made of a name: matplotlib leaves out an entry whose label starts with ``_`` (a class
    folder called ``_other`` would vanish from the legend), so such a label starts with a space instead."""
    text = plot(text)
    return " " + text if text.startswith("_") else text


def _plain_legend(ax, **kwargs):
    """``ax.legend`` whose entries (run, class and file names among them) are never read as mathtext."""
    legend = ax.legend(**kwargs)
    for text in legend.get_texts():
        text.set_parse_math(False)
    return legend


def save(fig, out, dpi: int = 90) -> Path:
    plt = _pyplot()
    try:
        out = output_path(out)
        atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(fig)
    return out


def image_grid(images, titles, out, columns: int, cell: float = 2.4, suptitle: str = "") -> Path:
    """uint8 images (or None for an empty cell) in a grid, each with its title."""
    plt = _pyplot()
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(cell * columns, (cell + 0.3) * rows + (0.5 if suptitle else 0)),
                             squeeze=False, layout="constrained")  # titles never overlap the row above
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        if image is not None:
            ax.imshow(np.asarray(image, np.uint8))
        ax.set_title(lines(title), fontsize=9, parse_math=False)
    if suptitle:
        fig.suptitle(lines(suptitle), parse_math=False)
    return save(fig, out)


def _log_scale_if_spread(ax, series) -> None:
    """A log axis when one epoch dwarfs the rest (a from-scratch CNN's first-epoch loss is often 20x the
    others), so the train/validation gap stays visible."""
    values = [v for s in series for v in s if v is not None and v > 0]
    if values and max(values) / min(values) > 20:
        ax.set_yscale("log")


def learning_curves(history: dict, out, title: str = "", baseline=None, marks=None) -> Path:
    """Accuracy and loss per epoch, train against validation; a dotted line where each stage of ``marks``
    (stage name -> legend text, the StageSpec's ``drawn``) starts; the majority-class ``baseline`` as a dashed
    line, and an accuracy axis that never zooms in on noise."""
    plt = _pyplot()
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for key, label, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "-s")):
            values = [np.nan if v is None else v for v in history.get(key, [])]
            if values:
                ax.plot(epochs[:len(values)], values, style, markersize=3, label=label)
        if metric == "loss":
            _log_scale_if_spread(ax, [history.get(k, []) for k in ("loss", "val_loss")])
        else:
            if baseline is not None:
                ax.axhline(baseline, color="red", linestyle="--", linewidth=1, label="majority-class baseline")
            seen = [v for k in ("accuracy", "val_accuracy") for v in history.get(k, []) if v is not None]
            low = min(seen + ([baseline] if baseline is not None else []), default=0.0)
            ax.set_ylim(max(0.0, min(low - 0.05, 0.9)), 1.005)  # a flat line at 0.50 stays flat
        stages = history.get("stage", [])
        for stage, label in (marks or {}).items():
            if stage in stages and stages.index(stage) > 0:
                ax.axvline(stages.index(stage) + 0.5, color="grey", linestyle=":", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.set_xlim(0.5, max(len(epochs), 1) + 0.5)  # whole epochs, even for a one-epoch run
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        _plain_legend(ax)
    if title:
        fig.suptitle(lines(title), parse_math=False)
    fig.tight_layout()
    return save(fig, out)


def _tick(name, width: int = 20) -> str:
    """A class name as a tick label: as ``plot`` shows it, its middle cut to keep ``width`` characters (the
    report's tables have it whole) so that a long one cannot squeeze the matrix to nothing."""
    name = plot(name)
    return name if len(name) <= width else name[:width // 2 - 1] + "..." + name[-(width // 2 - 2):]
LABELLED_CLASSES = 40  # classes a confusion matrix names and counts cell by cell; a legend lists at most half


def confusion_matrix(matrix, class_names, out, title: str = "") -> Path:
    """Counts with true classes as rows and predicted classes as columns, each cell labelled."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    n = len(class_names)
    # Bounded: a cell per class pair grows as n squared (1,500 classes once asked for 26 GB of pixels); past
    # LABELLED_CLASSES the figure stops growing and shows colours only.
    side = min(max(4.0, 0.6 * n + 2.5), 0.6 * LABELLED_CLASSES + 2.5)
    fig, ax = plt.subplots(figsize=(side, side), layout="constrained")  # room for long class names
    ax.imshow(matrix, cmap="Blues")
    if n <= LABELLED_CLASSES:
        names = [_tick(name) for name in class_names]
        tilt = n > 4 or max(map(len, names), default=0) > 8
        ax.set_xticks(range(n), names, rotation=45 if tilt else 0, ha="right" if tilt else "center",
                      parse_math=False)
        ax.set_yticks(range(n), names, parse_math=False)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n if n <= LABELLED_CLASSES else 0):
        for j in range(n):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center",
                    color="white" if matrix[i, j] > threshold else "black")
    ax.set_title(lines(title or "confusion matrix"), parse_math=False)
    return save(fig, out)


def overlay_curves(curves: dict, out, metric: str = "val_accuracy") -> Path:
    """One line per run (``{label: [values per epoch]}``) on shared axes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    for label, values in curves.items():
        values = [np.nan if v is None else v for v in values]
        ax.plot(range(1, len(values) + 1), values, "-o", markersize=3, label=_entry(label))
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{metric.replace('_', ' ')} per epoch")
    ax.grid(alpha=0.3)
    if curves:
        _plain_legend(ax, fontsize=8)
    fig.tight_layout()
    return save(fig, out)


def lr_curve(rates, losses, smoothed, out, title: str, suggestions=None, configured=None, considered=None,
             chance=None) -> Path:
    """``catdog-zoo lr-find``: batch loss (faint) and its smoothed curve against the learning rate (log axis),
    each rule's suggested rate (``{"valley": rate, ...}``) and the configured one marked, the batches the
    rules left out (``considered``: the ``[first, last)`` they looked at) greyed, and the ``chance`` loss (of
    answering the classes' shares) as a dotted line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    ax.plot(rates, losses, color="tab:blue", alpha=0.25, linewidth=1, label="batch loss")
    ax.plot(rates, smoothed, color="tab:blue", linewidth=2, label="smoothed")
    if considered and rates:
        first, last = considered
        for lo, hi in ((0, first), (last, len(rates))):
            if hi > lo:
                ax.axvspan(rates[lo], rates[hi - 1], color="grey", alpha=0.12, linewidth=0)
    marks = [(rate, colour, f"{name}: {rate:.1e}" if rate else "") for (name, rate), colour in
             zip((suggestions or {}).items(), ("tab:red", "tab:orange", "tab:green"))]
    for rate, colour, label in marks + [(configured, "tab:gray", f"configured: {configured:.1e}" if configured else "")]:
        if rate:
            ax.axvline(rate, color=colour, linestyle="--", linewidth=1, label=label)
            if rate in rates and colour != "tab:gray":
                ax.plot([rate], [smoothed[rates.index(rate)]], "o", color=colour, markersize=6)
    if chance:
        ax.axhline(chance, color="tab:purple", linestyle=":", linewidth=1.2, label=f"class shares: {chance:.2f}")
    ax.set_xscale("log")
    finite = [v for v in smoothed if np.isfinite(v)]
    if finite and max(finite) > 0:  # the divergence at the end would flatten the useful part of the curve
        low = min(min(finite), chance or np.inf)
        ax.set_ylim(low * 0.9, max(min(max(finite), 4 * min(finite)), chance or 0) * 1.05)
    ax.set(xlabel="learning rate (grey: left out of the suggestions)" if considered else "learning rate",
           ylabel="training loss")
    ax.set_title(lines(title), parse_math=False)
    ax.grid(True, which="both", alpha=0.3)
    _plain_legend(ax, fontsize=8)
    return save(fig, out)


def _bins_ece(bins) -> float | None:
    total = sum(b["count"] for b in bins)
    return sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins) if total else None


def reliability_diagram(bins_before, bins_after, out, title: str = "") -> Path:
    """Accuracy against mean confidence per bin (``runs.calibration.reliability``'s dicts) before and after
    temperature scaling, over the diagonal a calibrated model sits on; below, how many predictions each bin
    holds (an off-diagonal bin of three images matters little)."""
    plt = _pyplot()
    fig, (ax, counts) = plt.subplots(2, 1, figsize=(6, 6.5), sharex=True, height_ratios=(3, 1),
                                     layout="constrained")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for bins, name, style in ((bins_before, "before", "-o"), (bins_after, "after temperature scaling", "-s")):
        if not bins:
            continue
        ece = _bins_ece(bins)
        x = [b["confidence"] for b in bins]
        line, = ax.plot(x, [b["accuracy"] for b in bins], style, markersize=4, label=f"{name} (ECE {ece:.3f})")
        width = [b["upper"] - b["lower"] for b in bins]
        counts.bar([b["lower"] for b in bins], [b["count"] for b in bins], width=width, align="edge",
                   color=line.get_color(), alpha=0.35, edgecolor=line.get_color())
    ax.set(xlim=(0, 1), ylim=(0, 1.02), ylabel="accuracy")
    ax.set_title(lines(title or "reliability"), parse_math=False)
    ax.grid(alpha=0.3)
    _plain_legend(ax, fontsize=8, loc="upper left")
    counts.set(xlabel="confidence (top-label probability)", ylabel="predictions")
    counts.grid(alpha=0.3)
    return save(fig, out)


def _point_at(curve: dict, threshold: float, x: str, y: str):
    """The curve's point for "positive when score >= threshold": the one with the smallest threshold at or
    above it (None, the ROC origin, is above every score); None when the curve has no such point."""
    best = None
    for i, t in enumerate(curve["thresholds"]):
        t = np.inf if t is None else t
        if t >= threshold and (best is None or t <= best[0]):
            best = (t, curve[x][i], curve[y][i])
    return None if best is None else best[1:]


def _operating_points(curves: dict, thresholds) -> dict:
    """``{class: (pr point, roc point)}`` where the decision rule puts each class; see :func:`pr_roc_curves`."""
    if thresholds is None:  # the model's own argmax, which curves() measured exactly
        ops = {name: c["operating_point"] for name, c in curves.items()}
        return {name: ((op["recall"], op["precision"]), (op["fpr"], op["tpr"])) for name, op in ops.items()}
    if len(curves) != 2:
        raise ValueError(f"a threshold applies to two classes, not {len(curves)}")
    # the second class is predicted when its probability is >= t: the first when its own is > 1 - t
    points = {}
    for name, t in zip(curves, (1.0 - float(thresholds), float(thresholds))):
        points[name] = (_point_at(curves[name]["pr"], t, "recall", "precision"),
                        _point_at(curves[name]["roc"], t, "fpr", "tpr"))
    return points


def _mark(ax, point, colour) -> None:
    if point is not None and None not in point:
        ax.plot(*point, "o", color=colour, markersize=7, markeredgecolor="black", zorder=3)


def pr_roc_curves(curves: dict, out, thresholds=None) -> Path:
    """Per class (``runs.calibration.curves``' dict), its precision-recall curve (left) and ROC curve
    (right), a dot where the decision rule operates: argmax by default (probability 0.5 for two classes);
    for two classes ``thresholds`` may be the second class's probability at which it is predicted."""
    plt = _pyplot()
    fig, (pr_ax, roc_ax) = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    points = _operating_points(curves, thresholds)
    for i, (name, c) in enumerate(curves.items()):
        colour = f"C{i % 10}"  # one colour per class in both panels
        label = _entry(name)
        if c["pr"]["recall"]:
            pr_ax.plot(c["pr"]["recall"], c["pr"]["precision"], color=colour,
                       label=f"{label} (AP {c['average_precision']:.3f})")
            _mark(pr_ax, points[name][0], colour)
        if c["roc"]["fpr"]:
            roc_ax.plot(c["roc"]["fpr"], c["roc"]["tpr"], color=colour, label=f"{label} (AUC {c['roc_auc']:.3f})")
            _mark(roc_ax, points[name][1], colour)
        else:  # no positives or no negatives: say so rather than leave the class out silently
            roc_ax.plot([], [], color=colour, label=f"{label} (no ROC: one-sided labels)")
    rule = "argmax" if thresholds is None else f"threshold {float(thresholds):g}"
    pr_ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02),
              title=f"precision-recall (dot: {rule})")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1.01), ylim=(0, 1.02),
               title=f"ROC (dot: {rule})")
    for ax in (pr_ax, roc_ax):
        ax.grid(alpha=0.3)
        if len(curves) <= LABELLED_CLASSES // 2:  # a legend of hundreds of classes would only hide the curves
            _plain_legend(ax, fontsize=8, loc="lower left" if ax is pr_ax else "lower right")
    return save(fig, out)

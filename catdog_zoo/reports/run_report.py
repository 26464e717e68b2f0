"""A finished run, told with pictures: learning curves, confusion matrix, worst errors (with Grad-CAM
heatmaps), calibration (reliability diagram, PR and ROC curves), report.html.

The trainer calls :func:`write_run_report` before it writes ``metrics.json``, with the predictions it
already has for the held-out split (test, or validation when there is no test split) and the record's
``calibration``. The HTML embeds every figure as a data URI, so the file opens from disk, alone, in any
browser.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import numpy as np

from ..runs.layout import CALIBRATION_FILE, CONFUSION_FILE, CURVES_FILE, ERRORS_FILE, PR_ROC_FILE, REPORT_FILE
from ..runs.record import RunRecord
from ..runs.scores import per_class, score_text
from ..util import names
from ..util.confidence import interval_text, small_splits_text, too_small
from ..util.files import write_text
from . import plots

ERRORS_SHOWN = 12


def confusion(labels, predicted, num_classes: int) -> np.ndarray:
    """``matrix[true, predicted]`` counts."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, int), np.asarray(predicted, int)), 1)
    return matrix


def confident_errors(labels, probs, limit: int = ERRORS_SHOWN) -> list:
    """Indices of misclassified items, highest loss (lowest probability of the true class) first, as
    fastai's ``plot_top_losses`` orders them; for two classes the same as most confident first."""
    labels, probs = np.asarray(labels), np.asarray(probs)
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    return [int(i) for i in wrong[np.argsort(probs[wrong, labels[wrong]], kind="stable")][:limit]]


def item_loss(probs, labels, i: int) -> float:
    """Cross-entropy of item ``i``: minus the log-probability of its true class."""
    return float(-np.log(max(float(probs[i, labels[i]]), 1e-7)))


def write_run_report(run_dir, config: dict, record: RunRecord, history: dict, evaluated: dict) -> dict:
    """Write the figures and report.html into ``run_dir``; returns the confusion summary for the record.

    ``evaluated``: ``{"split", "images" (uint8), "labels", "probs", "paths"}`` for the held-out split, and
    optionally ``"model"`` (the run's model: Grad-CAM heatmaps on the worst errors). The calibration
    figures are drawn from ``record.calibration`` when the record has it.
    """
    run_dir = Path(run_dir)
    classes = list(record.class_names)
    labels, probs = np.asarray(evaluated["labels"]), np.asarray(evaluated["probs"])
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
    matrix = confusion(labels, predicted, len(classes))
    split = evaluated["split"]
    title = f"{names.plot(record.model)} ({names.plot(run_dir.name)})"
    plots.learning_curves(history, run_dir / CURVES_FILE, title=title, baseline=record.majority_baseline,
                          marks=evaluated.get("stage_marks"))
    plots.confusion_matrix(matrix, classes, run_dir / CONFUSION_FILE,
                           title=f"{split} split: {int(np.trace(matrix))} of {int(matrix.sum())} right")
    worst = confident_errors(labels, probs)
    heatmaps = ""
    if worst:
        pictures, heatmaps = explained([evaluated["images"][i] for i in worst], predicted[worst],
                                       evaluated.get("model"))
        plots.image_grid(pictures,
                         [f"{_short(names.plot(Path(evaluated['paths'][i]).name))}\n"
                          f"true {_short(names.plot(classes[labels[i]]), 14)}, "
                          f"predicted {_short(names.plot(classes[predicted[i]]), 14)}\n"
                          f"p={probs[i, predicted[i]]:.2f}, "
                          f"loss {item_loss(probs, labels, i):.2f}" for i in worst],
                         run_dir / ERRORS_FILE, columns=min(4, len(worst)),
                         suptitle=f"top losses: the {len(worst)} worst of {int(matrix.sum() - np.trace(matrix))} "
                                  f"wrong {split} images" + ("; Grad-CAM of the predicted class"
                                                             if heatmaps.startswith("Grad-CAM") else ""))
    else:
        plots.image_grid([None], [f"no misclassified {split} images"], run_dir / ERRORS_FILE, columns=1, cell=3.0)
    if record.calibration:
        calibration_figures(run_dir, record.calibration)
    record.per_class = per_class(labels, predicted, classes)
    summary = {"split": split, "class_names": classes, "matrix": matrix.tolist(),
               "worst_errors": [{"path": str(evaluated["paths"][i]), "true": classes[labels[i]],
                                 "predicted": classes[predicted[i]],
                                 "probability": round(float(probs[i, predicted[i]]), 4),
                                 "loss": round(item_loss(probs, labels, i), 4)} for i in worst]}
    record.confusion_matrix = summary
    write_text(run_dir / REPORT_FILE, render_html(run_dir, config, record, heatmaps, evaluated.get("small_data")))
    return summary


def explained(images: list, classes, model) -> tuple[list, str]:
    """The worst errors' pictures and how they were made: each image under a Grad-CAM heatmap of the class
    ``model`` predicted (``models.gradcam``), or the plain images (with one warning line) when the model
    cannot be explained so (not a chain of layers, no spatial feature map) or no model is given."""
    if model is None:
        return images, ""
    try:
        from ..models import gradcam  # TensorFlow: only when there is a model to explain

        layer, (height, width) = gradcam.feature_map(model, np.shape(images[0]))
        grids = gradcam.heatmaps(model, np.stack(images), class_indices=np.asarray(classes))
        pictures = [gradcam.overlay(image, grid) for image, grid in zip(images, grids)]
    except Exception as exc:  # noqa: BLE001 - the pictures without heatmaps still tell the story
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        print(names.terminal(f"Warning: no heatmaps on {ERRORS_FILE}, plain images instead: {reason}"), file=sys.stderr,
              flush=True)
        return images, f"plain images: no Grad-CAM heatmaps for this model ({reason})"
    return pictures, (f"Grad-CAM heatmaps of the predicted class, from the {height}x{width} feature map "
                      f"output by layer '{layer}' (red: the evidence for that class)")


def calibration_figures(run_dir: Path, calibration: dict) -> None:
    """The reliability diagram (``calibration.png``) and the PR/ROC curves (``pr_roc.png``, the 0.5
    operating point marked for two classes, argmax otherwise) of the record's ``calibration``."""
    t, split = calibration["temperature"], calibration["split"]
    plots.reliability_diagram(calibration["bins_before"], calibration["bins_after"], run_dir / CALIBRATION_FILE,
                              title=f"reliability on the {split} split (T = {t:.3g} fitted on validation)")
    plots.pr_roc_curves(calibration["curves"], run_dir / PR_ROC_FILE,
                        thresholds=0.5 if len(calibration["curves"]) == 2 else None)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(rows) -> str:
    body = "".join(f"<tr><th>{names.html(str(k))}</th><td>{names.html(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value else f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "-" if value is None else str(value)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0; } .sub { color: #666; margin-top: 0.2em; }
.cards { display: flex; gap: 1em; margin: 1.5em 0; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 0.8em 1.2em; min-width: 8em; }
.card b { display: block; font-size: 1.6em; } .card small { color: #666; }
.warn { background: #fff4e0; border-left: 4px solid #e69500; padding: 0.6em 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #eee; padding: 0.25em 1em 0.25em 0; text-align: left; vertical-align: top; }
td { overflow-wrap: anywhere; }
th { font-weight: 600; white-space: nowrap; } img { max-width: 100%; border: 1px solid #eee; }
.cols { display: flex; gap: 2em; flex-wrap: wrap; } .cols > div { flex: 1; min-width: 300px; }
"""


def _short(name: str, width: int = 24) -> str:
    return name if len(name) <= width else name[:width // 2 - 1] + "..." + name[-(width // 2 - 2):]


def _stage_text(stage: dict) -> str:
    """"20 epochs on cached features, 5.5 s, val 99.00%" rather than the record's raw keys."""
    parts = [f"{stage.get('epochs')} epochs"]
    if "from_layer" in stage:
        parts[0] += f" from layer {stage['from_layer']}"
    if stage.get("feature_cache"):
        at = stage.get("activations_at")
        parts[0] += f" on cached activations of layer {at}" if at is not None else " on cached features"
    if stage.get("kept_epoch"):
        parts.append(f"kept epoch {stage['kept_epoch']}" + (" (stopped early)" if stage.get("stopped_early") else ""))
    if stage.get("seconds") is not None:
        parts.append(f"{stage['seconds']:.1f} s")
    if stage.get("val_accuracy") is not None:
        parts.append(f"val {stage['val_accuracy']:.2%}")
    return ", ".join(parts)


def _accuracy_note(record: RunRecord, split: str) -> str:
    """"95% CI 76.4-99.1% of 20 images" under an accuracy card (:mod:`catdog_zoo.util.confidence`)."""
    interval = record.interval(split)
    return f"{interval_text(interval, percent=True)} of {record.split_sizes[split]} images" if interval else ""


def _rejection_text(facts: dict) -> str:
    """What the run answers "unknown" to, in words (docs/trusting-results.md)."""
    if not facts:
        return "-"
    if not facts.get("available"):
        return f"unavailable: {facts.get('why', '')}"
    share, seen = facts.get("validation_rejected"), facts.get("validation_images")
    few = (f". Set from only {seen} validation photos, so it is rough: new photos of the classes may be answered "
           "'unknown' more often" if too_small(seen) else "")
    return (f"ood_score above {facts['threshold']:.3f} (the {facts['quantile']:.1%} point of validation photos' "
            f"scores" + (f"; rejects {share:.1%} of them" if share is not None else "") + ")" + few)


def _per_class_table(scores: dict) -> str:
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>"
    rows = "".join(f"<tr><td>{names.html(name)}</td>"
                   + "".join(f"<td>{score_text(s, key, '.1%')}</td>" for key in ("precision", "recall", "f1"))
                   + f"<td>{s['support']}</td></tr>" for name, s in scores.items())
    return f"<table>{head}{rows}</table>"


def _number(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _calibration_text(cal: dict) -> str:
    """ECE before and after temperature scaling, and the temperature, in words (HTML)."""
    split = names.html(cal["split"])
    t = cal["temperature"]
    if cal.get("ece_before") is None:
        return f"<p>No {split} images to measure calibration on (T={t:.3g}, fitted on validation).</p>"
    same = (" There is no test split, so the temperature is fitted and judged on the same images: the "
            "&ldquo;after&rdquo; numbers are optimistic." if cal["split"] == "validation" else "")
    direction = ("over-confident" if t > 1 else "under-confident") if t != 1 else "neither (scaling gains nothing)"
    return (f"<p>Probabilities are temperature-scaled by T={t:.3g}, fitted on validation; ECE on the {split} split "
            f"{_number(cal['ece_before'])} &rarr; {_number(cal['ece_after'])} (negative log-likelihood "
            f"{_number(cal['nll_before'])} &rarr; {_number(cal['nll_after'])}).{same}</p>"
            f"<p>ECE (expected calibration error) is the gap between how sure the model is and how often it is "
            f"right, averaged over the confidence bins of the diagram (0: perfectly calibrated). T &gt; 1 means "
            f"the model was over-confident, T &lt; 1 under-confident; this one: {direction}. "
            f"<code>model.keras</code> returns the unscaled logits: divide them by T for the scaled "
            f"probabilities (T is <code>calibration.temperature</code> in <code>metrics.json</code>).</p>")


def _curves_table(curves: dict) -> str:
    """Per class: ROC AUC, average precision, and precision and recall where the model decides."""
    at = "at 0.5" if len(curves) == 2 else "at argmax"
    head = (f"<tr><th>class</th><th>ROC AUC</th><th>AP</th><th>precision {at}</th>"
            f"<th>recall {at}</th></tr>")
    rows = "".join(f"<tr><td>{names.html(name)}</td><td>{_number(c.get('roc_auc'))}</td>"
                   f"<td>{_number(c.get('average_precision'))}</td>"
                   f"<td>{_number((c.get('operating_point') or {}).get('precision'), '.1%')}</td>"
                   f"<td>{_number((c.get('operating_point') or {}).get('recall'), '.1%')}</td></tr>"
                   for name, c in curves.items())
    return f"<table>{head}{rows}</table>"


def _threshold_text(class_names: list) -> str:
    if len(class_names) != 2:
        return ("<p>The dots mark the model's own decision, the most likely class. "
                "<code>predict --threshold</code> applies to two-class models only.</p>")
    first, second = (names.html(name) for name in class_names)
    return (f"<p>For two classes, <code>catdog-zoo predict RUN_DIR IMAGES --threshold t</code> predicts "
            f"{second} when its probability is &gt;= t (without it, the more likely class: t = 0.5, the dots); "
            f"moving t moves the marked point along the curves: a lower t finds more {second} (higher recall) "
            f"and calls more {first} {second} (lower precision), a higher t the reverse.</p>")


def _calibration_section(run_dir: Path, record: RunRecord) -> str:
    cal = record.calibration
    figures = (run_dir / CALIBRATION_FILE, run_dir / PR_ROC_FILE)
    if not cal or not all(path.is_file() for path in figures):
        return "<h2>Calibration</h2><p>Calibration was not measured for this run.</p>"
    reliability, pr_roc = (f'<img alt="{path.name}" src="{_data_uri(path)}">' for path in figures)
    return (f"<h2>Calibration ({names.html(cal['split'])})</h2>{_calibration_text(cal)}"
            f'<div class="cols"><div>{reliability}</div>'
            f"<div><h3>Precision-recall and ROC</h3>{_curves_table(cal.get('curves') or {})}"
            f"{_threshold_text(list((cal.get('curves') or {}).keys()) or record.class_names)}</div></div>"
            f"{pr_roc}")


def render_html(run_dir: Path, config: dict, record: RunRecord, heatmaps: str = "", small_data=None) -> str:
    """The report page: headline numbers, the figures inline, metrics, stages and the resolved config
    (``heatmaps``: how the errors figure's heatmaps were made, in words; ``small_data``: train's warning about
    small splits, with the flags that give larger ones, when it gave one)."""
    def pct(value):
        return "-" if value is None else f"{value:.1%}"
    gap = record.overfit_gap
    cards = [("validation accuracy", pct(record.val_accuracy), _accuracy_note(record, "validation")),
             ("test accuracy", pct(record.test_accuracy), _accuracy_note(record, "test")),
             ("overfitting gap", "-" if gap is None else f"{gap * 100:+.1f} pts", ""),
             ("training time", f"{record.train_seconds or 0:.0f} s", ""),
             ("parameters", f"{record.num_params or 0:,}", "")]
    cards_html = "".join(f'<div class="card">{names.html(k)}<b>{names.html(v)}</b>'
                         f'{f"<small>{names.html(note)}</small>" if note else ""}</div>' for k, v, note in cards)
    small = small_data or small_splits_text({split: record.split_sizes.get(split) for split in ("validation", "test")})
    warning = (f'<p class="warn">Small data: {names.html(small)}. Read these accuracies with their intervals'
               + ("." if small_data else "; more photos (or a larger held-out share) narrow them.") + "</p>"
               if small else "")
    if record.baseline_note():
        warning += f'<p class="warn">At the baseline: {names.html(record.baseline_note())}.</p>'
    figures = {name: run_dir / name for name in (CURVES_FILE, CONFUSION_FILE, ERRORS_FILE)}
    img = {name: f'<img alt="{name}" src="{_data_uri(path)}">' for name, path in figures.items()}
    headline = [(k, getattr(record, k)) for k in ("model", "distribution", "plugin_version", "val_accuracy",
                                                 "val_loss", "test_accuracy", "test_loss", "train_accuracy",
                                                 "train_loss", "train_seconds", "num_params", "trainable_params",
                                                 "skipped_files")]
    stages = [(name.replace("_", "-"), _stage_text(stage)) for name, stage in record.stages.items()]
    data = [("data", record.data_root), ("fingerprint", record.data_fingerprint or "-"),
            ("majority-class baseline", "-" if record.majority_baseline is None else f"{record.majority_baseline:.2%}"),
            ("classes", record.class_names),
            ("images per split", ", ".join(f"{k} {v}" for k, v in record.split_sizes.items())),
            ("image size", record.image_size), ("unknown answers", _rejection_text(record.rejection))]
    versions = list(record.versions.items())
    split = (record.confusion_matrix or {}).get("split", "test")
    model, run = names.html(record.model), names.html(run_dir.name)
    errors_note = f"<p>{names.html(heatmaps)}.</p>" if heatmaps else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{model}: {run}</title>
<style>{STYLE}</style></head><body>
<h1>{model}</h1>
<p class="sub">run {run}, seed {record.seed}, finished {names.html(record.finished_at)}</p>
<div class="cards">{cards_html}</div>{warning}
<h2>Learning curves</h2>{img[CURVES_FILE]}
<div class="cols"><div><h2>Confusion matrix ({names.html(split)})</h2>{img[CONFUSION_FILE]}</div>
<div><h2>Per class ({names.html(split)})</h2>{_per_class_table(record.per_class)}
<h2>Data</h2>{_table(data)}<h2>Stages</h2>{_table(stages)}</div></div>
<h2>Most confident errors ({names.html(split)})</h2>{errors_note}{img[ERRORS_FILE]}
{_calibration_section(run_dir, record)}
<div class="cols"><div><h2>Metrics</h2>{_table(headline)}</div>
<div><h2>Configuration</h2>{_table(config.items())}<h2>Versions</h2>{_table(versions)}</div></div>
</body></html>
"""

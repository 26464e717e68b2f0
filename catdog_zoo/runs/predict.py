"""Labelling image files with a finished run's model, and writing the predictions as CSV."""

from __future__ import annotations

import csv
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..data.decode import describe_skipped
from ..data.limits import ImageError
from ..data.pixels import decode_file
from ..errors import ZooError
from ..util.files import csv_cell, output_path, write_text
from ..util.locks import folder_lock
from ..util.names import terminal
from ..util.progress import SILENT
from .evaluate import load_run_model
from .explain import Explainer
from .inference import open_run_model
from .inputs import check_threshold, gather_images
from .record import read_run
from .rejection import REJECTED


def choose(probs, class_names, threshold=None) -> int:
    """The predicted class index: the most likely one, or for two classes with ``threshold``,
    the second class when its probability is at least ``threshold``."""
    if threshold is None:
        return int(probs.argmax())
    return 1 if probs[1] >= threshold else 0


def predict(run_dir, paths, *, batch_size: int = 32, strict: bool = False, threshold: float | None = None,
            tta: bool = False, reject: bool = True, explain=None, overwrite: bool = False, progress=SILENT,
            say=None) -> list:
    """``[{"path", "label", "probability", "probabilities", "rejected", "ood_score"}]`` per image: the predicted
    class, its probability, every class's probability (temperature-scaled, :mod:`.calibration`), and whether
    the image is unlike the run's training photos (:mod:`.rejection`): then its ``label`` is ``unknown``
    (``probability`` stays that of the most likely class). ``reject=False``, or a run without a pretrained
    backbone, never rejects (``ood_score`` None; the reason is said once through ``say``).

    ``threshold`` (two-class models only): predict the second class (``class_names[1]``, "dogs" for
    cats/dogs) when its probability is at least ``threshold``, instead of at 0.5.
    ``tta``: average each image's probabilities with its mirror image's (test-time augmentation).
    ``explain``: a folder for each image's Grad-CAM picture (:mod:`.explain`); each prediction then also has
    ``heatmap`` (the raw grid, rows top first) and ``explanation`` (the picture's path).
    Files that are not usable images are skipped with a warning (an error with ``strict``). ``overwrite``: the
    ``explain`` folder's pictures may replace files of the same names.

    Holds the run's lock shared (:func:`catdog_zoo.util.locks.folder_lock`): beside other readers, never
    beside ``train`` or ``export`` of the run.
    """
    files = gather_images(paths, strict)
    explainer = Explainer(explain, files, reads=[run_dir, *paths], overwrite=overwrite) if explain is not None \
        else None  # refused before any work
    with folder_lock(run_dir, shared=True):
        return _predict(run_dir, files, batch_size, strict, threshold, tta, reject, explainer, progress, say)


def _predict(run_dir, files, batch_size, strict, threshold, tta, reject, explainer, progress, say) -> list:
    config, record = read_run(run_dir)
    model = load_run_model(run_dir)
    if explainer is not None:
        explainer.model = model
    scorer, novelty, why = open_run_model(run_dir, config, record, model, reject)
    if why:
        note = terminal(f"Note: no 'unknown' answers from {run_dir}: {why}")
        (say or (lambda text: print(text, file=sys.stderr)))(note)
    size = tuple(config.image_size)
    class_names = record.class_names
    check_threshold(threshold, class_names, run_dir)
    results, skipped = [], []
    # TensorFlow's decoders release the GIL: a thread per core decodes while the model scores.
    with progress("predicting", len(files)) as bar, ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for start in range(0, len(files), batch_size):
            _predict_batch((scorer, novelty, explainer), files[start:start + batch_size], pool, size, tta,
                           class_names, threshold, results, skipped)
            bar.advance(len(files[start:start + batch_size]))
    if skipped:
        message = describe_skipped(skipped)
        if strict or not results:
            raise ZooError(message if not strict else f"--strict: {message}")
        print(f"Warning: {message}", file=sys.stderr)
    return results


def _predict_batch(models, chunk_files, pool, size, tta, class_names, threshold, results, skipped) -> None:
    scorer, novelty, explainer = models
    def decode(f):
        try:
            return decode_file(str(f), size), None
        except ImageError as exc:
            return None, str(exc)
    chunk, images = [], []
    for f, (image, problem) in zip(chunk_files, pool.map(decode, chunk_files)):
        if problem is None:
            images.append(image)
            chunk.append(f)
        else:
            skipped.append((str(f), problem))
    if not chunk:
        return
    images = np.stack(images)
    found = answers(scorer, novelty, images, class_names, threshold, tta)
    grids = explainer.explain(images, [a.pop("class_index") for a in found], chunk) if explainer is not None \
        else [None] * len(chunk)
    for f, answer, grid in zip(chunk, found, grids):
        answer.pop("class_index", None)
        results.append({"path": str(f), **answer,
                        **({"heatmap": grid, "explanation": explainer.picture(f)} if grid is not None else {})})


def answers(scorer, novelty, images, class_names, threshold=None, tta: bool = False) -> list:
    """What the run says of each decoded image: ``{"label", "probability", "probabilities", "rejected",
    "ood_score", "class_index"}`` (the class chosen before rejection), as ``predict`` and ``serve`` give it."""
    features = scorer.features(images) if novelty is not None else None
    probs = scorer.probabilities(images, tta, features=features)
    count = len(probs)
    scores, rejected = novelty.rejected(features) if novelty is not None else ([None] * count, [False] * count)
    out = []
    for p, score, no in zip(probs, scores, rejected):
        best = choose(p, class_names, threshold)
        out.append({"label": rejected_label(class_names) if no else class_names[best],
                    "probability": round(float(p[best]), 6),
                    "probabilities": {c: round(float(v), 6) for c, v in zip(class_names, p)},
                    "rejected": bool(no), "ood_score": None if score is None else round(float(score), 6),
                    "class_index": best})
    return out


def rejected_label(class_names) -> str:
    """``unknown``, or ``unknown (rejected)`` should a class be called ``unknown`` itself."""
    return REJECTED if REJECTED not in class_names else f"{REJECTED} (rejected)"


def write_predictions_csv(results: list, out) -> Path:
    """``path,label,probability``, one ``p_<class>`` column per class, ``rejected`` and ``ood_score``; written
    whole or not at all."""
    classes = list(results[0]["probabilities"]) if results else []
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "label", "probability", *(csv_cell(f"p_{c}") for c in classes), "rejected", "ood_score"])
    for r in results:  # file and class names are anyone's: csv_cell keeps a spreadsheet from running them
        writer.writerow([csv_cell(r["path"]), csv_cell(r["label"]), f"{r['probability']:.6f}",
                         *(f"{r['probabilities'][c]:.6f}" for c in classes), str(r["rejected"]).lower(),
                         "" if r["ood_score"] is None else f"{r['ood_score']:.6f}"])
    out = output_path(out)
    write_text(out, buf.getvalue())
    return out

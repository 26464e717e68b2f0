"""A finished run's model exported in a registered format, and checked: everything the core does around any export.

The format is an exporter (:class:`catdog_zoo.ExporterSpec`, looked up in :mod:`.export_formats`): the built-in
``saved_model`` and ``tflite`` (:mod:`.builtin_exporters`) or a plugin's (``onnx``: ``plugins/catdog-zoo-onnx``).
It writes the model (images in [0, 255] at the run's image size in; augmentation layers, identity at inference,
left out: traced, they would still carry random-number and image-transform ops converters lack) and opens what
it wrote; the rest is done here alike for every format. A versioned format (SavedModel) goes to ``OUT/VERSION/``
(``OUT``: TF Serving's model base path, default ``RUN_DIR/export/serving/MODEL``; ``VERSION``: the next free
number unless given), any other to ``OUT`` (default ``RUN_DIR/export/model[-QUANTIZE]SUFFIX``). Every export
gets its class names one per line (``labels.txt`` inside a folder, ``OUT.labels.txt`` beside a file).

After writing, the export is run on the run's test split beside the Keras model: the largest difference in
class probabilities and both accuracies are reported (and stored in ``OUT.export.json``), so a conversion
problem shows up as a number, not in production. A float export must agree within 1e-3; a quantized one is
judged by its accuracy.

An export takes the run's lock (:func:`catdog_zoo.util.locks.folder_lock`) for its whole length: it never runs
beside ``train --overwrite`` (which would leave the old model's export in the new run) or another export of
the run. ``OUT.export.json`` is written first, marked incomplete, then replaced by the report: it is the
zoo's record that ``OUT`` is its own (:mod:`catdog_zoo.util.owned`), so an export that failed half-way is
replaced by the next one, and ``--overwrite`` replaces nothing else (:func:`.confine.check_output`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..data.splits import ALL
from ..errors import ZooError, first_line
from ..models.augment import without_augmentation
from ..models.heads import probabilities
from ..util.files import dir_size, output_path, write_json, write_text
from ..util.locks import folder_lock
from ..util.names import labels_file
from ..util.owned import export_record, is_ours, remove_ours, temp_prefix
from ..util.progress import SILENT
from ..util.system import problem
from ..models.frozen import split_frozen
from ..plugins import get_zoo
from .evaluate import decode_run_split, load_run_model
from .inference import run_temperature
from .confine import check_output, confined
from .layout import EXPORT_DIR, is_leftover
from .portable import run_data
from .record import read_run
from .rejection import load as load_novelty
from .serving import calibration_images
from .export_formats import NO_QUANTIZATION, default_out, exporter
from ..extensions import ExportContext

PARITY_TOLERANCE = 1e-3  # max |p_export - p_keras| of a float export


def export(run_dir, fmt: str, out=None, *, overwrite: bool = False, check_split: str = "test",
           quantize: str = NO_QUANTIZATION, version: int | None = None, data: str | None = None,
           progress=SILENT) -> dict:
    """Write the export in the registered format ``fmt`` (``out``: see :func:`.export_formats.default_out`) and
    measure it on ``check_split`` of the run's data (``data``: where that is now, when not where the run recorded
    it; a folder of other photos is checked on all its images, :mod:`.portable`); ``progress``: a
    :func:`catdog_zoo.util.progress.progress_factory` (the conversion's steps, then the check's images)."""
    spec = exporter(fmt, quantize, version)
    with folder_lock(run_dir):  # the whole export: no train --overwrite or other export of the run beside it
        config, record = read_run(run_dir)  # again, under the lock: the run may have changed since the caller's
        out = _destination(Path(run_dir), Path(out) if out else default_out(run_dir, spec, config.model, quantize),
                           spec, version)
        found = run_data(run_dir, config, record, data)
        if found.note:
            print(f"Note: {found.note}; the export is checked on all its images", file=sys.stderr)
        _check_destination(out, Path(run_dir), found.splits.root, overwrite)
        model = without_augmentation(load_run_model(run_dir))
        output_path(out, folder_ok=True)
        _remove_stale_staging(out.parent)
        try:
            return _export(run_dir, config, record, model, spec, out, quantize,
                           (found.splits, check_split if found.own else ALL), progress)
        except BaseException:
            if _incomplete(out):  # this export got as far as moving its files into place: take them back
                remove_ours(out, "export")
            raise


def _destination(run_dir: Path, out: Path, spec, version) -> Path:
    """``out`` (with its version folder for a versioned format), kept inside the run when it is inside the run."""
    if _lexically_inside(out, run_dir):
        confined(run_dir, out)  # export/ or serving/ linked elsewhere is refused, not written through
    if spec.versioned:
        out = out / str(version or _next_version(out))
    return out


def _lexically_inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return path == folder or folder in path.parents


def _export(run_dir, config, record, model, spec, out: Path, quantize, checked_on: tuple, progress) -> dict:
    """``checked_on``: ``(splits, split)``, the images the export is checked on."""
    labels = labels_file(record.class_names, run_dir)  # labels.txt: one class name per line, or refused
    with tempfile.TemporaryDirectory(prefix=temp_prefix("export"), dir=out.parent) as tmp, \
            progress(f"exporting {spec.name}" + (f" ({quantize})" if quantize != NO_QUANTIZATION else ""),
                     spec.steps, "steps") as bar:
        staged = Path(tmp) / ("export" + spec.suffix)
        (Path(tmp) / "scratch").mkdir()
        novelty, chain = _rejection(run_dir, record, model)
        context = ExportContext(run_dir=Path(run_dir), class_names=tuple(record.class_names),
                                image_size=tuple(config.image_size), quantize=quantize,
                                temperature=run_temperature(record),
                                calibration=calibration_images(checked_on[0].train.paths, config.image_size),
                                novelty=novelty, chain=chain,
                                scratch=Path(tmp) / "scratch", advance=bar.advance)
        added = _written(spec, model, staged, context)
        if staged.is_dir():
            (staged / "labels.txt").write_text(labels, encoding="utf-8")
        # The record first, marked incomplete: from here on, what is at ``out`` is provably the zoo's.
        write_json(export_record(out), {"run": str(run_dir), "format": spec.name, "path": str(out),
                                        "complete": False})
        _replace(staged, out)
    if out.is_file():
        write_text(out.parent / f"{out.name}.labels.txt", labels)
    checked = check_parity(model, out, spec.name, config, *checked_on, progress=progress)
    if quantize != NO_QUANTIZATION:
        checked["parity_ok"] = None  # meant to differ: judged by its accuracy, not by parity
    report = {"run": str(run_dir), "format": spec.name, "quantize": quantize, "path": str(out),
              "size_bytes": dir_size(out) if out.is_dir() else out.stat().st_size,
              "input": f"float32 (batch, {config.image_size[0]}, {config.image_size[1]}, 3) in [0, 255]",
              "output": "logits", **added, "class_names": record.class_names, **checked}
    write_json(export_record(out), report)  # replaces the incomplete record: the export is whole and checked
    return report


def _written(spec, model, staged: Path, context) -> dict:
    """The exporter's ``write``; what a plugin's raises is one line naming the format and its plugin."""
    try:
        added = spec.write(model, staged, context)
    except ZooError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin's converter can fail in any way, exit() too
        if problem(exc):  # the system's limit (a full disk, ulimit -f), not the format's fault: said as such
            raise
        raise ZooError(f"--format {spec.name} ({spec.distribution or spec.plugin}) could not export the model of "
                       f"{context.run_dir}: {first_line(exc)}") from None
    whose = f"--format {spec.name} ({spec.distribution or spec.plugin})"
    if not os.path.lexists(staged):
        raise ZooError(f"{whose} wrote nothing: its write() must create the file or folder at the path it is given")
    if not isinstance(added, dict):  # the report is the zoo's: an exporter adds to it, never replaces it
        return {}
    kept = {key: value for key, value in added.items() if key == "output" or key not in _REPORT_KEYS}
    try:  # the report is JSON, written after the parity check: refused now, before anything is at --out
        json.dumps(kept, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ZooError(f"{whose}: its write() returned facts that are not plain JSON ({first_line(exc)})") from None
    return kept


_REPORT_KEYS = ("run", "format", "quantize", "path", "size_bytes", "input", "class_names", "parity_split",
                "parity_images", "max_probability_difference", "same_label_fraction", "parity_ok",
                "accuracy_keras", "accuracy_export")


def _rejection(run_dir, record, model) -> tuple:
    """``(novelty, chain)`` for a SavedModel that answers "unknown" as ``predict`` does, or ``(None, None)``."""
    if not record.rejection.get("available"):
        return None, None
    try:
        backbone = get_zoo().model(record.model).frozen_backbone
    except Exception:  # noqa: BLE001 - the plugin is gone: the export still serves the model's classes
        backbone = None
    chain = split_frozen(model, backbone) if backbone else None
    if chain is None:
        return None, None
    x = np.zeros((1, *model.input_shape[1:]), np.float32)
    for layer in chain.front + chain.frozen:
        x = layer(x, training=False)
    return load_novelty(run_dir, record.rejection, int(x.shape[-1])), chain


def _next_version(base: Path) -> int:
    """TF Serving serves the highest numbered folder: a new export takes the next number."""
    taken = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
    return max(taken, default=0) + 1


def _check_destination(out: Path, run_dir: Path, data_root, overwrite: bool) -> None:
    """Refuse an ``--out`` whose writing could lose anything (:func:`.confine.check_output`): the run, its data,
    inside either (but the run's own ``export/``), and (even with ``--overwrite``) anything there that is not an
    export catdog-zoo wrote, as told by the ``NAME.export.json`` it writes beside every export. An export left
    incomplete by a failed one is the zoo's own and is replaced without ``--overwrite``."""
    home = run_dir / EXPORT_DIR if _lexically_inside(out, run_dir / EXPORT_DIR) else None
    if _incomplete(out):
        overwrite = True
    check_output(out, overwrite=overwrite, reads=[run_dir, data_root], own_run=run_dir if home else None, home=home,
                 ours=_is_export,
                 ours_what=f"an export catdog-zoo wrote (no {out.name}.export.json beside it)")
    for companion in (out.with_name(out.name + ".labels.txt"), export_record(out)):
        if os.path.lexists(companion) and not is_ours(out, "export"):  # a user's file of that name: never replaced
            raise ZooError(f"{companion} exists and is not part of an export catdog-zoo wrote; choose another --out")


def _is_export(path: Path) -> bool:
    return is_ours(path, "export") and (path.is_file() or path.is_dir() or _incomplete(path))


def _incomplete(out: Path) -> bool:
    """An export a failed or killed export left (or only its record): the record, written first, still says
    incomplete."""
    record = export_record(out)
    if not is_ours(out, "export"):
        return False
    try:
        return json.loads(record.read_text(encoding="utf-8")).get("complete") is False
    except (OSError, ValueError, AttributeError):
        return False


STALE_AFTER = 15 * 60  # seconds: an export's staging folder this old belongs to a process that was killed


def _remove_stale_staging(folder: Path) -> None:
    """Staging folders of exports that were killed (``.export.zoo-tmp-XXXXXXXX``, tens of MB each). An ``--out``
    outside the run is not under the run's lock, so only old ones go: a live export's folder changes every few
    seconds."""
    for path in folder.glob(".export*"):
        try:
            if is_leftover(path) and time.time() - path.stat().st_mtime > STALE_AFTER:
                remove_ours(path, "temporary")
        except OSError:
            pass


def _replace(staged: Path, out: Path) -> None:
    """Move ``staged`` to ``out``; an old export is moved aside (into a staging folder of its own, whatever a
    killed export left) and removed only once the new one is in place."""
    if os.path.lexists(out):
        aside = Path(tempfile.mkdtemp(prefix=temp_prefix("export"), dir=out.parent))
        out.rename(aside / "old")
        staged.rename(out)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        staged.rename(out)


def runner(path: Path, fmt: str):
    """``images (N, H, W, 3) float32 -> logits`` for an export in the registered format ``fmt``, by its exporter's
    ``load``; what a plugin's runtime raises, or logits of another shape, is one line naming the format."""
    spec = get_zoo().extension("exporters", fmt, "export format")
    which = f"--format {fmt} ({spec.distribution or spec.plugin})"
    try:
        run = spec.load(Path(path))
    except ZooError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin's runtime can fail in any way
        if problem(exc):
            raise
        raise ZooError(f"{which} cannot open its export {path}: {first_line(exc)}") from None

    def checked(x):
        try:
            logits = np.asarray(run(x))
        except (Exception, SystemExit) as exc:  # noqa: BLE001
            if problem(exc):
                raise
            raise ZooError(f"{which}: its export {path} failed on {len(x)} images: {first_line(exc)}") from None
        if logits.ndim != 2 or len(logits) != len(x):
            raise ZooError(f"{which}: its export {path} answered shape {logits.shape} for {len(x)} images, "
                           "not (images, logits)")
        return logits
    return checked


def check_parity(model, path: Path, fmt: str, config, splits, split: str = "test", batch_size: int = 32,
                 progress=SILENT) -> dict:
    """The export beside the Keras model on ``split`` of ``splits``: largest probability difference, how often
    they give the same label, and each one's accuracy."""
    splits, decoded = decode_run_split(config, split, splits)
    if not len(decoded.split):
        split, decoded = "validation", decode_run_split(config, "validation", splits)[1]
    run = runner(path, fmt)
    labels = np.asarray(decoded.split.labels)
    worst, agree, right_keras, right_export = 0.0, 0, 0, 0
    with progress(f"checking the export on {split}", len(decoded.images)) as bar:
        for start in range(0, len(decoded.images), batch_size):
            x = decoded.images[start:start + batch_size].astype(np.float32)
            expected, got = probabilities(model.predict_on_batch(x)), probabilities(run(x))
            if got.shape != expected.shape:
                raise ZooError(f"--format {fmt}: its export {path} answers {got.shape[1]} classes, the run has "
                               f"{expected.shape[1]}")
            if not (np.isfinite(got).all() and np.isfinite(expected).all()):  # NaN would compare as "0 difference"
                which = "the export" if np.isfinite(expected).all() else "the run's model.keras"
                raise ZooError(f"--format {fmt}: {which} answers NaN or infinite probabilities on {split} images "
                               f"{start}-{start + len(x) - 1}; nothing usable to ship")
            truth = labels[start:start + len(x)]
            worst = max(worst, float(np.abs(got - expected).max()))
            agree += int((got.argmax(1) == expected.argmax(1)).sum())
            right_keras += int((expected.argmax(1) == truth).sum())
            right_export += int((got.argmax(1) == truth).sum())
            bar.advance(len(x))
    n = len(decoded.images)
    return {"parity_split": split, "parity_images": n, "max_probability_difference": worst,
            "same_label_fraction": agree / n if n else None, "parity_ok": worst < PARITY_TOLERANCE,
            "accuracy_keras": right_keras / n if n else None, "accuracy_export": right_export / n if n else None}


def describe(report: dict) -> str:
    size = f"{report['size_bytes'] / 2**20:.1f} MiB"
    kind = report["format"] + (f", {report['quantize']}" if report.get("quantize", "none") != "none" else "")
    n, split = report["parity_images"], report["parity_split"]
    accuracy = (f"accuracy on {n} {split} images: export {report['accuracy_export']:.2%}, model.keras "
                f"{report['accuracy_keras']:.2%}" if n else f"no {split} images to check it on")
    if report["parity_ok"] is None:
        parity = f"same label as model.keras for {report['same_label_fraction']:.1%}" if n else ""
    else:
        verdict = "ok" if report["parity_ok"] else f"ABOVE the {PARITY_TOLERANCE:g} tolerance"
        parity = f"max |p_export - p_keras| = {report['max_probability_difference']:.2e} ({verdict})" if n else ""
    return f"Wrote {report['path']} ({kind}, {size}). {accuracy}" + (f"; {parity}" if parity else "")

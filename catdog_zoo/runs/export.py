"""A finished run's model for serving: a SavedModel in TF Serving's layout or a TFLite file, checked.

A SavedModel goes to ``OUT/VERSION/`` (``OUT``: TF Serving's model base path, default
``RUN_DIR/export/serving/MODEL``; ``VERSION``: the next free number unless given), with the signatures of
:mod:`.serving` (probabilities and class names; encoded images accepted). A TFLite file takes float32
images in [0, 255] at the run's image size and returns logits, float32 or quantized (``--quantize``).
Random augmentation layers (identity at inference) are left out: traced, they would still carry
random-number and image-transform ops that TFLite does not have. Every export gets its class names one
per line (``labels.txt`` in a SavedModel's version folder, ``OUT.labels.txt`` beside a TFLite file).

After writing, the export is run on the run's test split beside the Keras model: the largest difference in
class probabilities and both accuracies are reported (and stored in ``OUT.export.json``), so a conversion
problem shows up as a number, not in production. A float export must agree within 1e-3; a quantized one is
judged by its accuracy.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ..data.prepare import load_splits
from ..errors import ZooError
from ..models.augment import without_augmentation
from ..models.heads import probabilities
from ..util.files import dir_size, output_path, write_json, write_text
from ..util.names import labels_file
from ..util.progress import SILENT
from ..models.frozen import split_frozen
from ..plugins import get_zoo
from .evaluate import decode_run_split, load_run_model
from .inference import run_temperature
from .layout import EXPORT_DIR, is_leftover
from .record import read_run
from .rejection import load as load_novelty
from .serving import QUANTIZATIONS, calibration_images, tflite_bytes, write_saved_model

FORMATS = ("saved_model", "tflite")
PARITY_TOLERANCE = 1e-3  # max |p_export - p_keras| of a float export


def default_out(run_dir, fmt: str, model_name: str, quantize: str = "none") -> Path:
    """Where an export goes without ``--out``: TF Serving's model base path, or the TFLite file."""
    if fmt == "saved_model":
        return Path(run_dir) / EXPORT_DIR / "serving" / model_name
    return Path(run_dir) / EXPORT_DIR / ("model.tflite" if quantize == "none" else f"model-{quantize}.tflite")


def export(run_dir, fmt: str, out=None, *, overwrite: bool = False, check_split: str = "test",
           quantize: str = "none", version: int | None = None, progress=SILENT) -> dict:
    """Write the export (``out``: see :func:`default_out`) and measure it on ``check_split``; ``progress``:
    a :func:`catdog_zoo.util.progress.progress_factory` (the conversion's steps, then the check's images)."""
    if fmt not in FORMATS:
        raise ZooError(f"unknown export format '{fmt}' (known: {', '.join(FORMATS)})")
    if quantize not in QUANTIZATIONS or (quantize != "none" and fmt != "tflite"):
        raise ZooError(f"--quantize {quantize} applies to --format tflite only (one of {', '.join(QUANTIZATIONS)})")
    if version is not None and (fmt != "saved_model" or version < 1):
        raise ZooError("--version applies to --format saved_model only, and is a whole number from 1")
    config, record = read_run(run_dir)
    labels = labels_file(record.class_names, run_dir)  # labels.txt: one class name per line, or refused
    out = Path(out) if out else default_out(run_dir, fmt, config.model, quantize)
    if fmt == "saved_model":
        out = out / str(version or _next_version(out))
    _check_destination(out, Path(run_dir), config, overwrite)
    model = without_augmentation(load_run_model(run_dir))
    output_path(out, folder_ok=True)
    _remove_stale_staging(out.parent)
    steps = 1 if fmt == "saved_model" else 2
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp, \
            progress(f"exporting {fmt}" + (f" ({quantize})" if quantize != "none" else ""), steps, "steps") as bar:
        saved = Path(tmp) / "saved_model"
        write_saved_model(model, saved, record.class_names, config.image_size, run_temperature(record),
                          *_rejection(run_dir, record, model))
        bar.advance(1)
        if fmt == "saved_model":
            (saved / "labels.txt").write_text(labels, encoding="utf-8")
            staged = saved
        else:
            calibration = calibration_images(load_splits(config).train.paths, config.image_size) \
                if quantize == "int8" else None
            staged = Path(tmp) / "model.tflite"
            try:
                staged.write_bytes(tflite_bytes(saved, quantize, calibration))
            except Exception as exc:  # ConverterError's message is a whole MLIR dump; its first line says why
                raise ZooError(f"TFLite cannot convert the model of {run_dir}: {str(exc).splitlines()[0][:300]}; "
                               "--format saved_model exports any model") from None
            bar.advance(1)
        _replace(staged, out)
    if fmt == "tflite":
        write_text(out.parent / f"{out.name}.labels.txt", labels)
    checked = check_parity(model, out, fmt, config, check_split, progress=progress)
    if quantize != "none":
        checked["parity_ok"] = None  # meant to differ: judged by its accuracy, not by parity
    report = {"run": str(run_dir), "format": fmt, "quantize": quantize, "path": str(out),
              "size_bytes": dir_size(out) if out.is_dir() else out.stat().st_size,
              "input": f"float32 (batch, {config.image_size[0]}, {config.image_size[1]}, 3) in [0, 255]",
              "output": "probabilities, class_index, class_name" + (", ood_score, rejected" if record.rejection.get(
                  "available") else "") + " (signature serving_default); logits (serve)"
              if fmt == "saved_model" else "logits", "class_names": record.class_names, **checked}
    write_json(out.parent / f"{out.name}.export.json", report)
    return report


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


def _check_destination(out: Path, run_dir: Path, config, overwrite: bool) -> None:
    """Refuse an ``--out`` whose replacement could lose anything: one that holds the run or its data, and
    (even with ``--overwrite``) anything there that is not an export catdog-zoo wrote, as told by the
    ``NAME.export.json`` it writes beside every export."""
    target = out.resolve()
    protected = [run_dir.resolve()] + ([Path(config.data).resolve()] if config.data else [])
    for kept in protected:
        if target == kept or target in kept.parents:
            raise ZooError(f"--out {out} would replace {kept}, which the export reads; choose another --out")
    if not (out.exists() or out.is_symlink()):
        return
    if not overwrite:
        raise ZooError(f"{out} exists; pass --overwrite to replace it or choose another --out")
    ours = (out.parent / f"{out.name}.export.json").is_file() and not out.is_symlink() and (
        out.is_file() or (out / "saved_model.pb").is_file())
    if not ours:
        raise ZooError(f"{out} is not an export catdog-zoo wrote (no {out.name}.export.json beside it); "
                       "--overwrite replaces only those: choose another --out")


STALE_AFTER = 15 * 60  # seconds: an export's staging folder this old belongs to a process that was killed


def _remove_stale_staging(folder: Path) -> None:
    """Staging folders of exports that were killed (``.export-XXXXXXXX``, tens of MB each). Exports take no
    lock, so only old ones go: a live export's folder changes every few seconds."""
    for path in folder.glob(".export-*"):
        try:
            if is_leftover(path) and time.time() - path.stat().st_mtime > STALE_AFTER:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def _replace(staged: Path, out: Path) -> None:
    """Move ``staged`` to ``out``; an old export is removed only once the new one is complete."""
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        out.rename(old)
        staged.rename(out)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    else:
        staged.rename(out)


def runner(path: Path, fmt: str):
    """``images (N, H, W, 3) float32 -> logits`` for an exported file."""
    import tensorflow as tf

    if fmt == "saved_model":
        loaded = tf.saved_model.load(str(path))  # keep the object: its variables die with it
        return lambda x: loaded.serve(tf.constant(x)).numpy()
    try:
        from ai_edge_litert.interpreter import Interpreter  # TFLite's new home, when installed
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter "is deprecated": it is still the bundled one
        interpreter = Interpreter(model_path=str(path))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(x):
        interpreter.resize_tensor_input(source["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])
    return run


def check_parity(model, path: Path, fmt: str, config, split: str = "test", batch_size: int = 32,
                 progress=SILENT) -> dict:
    """The export beside the Keras model on ``split``: largest probability difference, how often they give
    the same label, and each one's accuracy."""
    splits, decoded = decode_run_split(config, split)
    if not len(decoded.split):
        split, decoded = "validation", decode_run_split(config, "validation", splits)[1]
    run = runner(path, fmt)
    labels = np.asarray(decoded.split.labels)
    worst, agree, right_keras, right_export = 0.0, 0, 0, 0
    with progress(f"checking the export on {split}", len(decoded.images)) as bar:
        for start in range(0, len(decoded.images), batch_size):
            x = decoded.images[start:start + batch_size].astype(np.float32)
            expected, got = probabilities(model.predict_on_batch(x)), probabilities(run(x))
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

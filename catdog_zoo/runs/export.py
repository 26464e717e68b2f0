"""A finished run's model for serving: a TensorFlow SavedModel or a float TFLite file, checked for parity.

Both formats take float32 images in [0, 255] of the run's image size (``(batch, H, W, 3)``) and
return the same logits as ``model.keras``. Random augmentation layers (identity at inference) are
left out of the export: traced, they would still carry random-number and image-transform ops
that TFLite does not have. After writing, the export is run on the run's test split and compared
with the Keras model: the largest difference in class probabilities is reported (and stored in
``export.json`` next to the export), so a conversion problem shows up as a number, not in production.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ..errors import ZooError
from ..models.augment import without_augmentation
from ..models.heads import probabilities
from ..util.files import output_path, write_json
from .evaluate import decode_run_split, load_run_model
from .layout import EXPORT_DIR, is_leftover
from .record import read_run

FORMATS = ("saved_model", "tflite")
DEFAULT_NAMES = {"saved_model": "saved_model", "tflite": "model.tflite"}
PARITY_TOLERANCE = 1e-3  # max |p_export - p_keras|


def export(run_dir, fmt: str, out=None, *, overwrite: bool = False, check_split: str = "test") -> dict:
    """Write the export to ``out`` (default ``RUN_DIR/export/...``) and measure its parity."""
    import tensorflow as tf

    if fmt not in FORMATS:
        raise ZooError(f"unknown export format '{fmt}' (known: {', '.join(FORMATS)})")
    config, record = read_run(run_dir)
    out = Path(out) if out else Path(run_dir) / EXPORT_DIR / DEFAULT_NAMES[fmt]
    _check_destination(out, Path(run_dir), config, overwrite)
    model = load_run_model(run_dir)
    output_path(out, folder_ok=True)
    _remove_stale_staging(out.parent)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp:
        saved = Path(tmp) / "saved_model"
        without_augmentation(model).export(str(saved), format="tf_saved_model", verbose=False)
        if fmt == "saved_model":
            staged = saved
        else:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))  # float32: no optimizations
            staged = Path(tmp) / "model.tflite"
            try:
                staged.write_bytes(converter.convert())
            except Exception as exc:  # ConverterError's message is a whole MLIR dump; its first line says why
                raise ZooError(f"TFLite cannot convert the model of {run_dir}: {str(exc).splitlines()[0][:300]}; "
                               "--format saved_model exports any model") from None
        _replace(staged, out)
    parity = check_parity(model, out, fmt, config, check_split)
    report = {"run": str(run_dir), "format": fmt, "path": str(out), "input": "float32 (batch, "
              f"{config.image_size[0]}, {config.image_size[1]}, 3) in [0, 255]", "output": "logits",
              "class_names": record.class_names, **parity}
    write_json(out.parent / f"{out.name}.export.json", report)
    return report


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


def check_parity(model, path: Path, fmt: str, config, split: str = "test", batch_size: int = 32) -> dict:
    """Largest probability difference between the export and the Keras model over ``split``."""
    splits, decoded = decode_run_split(config, split)
    if not len(decoded.split):
        split, decoded = "validation", decode_run_split(config, "validation", splits)[1]
    run = runner(path, fmt)
    worst, agree = 0.0, 0
    for start in range(0, len(decoded.images), batch_size):
        x = decoded.images[start:start + batch_size].astype(np.float32)
        expected = probabilities(model.predict_on_batch(x))
        got = probabilities(run(x))
        worst = max(worst, float(np.abs(got - expected).max()))
        agree += int((got.argmax(1) == expected.argmax(1)).sum())
    n = len(decoded.images)
    return {"parity_split": split, "parity_images": n, "max_probability_difference": worst,
            "same_label_fraction": agree / n if n else None, "parity_ok": worst < PARITY_TOLERANCE}


def describe(report: dict) -> str:
    verdict = "ok" if report["parity_ok"] else f"ABOVE the {PARITY_TOLERANCE:g} tolerance"
    return (f"Wrote {report['path']} ({report['format']}). Parity on {report['parity_images']} "
            f"{report['parity_split']} images: max |p_export - p_keras| = {report['max_probability_difference']:.2e} "
            f"({verdict}), same label for {report['same_label_fraction']:.1%}")

"""Using a finished run: evaluate it on a split, or predict labels for image files."""

from __future__ import annotations

from pathlib import Path

from . import rundir
from .errors import ZooError
from .splits import IMAGE_EXTENSIONS, find_images


def load_model(run_dir):
    """The run's ``model.keras``, loaded in Keras safe mode (no arbitrary code from the file)."""
    import keras

    path = Path(run_dir) / rundir.MODEL_FILE
    if not path.is_file():
        raise ZooError(f"no {rundir.MODEL_FILE} in {run_dir}")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise ZooError(f"refusing to load {path}: it contains code that would run on load "
                           "(Keras safe mode); only load models you trust") from None
        raise ZooError(f"{path} is not a loadable Keras model: {exc}") from None
    except Exception as exc:  # zip/h5 errors for files that are not models at all
        raise ZooError(f"{path} is not a loadable Keras model: {type(exc).__name__}: {exc}") from None


def decode_run_split(config: dict, split: str, splits=None) -> tuple:
    """``(splits, decoded)``: one split of a run's data, chosen with the run's own seed and fractions."""
    from .pipeline import decode_split
    from .training import load_splits

    splits = splits or load_splits(config)
    return splits, decode_split(splits.get(split), config["image_size"])


def evaluate(run_dir, data=None, split: str = "validation", batch_size=None) -> dict:
    """Accuracy and loss of a run's model on ``split``, with the run's own seed and fractions."""
    import sys

    from .pipeline import batches, describe_skipped
    from .training import compile_model, load_splits

    config, metrics = rundir.read_run(run_dir)
    if data is not None:
        config = {**config, "data": data}
    splits = load_splits(config)
    expected = metrics.get("class_names")
    if expected and list(splits.class_names) != list(expected):
        raise ZooError(f"classes in {splits.root} ({', '.join(splits.class_names)}) differ from the run's "
                       f"({', '.join(expected)})")
    model = compile_model(load_model(run_dir))
    decoded = decode_run_split(config, split, splits)[1]
    if decoded.skipped:
        print(f"Warning: {describe_skipped(decoded.skipped)}", file=sys.stderr)
    if not len(decoded.split):
        raise ZooError(f"the {split} split of {splits.root} has no usable images")
    result = model.evaluate(batches(decoded, batch_size or config["batch_size"]), verbose=0, return_dict=True)
    return {"run": str(run_dir), "split": split, "num_images": len(decoded.split),
            "accuracy": float(result["accuracy"]), "loss": float(result["loss"])}


def collect_images(paths) -> list:
    """Files as given, folders searched recursively for images; a missing path is an error."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(find_images(p))
        elif p.is_file():
            found.append(p)
        else:
            raise ZooError(f"no such file or folder: {p}")
    if not found:
        raise ZooError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found in {', '.join(map(str, paths))}")
    return found


def probabilities(logits):
    """Per-class probabilities from the model's logits (sigmoid for one logit, softmax otherwise)."""
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] == 1:
        p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        return np.stack([1.0 - p1, p1], axis=1)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def choose(probs, class_names, threshold=None) -> int:
    """The predicted class index: the most likely one, or for two classes with ``threshold``,
    the second class when its probability is at least ``threshold``."""
    if threshold is None:
        return int(probs.argmax())
    return 1 if probs[1] >= threshold else 0


def predict(run_dir, paths, batch_size: int = 32, strict: bool = False, threshold=None) -> list:
    """``[{"path", "label", "probability", "probabilities"}]`` per image: the predicted class, its
    probability, and every class's probability.

    ``threshold`` (two-class models only): predict the second class (``class_names[1]``, "dogs" for
    cats/dogs) when its probability is at least ``threshold``, instead of at 0.5.
    Files that are not usable images are skipped with a warning (an error with ``strict``).
    """
    import sys

    import numpy as np

    from .pipeline import ImageError, decode_file, describe_skipped

    config, metrics = rundir.read_run(run_dir)
    files = collect_images(paths)
    model = load_model(run_dir)
    size = tuple(config["image_size"])
    class_names = metrics["class_names"]
    if threshold is not None:
        if len(class_names) != 2:
            raise ZooError(f"--threshold applies to two-class models; {run_dir} has {len(class_names)} classes")
        if not 0 <= threshold <= 1:
            raise ZooError(f"--threshold must be between 0 and 1, got {threshold}")
    results, skipped = [], []
    for start in range(0, len(files), batch_size):
        chunk, images = [], []
        for f in files[start:start + batch_size]:
            try:
                images.append(decode_file(str(f), size))
                chunk.append(f)
            except ImageError as exc:
                skipped.append((str(f), str(exc)))
        if not chunk:
            continue
        probs = probabilities(model.predict_on_batch(np.stack(images).astype(np.float32)))
        for f, p in zip(chunk, probs):
            best = choose(p, class_names, threshold)
            results.append({"path": str(f), "label": class_names[best], "probability": round(float(p[best]), 6),
                            "probabilities": {c: round(float(v), 6) for c, v in zip(class_names, p)}})
    if skipped:
        message = describe_skipped(skipped)
        if strict or not results:
            raise ZooError(message if not strict else f"--strict: {message}")
        print(f"Warning: {message}", file=sys.stderr)
    return results


def write_predictions_csv(results: list, out) -> Path:
    """``path,label,probability`` plus one ``p_<class>`` column per class; written whole or not at all."""
    import csv
    import io

    classes = list(results[0]["probabilities"]) if results else []
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "label", "probability", *(f"p_{c}" for c in classes)])
    for r in results:
        writer.writerow([r["path"], r["label"], f"{r['probability']:.6f}",
                         *(f"{r['probabilities'][c]:.6f}" for c in classes)])
    out = rundir.output_path(out)
    rundir.write_text(out, buf.getvalue())
    return out

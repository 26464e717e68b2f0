"""``audit(data)``: one pass over a dataset's photos, every finding ranked, written as JSON and a page.

The photos are split exactly as ``train`` splits them (same seed and fractions), decoded and turned into the
pretrained backbone's features through the same caches as training: an audit after a run (or a run after an
audit) reuses its decoded images and its validation and test features.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import numpy as np

from ..config import KEYS, SPLITS
from ..data.decode import decode_split, describe_skipped
from ..data.sources import resolve_data
from ..data.splits import describe_left_out, make_splits
from ..errors import ConfigError
from ..models.duplicates import groups, near_duplicate_pairs
from ..models.extraction import decide
from ..models.features import FeatureStore
from ..models.frozen import split_frozen
from ..plugins import get_zoo
from ..util.confidence import small_split_text, too_small, widest_interval
from ..util.progress import SILENT
from ..util.rows import take
from . import label_issues, off_topic

MODEL = "mobilenet_v2"  # the default model's backbone: ImageNet MobileNetV2 at 224 px
METHODS = {
    "label_issues": "score = 1 - the probability of the folder's class, out of fold (5 folds, a softmax regression "
                    "and 10 nearest neighbours on the backbone's features); listed when another class is likelier",
    "duplicates": "similarity = mean of the backbone features' cosine and the grey thumbnails' correlation "
                  "(a mirror image counts); near-duplicate at 0.80",
    "off_topic": "score = 1 - the similarity to the class a photo is most like (its 3 nearest photos of that class); "
                 f"flagged more than {off_topic.FLAG_AT:g} robust standard deviations above the dataset's median",
}


def default(name: str):
    return KEYS[name].default


def audit(data=None, *, model: str = MODEL, seed: int | None = None, val_fraction: float | None = None,
          test_fraction: float | None = None, weights: str | None = None, engine: str = "auto",
          progress=SILENT, say=print) -> dict:
    """Every finding about the dataset ``data`` (a folder of class folders, or a data source name)."""
    started = time.perf_counter()
    seed = default("seed") if seed is None else seed
    root = resolve_data(data)
    splits = make_splits(root, seed=seed, val_fraction=val_fraction or default("val_fraction"),
                         test_fraction=default("test_fraction") if test_fraction is None else test_fraction)
    spec = get_zoo().model(model)
    if not (spec.frozen_backbone and spec.pretrained):
        raise ConfigError(f"audit needs a model with a pretrained backbone; '{model}' has none")
    size = tuple(spec.defaults.image_size)
    names = [name for name in SPLITS if len(splits.get(name))]
    decoded = {name: decode_split(splits.get(name), size, progress, f"decoding {name}") for name in names}
    skipped = [item for name in names for item in decoded[name].skipped]
    if skipped:
        say(f"Warning: {describe_skipped(skipped)}")
    if splits.left_out:
        say(f"Warning: {describe_left_out(splits.left_out)}")
    net = spec.build(len(splits.class_names), size, **({"weights": weights} if weights else {}))
    chain = split_frozen(net, spec.frozen_backbone)
    store = FeatureStore(chain, spec.qualified_name, size, seed, progress, decide(engine), say=say)
    features = {name: store.plain(decoded[name].images, decoded[name].digest, f"features of {name}") for name in names}
    whole = _Whole(root, names, decoded, features)
    result = findings(whole, splits.class_names, seed)
    counts = {name: splits.get(name).counts(splits.class_names) for name in SPLITS}
    usable = {name: {c: n for c, n in decoded[name].split.counts(splits.class_names).items()}
              if name in decoded else counts[name] for name in SPLITS}
    return {"data": str(root), "layout": splits.layout, "class_names": list(splits.class_names),
            "num_images": len(whole.paths), "seed": seed, "split_counts": usable,
            **result, "notes": notes(usable, splits.class_names),
            "skipped": [{"path": _relative(root, p), "reason": r} for p, r in skipped],
            "features": {"model": spec.name, "engine": store.report.engine or "cached", "image_size": list(size),
                         "computed": store.report.misses, "from_cache": store.report.hits},
            "method": METHODS, "seconds": round(time.perf_counter() - started, 2), "_whole": whole}


class _Whole:
    """Every usable photo of the dataset in one numbering: its path, split, label, features and pixels."""

    def __init__(self, root, names, decoded, features):
        self.root, self.decoded = Path(root), decoded
        self.paths, self.splits, self.labels = [], [], []
        for name in names:
            split = decoded[name].split
            self.paths += [_relative(root, p) for p in split.paths]
            self.splits += [name] * len(split)
            self.labels += list(split.labels)
        self.features = np.concatenate([np.asarray(features[name][:], np.float32) for name in names])
        self._views = [decoded[name].images for name in names]
        self._which = np.concatenate([np.full(len(decoded[name].split), v) for v, name in enumerate(names)])
        self._index = np.concatenate([np.arange(len(decoded[name].split)) for name in names])

    def pixels(self, indices) -> np.ndarray:
        """The decoded photos numbered ``indices``, each split's rows gathered in one read."""
        indices = np.asarray(indices, np.int64)
        return take(self._views, self._which[indices], self._index[indices])

    def thumbnail(self, path: str, size: int = 128):
        """A JPEG data URI of the photo at ``path`` (as listed), from its decoded pixels."""
        import tensorflow as tf

        try:
            k = self.paths.index(path)
        except ValueError:
            return None
        small = tf.image.resize(self.pixels([k]).astype(np.float32), (size, size), method="area")
        data = tf.io.encode_jpeg(tf.cast(tf.round(small[0]), tf.uint8), quality=80).numpy()
        return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def findings(whole: _Whole, class_names, seed: int) -> dict:
    """``label_issues``, ``duplicates`` and ``off_topic``, each most suspicious first."""
    labels, n = np.asarray(whole.labels, int), len(whole.paths)
    strange = off_topic.scores(whole.features, labels, len(class_names))
    z = off_topic.robust_z(strange)
    flagged = np.flatnonzero(z > off_topic.FLAG_AT)
    listed = [int(i) for i in np.argsort(-strange, kind="stable") if z[i] > off_topic.LIST_FROM]
    probs = label_issues.out_of_fold(whole.features, labels, len(class_names), seed)
    issues = label_issues.rank(probs, labels, demoted=flagged)
    pairs = near_duplicate_pairs(whole.features, whole.pixels)
    dupes = []
    for members, similarity in groups(pairs, n):
        spans = sorted({whole.splits[i] for i in members}, key=SPLITS.index)
        dupes.append({"paths": [whole.paths[i] for i in members], "splits": spans, "similarity": similarity,
                      "across_splits": len(spans) > 1})
    dupes.sort(key=lambda d: (not d["across_splits"], -d["similarity"]))
    return {
        "label_issues": [{"path": whole.paths[i], "split": whole.splits[i], "given": class_names[labels[i]],
                          "suggested": class_names[c], "score": score} for i, c, score in issues],
        "duplicates": dupes,
        "off_topic": [{"path": whole.paths[i], "split": whole.splits[i], "score": round(float(strange[i]), 4),
                       "flagged": bool(z[i] > off_topic.FLAG_AT)} for i in listed],
    }


def notes(counts: dict, class_names) -> list:
    """Class imbalance and splits too small to trust, in words."""
    out = []
    totals = {c: sum(counts[s].get(c, 0) for s in counts) for c in class_names}
    most, least = max(totals, key=totals.get), min(totals, key=totals.get)
    if totals[least] == 0 or totals[most] >= 1.5 * totals[least]:
        ratio = "all" if totals[least] == 0 else f"{totals[most] / totals[least]:.1f}x"
        out.append(f"Classes are imbalanced: '{most}' has {ratio} the images of '{least}' ({totals[most]} against "
                   f"{totals[least]}); accuracy flatters a model that favours '{most}': read per-class recall.")
    for split in SPLITS:
        n = sum(counts[split].values())
        if n == 0:
            out.append(f"The {split} split is empty.")
            continue
        if too_small(n) and split != "train":
            text = small_split_text(split, n)
            flag = "--val-fraction" if split == "validation" else "--test-fraction"
            out.append(f"{text[0].upper()}{text[1:]}: add images or use a larger {flag}.")
        else:
            weight = 100 / n
            out.append(f"The {split} split has {n} images: one image is {weight:.2g} point{'s' if weight != 1 else ''} "
                       f"of accuracy, and a 95% interval is up to {widest_interval(n):.0f} points wide.")
    return out


def _relative(root, path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def write_audit(result: dict, out) -> Path:
    """``audit.json`` and ``audit.html`` into the folder ``out`` (each written whole); the page's path."""
    from ..reports.audit_page import AUDIT_JSON, AUDIT_PAGE, render_audit_page
    from ..util.files import output_path, write_json, write_text

    out = Path(out)
    output_path(out / AUDIT_JSON)  # the folder, made if missing (or one error line)
    whole = result["_whole"]
    write_json(out / AUDIT_JSON, public(result))
    write_text(out / AUDIT_PAGE, render_audit_page(public(result), whole.thumbnail))
    return out / AUDIT_PAGE


def public(result: dict) -> dict:
    """The result without its in-memory working parts (what ``--json`` prints and audit.json holds)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}

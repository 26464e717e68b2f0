#!/usr/bin/env python
"""How the default model's "unknown" answers hold: photos of neither class, other breeds, other conditions.

    KERAS_HOME=<seeded cache> python bench/rejection.py [--run RUN_DIR] [--seed 42] [--out bench-runs/rejection]

Trains the default ``mobilenet_v2`` on cats_and_dogs_filtered (unless ``--run`` names a finished run), then,
with the operating point the run set from its own validation photos, reports for each folder the share of
photos accepted and the accuracy on the accepted ones, with and without rejection:

- the run's validation and test splits (cats and dogs like the training photos);
- ``other_things`` (200 photos of neither cats nor dogs: should be rejected);
- ``other_pets`` (123 cats and dogs of many breeds, from another source: should be accepted);
- the test split photographed differently: grayscale, low light (x0.25 and noise), a tight centre crop (60%),
  rotated 90 degrees, blurred, and a small copy in a corner of a white page.

None of these folders is used to set the operating point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def variants(paths, out: Path) -> dict:
    """Folders of the test photos changed in one way each: ``{name: folder}`` with cats/ and dogs/ inside."""
    from PIL import Image, ImageFilter, ImageOps

    rng = np.random.default_rng(0)

    def dark(im):
        x = np.asarray(im, np.float32) * 0.25 + rng.normal(0, 6, (im.height, im.width, 3))
        return Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))

    def crop(im):
        w, h = im.size
        return im.crop((int(w * 0.2), int(h * 0.2), int(w * 0.8), int(h * 0.8)))

    def corner(im):
        page = Image.new("RGB", (im.width * 2, im.height * 2), "white")
        page.paste(im, (0, 0))
        return page
    changes = {"grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"), "low_light": dark, "crop_60": crop,
               "rotated_90": lambda im: im.rotate(90, expand=True), "blurred": lambda im: im.filter(
                   ImageFilter.GaussianBlur(4)), "small_on_page": corner}
    folders = {}
    for name, change in changes.items():
        for path in paths:
            target = out / name / Path(path).parent.name / Path(path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as im:
                change(im.convert("RGB")).save(target, "JPEG", quality=90)
        folders[name] = out / name
    return folders


def summarise(results, truth=None) -> dict:
    rejected = np.array([r["rejected"] for r in results])
    row = {"images": len(results), "accepted": float(1 - rejected.mean())}
    if truth is not None:
        predicted = [max(r["probabilities"], key=r["probabilities"].get) for r in results]
        right = np.array([p == truth(r["path"]) for p, r in zip(predicted, results)])
        row["accuracy_all"] = float(right.mean())
        row["accuracy_accepted"] = float(right[~rejected].mean()) if (~rejected).any() else None
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("bench-runs/rejection"))
    args = parser.parse_args()

    import catdog_zoo
    from catdog_zoo.runs.evaluate import evaluate
    from catdog_zoo.runs.predict import predict
    from catdog_zoo.runs.record import read_run

    args.out.mkdir(parents=True, exist_ok=True)
    run = args.run
    if run is None:
        run = args.out / f"mobilenet_v2-seed{args.seed}"
        if not (run / "metrics.json").is_file():
            catdog_zoo.train("mobilenet_v2", seed=args.seed, run_dir=str(run), overwrite=True, quiet=True)
    config, record = read_run(run)
    print(f"run {run}: operating point {json.dumps(record.rejection)}")
    rows = {}
    for split in ("validation", "test"):
        r = evaluate(run, split=split)
        rows[split] = {"images": r["num_images"], "accepted": 1 - r["rejection"]["rejected_fraction"],
                       "accuracy_all": r["accuracy"], "accuracy_accepted": r["rejection"]["accepted_accuracy"]}
    def by_folder(path):
        return Path(path).parent.name
    say = lambda text: None  # noqa: E731
    rows["other_things"] = summarise(predict(run, [SHARED / "other_things"], say=say))
    rows["other_pets"] = summarise(predict(run, [SHARED / "other_pets"], say=say), by_folder)
    from catdog_zoo.data.prepare import load_splits
    test = load_splits(config).test
    for name, folder in variants(list(test.paths), args.out / "variants").items():
        rows[f"test, {name}"] = summarise(predict(run, [folder], say=say), by_folder)
    print(f"\n| photos | images | accepted | accuracy, all | accuracy, accepted |\n| --- | ---: | ---: | ---: | ---: |")
    for name, row in rows.items():
        def pct(v):
            return "-" if v is None else f"{v:.2%}"
        print(f"| {name} | {row['images']} | {pct(row['accepted'])} | {pct(row.get('accuracy_all'))} | "
              f"{pct(row.get('accuracy_accepted'))} |")
    (args.out / "rejection.json").write_text(json.dumps({"run": str(run), "rejection": record.rejection,
                                                         "rows": rows}, indent=1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

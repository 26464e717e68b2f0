#!/usr/bin/env python
"""Plant known defects in a copy of cats_and_dogs_filtered, for measuring ``catdog-zoo audit``.

    python bench/plant_defects.py OUT [--data ../shared/data/cats_and_dogs_filtered]
        [--things ../shared/data/other_things] [--seed 0]

Every file is copied under a neutral name first (``img-00042.jpg``: no class or identity in the name), then:

- 20 training cats are moved into ``train/dogs`` and 20 training dogs into ``train/cats`` (label errors);
- 15 photos get a near-duplicate copy (re-encoded at another JPEG quality, resized, slightly cropped) in the
  other split (a training photo's copy in validation or the other way round): leakage across splits;
- 10 photos from ``other_things`` (neither cats nor dogs) go into the class folders (off-topic).

The truth is written to ``OUT/planted.json`` (outside the class folders, so ``--data OUT`` never reads it):
``flips`` (path, true class, planted class), ``duplicates`` (the two paths of each planted pair),
``off_topic`` (paths), and ``renamed`` (original path of every file). Nothing under ``--data`` is changed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def near_copy(source: Path, target: Path, rng: random.Random) -> dict:
    """A re-encoded, resized, slightly cropped copy of ``source``; what was done, for the record."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("RGB")
        w, h = image.size
        crop = rng.uniform(0.03, 0.08)  # of each side at most
        box = (int(w * rng.uniform(0, crop)), int(h * rng.uniform(0, crop)),
               w - int(w * rng.uniform(0, crop)), h - int(h * rng.uniform(0, crop)))
        scale = rng.uniform(0.6, 0.9)
        image = image.crop(box)
        image = image.resize((max(16, int(image.width * scale)), max(16, int(image.height * scale))))
        quality = rng.randint(50, 85)
        image.save(target, "JPEG", quality=quality)
    return {"crop_box": box, "scale": round(scale, 3), "quality": quality}


def plant(data: Path, things: Path, out: Path, seed: int) -> dict:
    rng = random.Random(seed)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty")
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    order = list(range(len(files)))
    rng.shuffle(order)  # neutral names carry no trace of the original order or name
    renamed, where = {}, {}
    for number, i in zip(range(len(files)), order):
        source = files[i]
        split, cls = source.relative_to(data).parts[:2]
        target = out / split / cls / f"img-{number:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        renamed[str(target.relative_to(out))] = str(source.relative_to(data))
        where[str(source.relative_to(data))] = target
    truth = {"flips": [], "duplicates": [], "off_topic": [], "renamed": renamed}

    def in_folder(split, cls):
        return sorted(p for p in (out / split / cls).iterdir())

    chosen = {true_class: rng.sample(in_folder("train", true_class), 20) for true_class in ("cats", "dogs")}
    for true_class, planted_class in (("cats", "dogs"), ("dogs", "cats")):
        for path in chosen[true_class]:  # chosen before any move: a planted file is never moved back
            target = out / "train" / planted_class / path.name
            path.rename(target)
            truth["flips"].append({"path": str(target.relative_to(out)), "true": true_class,
                                   "planted": planted_class})
    flipped = {f["path"] for f in truth["flips"]}
    number = len(files)
    for k in range(15):
        split, other = ("train", "validation") if k % 2 == 0 else ("validation", "train")
        cls = "cats" if k % 4 < 2 else "dogs"
        candidates = [p for p in in_folder(split, cls) if str(p.relative_to(out)) not in flipped
                      and not any(str(p.relative_to(out)) in d["paths"] for d in truth["duplicates"])]
        source = rng.choice(candidates)
        target = out / other / cls / f"img-{number:05d}.jpg"
        number += 1
        how = near_copy(source, target, rng)
        truth["duplicates"].append({"paths": [str(source.relative_to(out)), str(target.relative_to(out))], **how})
    strangers = sorted(p for p in things.iterdir() if p.is_file())
    for k, source in enumerate(rng.sample(strangers, 10)):
        split = "train" if k < 6 else "validation"
        cls = "cats" if k % 2 == 0 else "dogs"
        target = out / split / cls / f"img-{number:05d}.jpg"
        number += 1
        shutil.copyfile(source, target)
        truth["off_topic"].append({"path": str(target.relative_to(out)), "source": source.name})
    known = [where.get("train/dogs/dog.180.jpg"), where.get("train/dogs/dog.74.jpg")]
    truth["known_duplicates"] = [[str(p.relative_to(out)) for p in known if p is not None]]
    (out / "planted.json").write_text(json.dumps(truth, indent=1))
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=SHARED / "cats_and_dogs_filtered")
    parser.add_argument("--things", type=Path, default=SHARED / "other_things")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    truth = plant(args.data, args.things, args.out, args.seed)
    print(f"Planted in {args.out}: {len(truth['flips'])} label flips, {len(truth['duplicates'])} near-duplicate "
          f"copies across splits, {len(truth['off_topic'])} off-topic photos (truth: {args.out / 'planted.json'})")


if __name__ == "__main__":
    main()

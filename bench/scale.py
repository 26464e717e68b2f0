#!/usr/bin/env python
"""How cost grows with the number of images: wall time, images/s and peak RSS at several dataset sizes.

    python bench/scale.py [--sizes 3000,12000,48000] [--epochs 5] [--out bench-runs/scale]
                          [--commands "data check,train,predict"] [--workers-at 3000]

Makes, once, N distinct JPEGs from ../shared's cats_and_dogs_filtered (every original re-encoded as
N/3000 slightly different crops; each crop stays in its original's split and class; smaller sizes are
hard links to the first crops of the largest), then for each N, each command in a fresh process with
its own empty zoo cache (so every number is a cold one):

  data check    catdog-zoo data check --data DATA
  train         catdog-zoo train mobilenet_v2 --data DATA --epochs E (decoding, features, head epochs)
  predict       catdog-zoo predict RUN DATA --out predictions.csv (the trained run, every image)

and prints a table of wall seconds, images/s and peak RSS, with each size's ratio to the smallest: with
memory bounded by the batch and the model, peak RSS stays flat and images/s stays constant as N grows.
``--workers-at N`` also extracts features of N images with one process and with two local workers
(``--strategy multi_worker``, bench/local_workers.py) and compares their counts, times and results.
Offline, set KERAS_HOME to a seeded cache first (../shared/README.md).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from transfer import measure  # noqa: E402  (same process accounting as the transfer benchmark)

SOURCE = HERE.parent.parent / "shared" / "data" / "cats_and_dogs_filtered"


def _crop_one(job):
    """Re-encode ``src`` as ``dst``: a crop of 0-8 % off each side, chosen by (original, variant)."""
    from PIL import Image
    src, dst, seed = job
    if Path(dst).exists():
        return
    rng = np.random.default_rng(seed)
    with Image.open(src) as im:
        im = im.convert("RGB")
        w, h = im.size
        left, top, right, bottom = (rng.uniform(0, 0.08, 4) * [w, h, w, h]).astype(int)
        im = im.crop((left, top, w - right, h - bottom))
        tmp = f"{dst}.part"
        im.save(tmp, "JPEG", quality=int(rng.integers(85, 96)))
    os.replace(tmp, dst)


def make_dataset(pool_root: Path, largest: int) -> list:
    """``largest`` crops under ``pool_root`` (made once), as a list ordered so any prefix of 3000*k is balanced."""
    originals = sorted(SOURCE.glob("*/*/*.jpg"))
    if not originals:
        raise SystemExit(f"no images under {SOURCE}")
    variants = -(-largest // len(originals))
    jobs, ordered = [], []
    for v in range(variants):
        for j, src in enumerate(originals):
            rel = src.relative_to(SOURCE)
            dst = pool_root / rel.parent / f"{src.stem}_v{v:02d}.jpg"
            jobs.append((str(src), str(dst), [j, v]))
            ordered.append(dst)
    for folder in {Path(d).parent for _, d, _ in jobs}:
        folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(_crop_one, jobs, chunksize=64))
    print(f"images: {len(jobs)} under {pool_root} ({time.perf_counter() - started:.0f} s to make the missing ones)",
          flush=True)
    return ordered[:largest]


def subset(pool_root: Path, ordered: list, n: int, root: Path) -> Path:
    """A folder of the first ``n`` images, as hard links (no extra disk)."""
    if not root.exists():
        tmp = Path(tempfile.mkdtemp(prefix=".subset-", dir=root.parent))
        for src in ordered[:n]:
            dst = tmp / src.relative_to(pool_root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
        tmp.rename(root)
    return root


def zoo(*args) -> list:
    return [str(Path(sys.executable).with_name("catdog-zoo")), *map(str, args)]


def run_size(n: int, data: Path, out: Path, args, log) -> dict:
    rows = {}
    commands = {
        "data check": zoo("data", "check", "--data", data),
        "train": zoo("train", "mobilenet_v2", "--data", data, "--epochs", args.epochs, "--run-dir", out / f"run-{n}",
                     "--overwrite", "-q"),
        "predict": zoo("predict", out / f"run-{n}", data, "--out", out / f"predictions-{n}.csv"),
    }
    for name, cmd in commands.items():
        if name not in args.commands:
            continue
        cache_dir = out / f"cache-{n}-{name.replace(' ', '-')}"
        shutil.rmtree(cache_dir, ignore_errors=True)
        log.write(f"\n$ CATDOG_ZOO_CACHE={cache_dir} {' '.join(cmd)}\n")
        try:
            result = measure(cmd, log, {"CATDOG_ZOO_CACHE": str(cache_dir)}, ok_codes=(0, 1) if name == "data check"
                             else (0,))
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)  # 7 GB of decoded pixels at 48,000 images and 224 px
        result["images_per_second"] = n / result["wall_seconds"]
        if name == "train":
            metrics = json.loads((out / f"run-{n}" / "metrics.json").read_text())
            result.update(timings=metrics.get("timings"), val_accuracy=metrics["val_accuracy"],
                          test_accuracy=metrics.get("test_accuracy"))
        rows[name] = result
        print(f"N={n:>6} {name:<11} {result['wall_seconds']:8.1f} s {result['images_per_second']:8.1f} img/s "
              f"{result['peak_rss_mb']:8.0f} MB", flush=True)
    return rows


def table(results: dict) -> str:
    sizes = sorted(results, key=int)
    base = results[sizes[0]]
    lines = [f"{'N':>7} {'command':<11} {'wall_s':>8} {'img/s':>8} {'peak_MB':>8} {'img/s vs N0':>11} {'RSS vs N0':>9}"]
    for n in sizes:
        for name, r in results[n].items():
            b = base[name]
            lines.append(f"{n:>7} {name:<11} {r['wall_seconds']:8.1f} {r['images_per_second']:8.1f} "
                         f"{r['peak_rss_mb']:8.0f} {r['images_per_second'] / b['images_per_second']:10.2f}x "
                         f"{r['peak_rss_mb'] / b['peak_rss_mb']:8.2f}x")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,12000,48000")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench-runs/scale"))
    parser.add_argument("--images", type=Path, default=None, help="where the generated images live "
                        "(default: OUT/images; reused between invocations)")
    parser.add_argument("--commands", default="data check,train,predict",
                        help="which to measure (predict needs the run a train of the same N made)")
    parser.add_argument("--workers-at", type=int, default=0, help="also compare one process with two local "
                        "workers extracting the features of this many images")
    args = parser.parse_args()
    args.commands = [c.strip() for c in args.commands.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    pool_root = args.images or args.out / "images"
    ordered = make_dataset(pool_root, max(sizes))
    saved = args.out / "results.json"
    results = {int(k): v for k, v in json.loads(saved.read_text()).items()} if saved.is_file() else {}
    with open(args.out / "scale.log", "a") as log:
        for n in sizes:
            data = subset(pool_root, ordered, n, args.out / f"data-{n}")
            results[n] = {**results.get(n, {}), **run_size(n, data, args.out, args, log)}
            saved.write_text(json.dumps(results, indent=1, default=str))
        if args.workers_at:
            data = subset(pool_root, ordered, args.workers_at, args.out / f"data-{args.workers_at}")
            workers = compare_workers(args.workers_at, data, args.out, args, log)
            (args.out / "workers.json").write_text(json.dumps(workers, indent=1))
    print("\n" + table({n: results[n] for n in sizes}))
    return 0


def compare_workers(n: int, data: Path, out: Path, args, log) -> dict:
    """Features of ``n`` images extracted by one process, then by two local workers (each its share), from
    empty caches: wall seconds, what each worker says it extracted, and whether the features are the same."""
    rows = {}
    for name, launcher in (("one process", []), ("two workers", [sys.executable, str(HERE / "local_workers.py"),
                                                                  "--workers", "2", "--"])):
        cache_dir = out / f"cache-workers-{name.replace(' ', '-')}"
        shutil.rmtree(cache_dir, ignore_errors=True)
        run_dir = out / f"workers-run-{name.replace(' ', '-')}"
        train_args = ["mobilenet_v2", "--data", data, "--epochs", args.epochs, "--run-dir", run_dir, "--overwrite"]
        cmd = [*launcher, *train_args] if launcher else zoo("train", *train_args)
        log.write(f"\n$ CATDOG_ZOO_CACHE={cache_dir} {' '.join(map(str, cmd))}\n")
        result = measure(list(map(str, cmd)), log, {"CATDOG_ZOO_CACHE": str(cache_dir)})
        metrics = json.loads((run_dir / "metrics.json").read_text())
        log_text = (out / "scale.log").read_text()
        shares = [line.strip() for line in log_text.splitlines()[-400:] if ": extracted " in line]
        rows[name] = {"wall_seconds": result["wall_seconds"], "features_s": metrics["timings"]["features_s"],
                      "images_extracted_by_chief": metrics["feature_cache"]["images_extracted"],
                      "val_accuracy": metrics["val_accuracy"], "test_accuracy": metrics.get("test_accuracy"),
                      "shares": shares if launcher else []}
        rows[name]["features"] = {p.name: __import__("hashlib").sha256(p.read_bytes()).hexdigest()[:16]
                                  for p in sorted(cache_dir.glob("features-*.entry")) if "-share" not in p.name}
        print(f"{name}: {result['wall_seconds']:.1f} s wall, features {rows[name]['features_s']} s, chief extracted "
              f"{rows[name]['images_extracted_by_chief']} images", flush=True)
    one, two = rows["one process"]["features"], rows["two workers"]["features"]
    rows["same_features"] = one == two and bool(one)
    print(f"features identical: {rows['same_features']}", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())

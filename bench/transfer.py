#!/usr/bin/env python
"""Transfer learning, measured: the plain-Keras reference recipe against catdog-zoo, in one invocation.

    python bench/transfer.py [--epochs 20] [--fine-tune-epochs 10] [--sweep 0,1,2,4] [--bf16]
                             [--also-size 224] [--out DIR]

Runs, each in a fresh process on this machine, one after another:
  raw  MobileNetV2 forward pass over the 3000 images (bench/forward_throughput.py), float32 [and bfloat16]
  (a)  the reference recipe in plain Keras (bench/reference_recipe.py)
  (b)  catdog-zoo train mobilenet_v2 --epochs N, from a cold process and an empty zoo cache
  (b2) the same again with the cache warm
  (c)  catdog-zoo train mobilenet_v2 --epochs N --fine-tune-epochs M (cache warm from (b))
  sweep: --aug-views K for each K (shared cache, so later K reuse earlier views; accuracy is the point)
  --also-size S: raw forward pass, (b) and (c) again at --image-size S (its features start cold)
and prints wall seconds, validation/test accuracy, peak RSS, the speed-up (a)/(b), feature
extraction throughput as a fraction of the raw forward pass at the same size, and each target of
issue 3 against what was measured. Offline, set KERAS_HOME to a seeded cache first
(../shared/README.md), whose weights are the 224x224 ImageNet checkpoint (docs/performance.md).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(cmd, log, env=None) -> dict:
    """Run ``cmd``; wall seconds, peak RSS (MB) of that process, and its output."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    lines = []
    for line in proc.stdout:
        lines.append(line)
        log.write(line)
        log.flush()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}; see the log")
    result = {"wall_seconds": time.perf_counter() - started, "peak_rss_mb": usage.ru_maxrss / 1024}
    for line in lines:
        if line.startswith("RESULT "):
            result.update(json.loads(line[len("RESULT "):]))
    return result


def zoo_run(name, args, out, log, cache_dir) -> dict:
    run_dir = out / name
    cmd = [str(Path(sys.executable).with_name("catdog-zoo")), "train", "mobilenet_v2", "--run-dir", str(run_dir),
           *map(str, args)]
    log.write(f"\n$ CATDOG_ZOO_CACHE={cache_dir} {' '.join(cmd)}\n")
    result = measure(cmd, log, {"CATDOG_ZOO_CACHE": str(cache_dir)})
    m = json.loads((run_dir / "metrics.json").read_text())
    result.update(val_accuracy=m["val_accuracy"], test_accuracy=m["test_accuracy"], feature_cache=m["feature_cache"],
                  stages=m["stages"], train_seconds=m["train_seconds"], image_size=m["image_size"][0])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--fine-tune-epochs", type=int, default=10)
    parser.add_argument("--sweep", default="", help="comma-separated --aug-views values, e.g. 0,1,2,4")
    parser.add_argument("--bf16", action="store_true", help="also time the forward pass in bfloat16")
    parser.add_argument("--also-size", type=int, action="append", default=[], metavar="S",
                        help="also run raw, (b) and (c) at S x S pixels (repeatable), e.g. 224")
    parser.add_argument("--out", default=None, help="run directories and log (default: a new temp folder)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="catdog-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = out / "zoo-cache"
    results = {}
    with open(out / "bench.log", "w") as log:
        print(f"log: {out / 'bench.log'}", flush=True)
        # The raw forward pass decodes through its own cache so (b) still starts cold.
        raw_env = {"CATDOG_ZOO_CACHE": str(out / "raw-cache")}
        py = sys.executable
        results["raw_float32"] = measure([py, str(HERE / "forward_throughput.py"), "float32"], log, raw_env)
        if args.bf16:
            results["raw_bfloat16"] = measure([py, str(HERE / "forward_throughput.py"), "bfloat16"], log, raw_env)
        print("raw forward done", flush=True)
        results["a_reference"] = measure([py, str(HERE / "reference_recipe.py"), str(args.epochs)], log)
        print("(a) done", flush=True)
        results["b_zoo_cold"] = zoo_run("b_cold", ["--epochs", args.epochs], out, log, cache_dir)
        results["b2_zoo_warm"] = zoo_run("b2_warm", ["--epochs", args.epochs], out, log, cache_dir)
        print("(b) done", flush=True)
        if args.fine_tune_epochs:
            results["c_fine_tune"] = zoo_run("c_fine_tune", ["--epochs", args.epochs, "--fine-tune-epochs",
                                                              args.fine_tune_epochs], out, log, cache_dir)
        for size in args.also_size:
            results[f"raw_float32@{size}"] = measure([py, str(HERE / "forward_throughput.py"), "float32", "64",
                                                      str(size)], log, raw_env)
            sized = ["--epochs", args.epochs, "--image-size", size]
            results[f"b_zoo_cold@{size}"] = zoo_run(f"b_cold@{size}", sized, out, log, cache_dir)
            if args.fine_tune_epochs:
                results[f"c_fine_tune@{size}"] = zoo_run(f"c_fine_tune@{size}",
                                                         sized + ["--fine-tune-epochs", args.fine_tune_epochs],
                                                         out, log, cache_dir)
            print(f"size {size} done", flush=True)
        for k in [int(v) for v in args.sweep.split(",") if v.strip()]:
            results[f"sweep_aug_views_{k}"] = zoo_run(f"sweep_{k}", ["--epochs", args.epochs, "--aug-views", k],
                                                      out, log, cache_dir)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    report(results)
    return 0


def raw_speed(r: dict, size: int) -> float:
    """float32 raw forward images/s at ``size`` (the 160 run is stored without a suffix)."""
    return r["raw_float32" if size == 160 else f"raw_float32@{size}"]["images_per_second"]


def row_label(key: str) -> str:
    base, _, size = key.partition("@")
    label = {"a_reference": "(a) plain Keras recipe", "b_zoo_cold": "(b) zoo, cold cache",
             "b2_zoo_warm": "(b2) zoo, warm cache", "c_fine_tune": "(c) zoo + fine-tune"}.get(base)
    if label is None:  # sweep_aug_views_K
        label = f"sweep {base.rsplit('_', 1)[-1]} aug views"
    return f"{label} @{size}" if size else label


def notes(key: str, x: dict, r: dict) -> str:
    if key == "a_reference":
        lo, hi = x["val_accuracy_range"]
        return f"val wandered {lo:.2%}..{hi:.2%}; test = take/skip fifth of validation"
    text = ""
    fc = x.get("feature_cache", {})
    if fc.get("images_per_second"):
        raw = raw_speed(r, x["image_size"])
        text = (f"features {fc['images_extracted']} images at {fc['images_per_second']:.0f}/s "
                f"= {fc['images_per_second'] / raw:.0%} of raw")
        if fc.get("overall_images_per_second"):
            text += (f" ({fc['overall_images_per_second']:.0f}/s = {fc['overall_images_per_second'] / raw:.0%}"
                     f" with {fc['setup_seconds']:.1f}s of tracing and warm-up)")
    elif fc:
        text = "features all from cache"
    if "fine_tune" in x.get("stages", {}):
        text += f"; fine-tune {x['stages']['fine_tune']['seconds']:.0f}s"
    return text


def targets(r: dict) -> list:
    """(what issue 3 asks, what was measured, met?) for (b)/(c) at 160 and at every --also-size."""
    a = r["a_reference"]
    rows = []
    for tag in [""] + sorted({"@" + k.partition("@")[2] for k in r if "@" in k}):  # "" is 160 px, "@224" ...
        at = f" {tag}" if tag else ""
        b, c = r.get("b_zoo_cold" + tag), r.get("c_fine_tune" + tag)
        if b:
            speedup = a["wall_seconds"] / b["wall_seconds"]
            rows += [(f"(b){at} >= 10x faster than (a)", f"{speedup:.1f}x", speedup >= 10),
                     (f"(b){at} val >= (a) val - 0.5 pts", f"{100 * (b['val_accuracy'] - a['val_accuracy']):+.2f} pts",
                      b["val_accuracy"] >= a["val_accuracy"] - 0.005),
                     (f"(b){at} val >= 97.5%", f"{b['val_accuracy']:.2%}", b["val_accuracy"] >= 0.975)]
            fc = b["feature_cache"]
            if fc.get("overall_images_per_second"):
                share = fc["overall_images_per_second"] / raw_speed(r, b["image_size"])
                rows.append((f"(b){at} extraction >= 85% of raw", f"{share:.0%} incl. set-up", share >= 0.85))
        if c:
            rows += [(f"(c){at} val >= 98.5%", f"{c['val_accuracy']:.2%}", c["val_accuracy"] >= 0.985),
                     (f"(c){at} test >= 98.5%", f"{c['test_accuracy']:.2%}", c["test_accuracy"] >= 0.985)]
    peak = max(x["peak_rss_mb"] for k, x in r.items() if not k.startswith(("raw", "a_")))
    rows.append(("zoo peak RSS <= 4 GB", f"{peak:.0f} MB", peak <= 4096))
    return rows


def report(r: dict) -> None:
    raw = raw_speed(r, 160)
    print(f"\nraw MobileNetV2 forward (float32, batch 64): {raw:.0f} images/s "
          f"({r['raw_float32']['images']} images in {r['raw_float32']['seconds']:.1f}s)")
    if "raw_bfloat16" in r:
        bf = r["raw_bfloat16"]["images_per_second"]
        print(f"raw MobileNetV2 forward (mixed bfloat16):   {bf:.0f} images/s ({bf / raw:.2f}x float32)")
    for key in (k for k in r if k.startswith("raw_float32@")):
        x = r[key]
        print(f"raw MobileNetV2 forward (float32, batch 64) @{x['size']}: {x['images_per_second']:.0f} images/s "
              f"({x['images']} images in {x['seconds']:.1f}s)")
    print(f"\n{'run':28} {'wall_s':>7} {'val_acc':>8} {'test_acc':>8} {'peak_MB':>8}  notes")
    for key, x in r.items():
        if not key.startswith("raw"):
            print(f"{row_label(key):28} {x['wall_seconds']:7.1f} {x['val_accuracy']:8.2%} {x['test_accuracy']:8.2%} "
                  f"{x['peak_rss_mb']:8.0f}  {notes(key, x, r)}")
    a, b = r["a_reference"], r["b_zoo_cold"]
    print(f"\nspeed-up (a)/(b): {a['wall_seconds'] / b['wall_seconds']:.1f}x end to end (cold process, cold cache)")
    print(f"val accuracy (b) - (a): {100 * (b['val_accuracy'] - a['val_accuracy']):+.2f} points")
    print("\ntargets (issue 3):")
    for what, measured, met in targets(r):
        print(f"  {what:38} {measured:>16}  {'met' if met else 'NOT MET'}")


if __name__ == "__main__":
    sys.exit(main())

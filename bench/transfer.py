#!/usr/bin/env python
"""Transfer learning, measured: the plain-Keras reference recipe against catdog-zoo, in one invocation.

    python bench/transfer.py [--epochs 20] [--fine-tune-epochs 10] [--sweep 0,1,2,4] [--bf16] [--out DIR]

Runs, each in a fresh process on this machine, one after another:
  raw  MobileNetV2 forward pass over the 3000 images (bench/forward_throughput.py), float32 [and bfloat16]
  (a)  the reference recipe in plain Keras (bench/reference_recipe.py)
  (b)  catdog-zoo train mobilenet_v2 --epochs N, from a cold process and an empty zoo cache
  (b2) the same again with the cache warm
  (c)  catdog-zoo train mobilenet_v2 --epochs N --fine-tune-epochs M (cache warm from (b))
  sweep: --aug-views K for each K (shared cache, so later K reuse earlier views; accuracy is the point)
and prints wall seconds, validation/test accuracy, peak RSS, the speed-up (a)/(b) and feature
extraction throughput as a fraction of the raw forward pass. Offline, set KERAS_HOME to a seeded
cache first (../shared/README.md).
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
                  stages=m["stages"], train_seconds=m["train_seconds"])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--fine-tune-epochs", type=int, default=10)
    parser.add_argument("--sweep", default="", help="comma-separated --aug-views values, e.g. 0,1,2,4")
    parser.add_argument("--bf16", action="store_true", help="also time the forward pass in bfloat16")
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
        for k in [int(v) for v in args.sweep.split(",") if v.strip()]:
            results[f"sweep_aug_views_{k}"] = zoo_run(f"sweep_{k}", ["--epochs", args.epochs, "--aug-views", k],
                                                      out, log, cache_dir)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    report(results)
    return 0


def report(r: dict) -> None:
    raw = r["raw_float32"]["images_per_second"]
    print(f"\nraw MobileNetV2 forward (float32, batch 64): {raw:.0f} images/s "
          f"({r['raw_float32']['images']} images in {r['raw_float32']['seconds']:.1f}s)")
    if "raw_bfloat16" in r:
        bf = r["raw_bfloat16"]["images_per_second"]
        print(f"raw MobileNetV2 forward (mixed bfloat16):   {bf:.0f} images/s ({bf / raw:.2f}x float32)")
    print(f"\n{'run':24} {'wall_s':>7} {'val_acc':>8} {'test_acc':>8} {'peak_MB':>8}  notes")
    for key, label in [("a_reference", "(a) plain Keras recipe"), ("b_zoo_cold", "(b) zoo, cold cache"),
                       ("b2_zoo_warm", "(b2) zoo, warm cache"), ("c_fine_tune", "(c) zoo + fine-tune")] + \
            [(k, f"sweep {k.rsplit('_', 1)[-1]} aug views") for k in r if k.startswith("sweep_")]:
        if key not in r:
            continue
        x = r[key]
        notes = ""
        if key == "a_reference":
            lo, hi = x["val_accuracy_range"]
            notes = f"val wandered {lo:.2%}..{hi:.2%}; test = take/skip fifth of validation"
        elif "feature_cache" in x and x["feature_cache"].get("images_per_second"):
            fc = x["feature_cache"]
            notes = (f"features {fc['images_extracted']} images at {fc['images_per_second']:.0f}/s "
                     f"= {fc['images_per_second'] / raw:.0%} of raw")
            if fc.get("overall_images_per_second"):
                notes += (f" ({fc['overall_images_per_second']:.0f}/s = {fc['overall_images_per_second'] / raw:.0%}"
                          f" with {fc['setup_seconds']:.1f}s of tracing and warm-up)")
        elif "feature_cache" in x:
            notes = "features all from cache"
        if "stages" in x and "fine_tune" in x["stages"]:
            notes += f"; fine-tune {x['stages']['fine_tune']['seconds']:.0f}s"
        print(f"{label:24} {x['wall_seconds']:7.1f} {x['val_accuracy']:8.2%} {x['test_accuracy']:8.2%} "
              f"{x['peak_rss_mb']:8.0f}  {notes}")
    a, b = r["a_reference"], r["b_zoo_cold"]
    print(f"\nspeed-up (a)/(b): {a['wall_seconds'] / b['wall_seconds']:.1f}x end to end (cold process, cold cache)")
    print(f"val accuracy (b) - (a): {100 * (b['val_accuracy'] - a['val_accuracy']):+.2f} points")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Train the zoo's six reference models on the real data and compare with the reference's figures.

    python bench/reference_models.py [--epochs 20] [--out bench-runs/reference] [MODEL ...]

Each model is trained by the real CLI in a fresh process (``catdog-zoo train MODEL --epochs N``),
so the wall time includes start-up, decoding and evaluation. Models whose run directory already
holds a finished run are not retrained, so an interrupted benchmark can be resumed.
Offline, point KERAS_HOME at a seeded cache first (see ../shared/README.md).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Validation accuracy the reference notebook reports after 20 epochs.
REFERENCE = {
    "baseline": "60-61%", "dropout": "59-61%", "dropout_heavy": "63-64%",
    "augmentation": "63-64%", "preprocess": "70-72%", "mobilenet_v2": "98-99%",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(REFERENCE))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", default=None, help="default: the cats_and_dogs_filtered source")
    parser.add_argument("--out", default="bench-runs/reference")
    args = parser.parse_args()
    cli = Path(sys.executable).with_name("catdog-zoo")
    rows = []
    for model in args.models:
        run_dir = Path(args.out) / model
        wall = None
        if not (run_dir / "metrics.json").is_file():
            cmd = [str(cli), "train", model, "--epochs", str(args.epochs), "--seed", str(args.seed),
                   "--run-dir", str(run_dir)] + (["--data", args.data] if args.data else [])
            print("$", " ".join(cmd), flush=True)
            started = time.perf_counter()
            subprocess.run(cmd, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            wall = time.perf_counter() - started
            (run_dir / "bench_wall_seconds.txt").write_text(f"{wall:.1f}\n")
        elif (run_dir / "bench_wall_seconds.txt").is_file():
            wall = float((run_dir / "bench_wall_seconds.txt").read_text())
        m = json.loads((run_dir / "metrics.json").read_text())
        rows.append((model, m["val_accuracy"], m["test_accuracy"], m["train_accuracy"], m["train_seconds"], wall,
                     REFERENCE.get(model, "-")))
    print(f"\n{'model':14} {'val_acc':>8} {'test_acc':>8} {'train_acc':>9} {'fit_s':>7} {'wall_s':>7}  reference val")
    for model, val, test, tr, fit_s, wall, ref in rows:
        wall_txt = f"{wall:7.1f}" if wall is not None else "      -"
        print(f"{model:14} {val:8.2%} {test:8.2%} {tr:9.2%} {fit_s:7.1f} {wall_txt}  {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

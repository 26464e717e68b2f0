#!/usr/bin/env python
"""Run ``catdog-zoo train ARGS --strategy multi_worker`` as N worker processes on this machine.

    python bench/local_workers.py [--workers 2] -- mobilenet_v2 --run-dir runs/mnv2-2workers

Picks N free localhost ports, gives each process its own TF_CONFIG (worker 0 is the chief and
writes the run directory), waits for all of them, and prints each worker's last lines and wall
seconds. A way to try the multi-worker path without a cluster; see docs/distributed.md.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from catdog_zoo.training.distribute import local_tf_configs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="arguments of catdog-zoo train (after --)")
    args = parser.parse_args()
    train_args = [a for a in args.train_args if a != "--"] if args.train_args[:1] == ["--"] else args.train_args
    zoo = str(Path(sys.executable).with_name("catdog-zoo"))
    started = time.perf_counter()
    procs = []
    for tf_config in local_tf_configs(args.workers):
        procs.append(subprocess.Popen([zoo, "train", *train_args, "--strategy", "multi_worker"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      env={**os.environ, "TF_CONFIG": tf_config}))
    outputs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - started
    for index, (proc, out) in enumerate(zip(procs, outputs)):
        ours = [line for line in out.splitlines() if line[:5] not in ("I0000", "W0000", "E0000", "WARNI")]
        print(f"--- worker {index} (exit {proc.returncode}) ---")
        shares = [line for line in ours[:-4] if ": extracted " in line]  # how the features were split
        print("\n".join(shares + ours[-4:]))
    print(f"wall seconds, all workers: {wall:.1f}")
    return max(p.returncode for p in procs)


if __name__ == "__main__":
    sys.exit(main())

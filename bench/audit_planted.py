#!/usr/bin/env python
"""``catdog-zoo audit`` against planted defects, and its time against a default ``train``, in one invocation.

    KERAS_HOME=<seeded cache> python bench/audit_planted.py [--out bench-runs/audit] [--seed 0]

1. plants defects in a copy of cats_and_dogs_filtered (``bench/plant_defects.py``: 40 label flips, 15
   near-duplicate copies across splits, 10 off-topic photos; the truth in ``planted.json``);
2. with an empty feature cache, times ``catdog-zoo audit`` (cold), again (warm), and a default
   ``catdog-zoo train mobilenet_v2`` on the same copy with another empty cache (cold), each in its own process;
3. scores the audit: flips among the first 60 ``label_issues`` with the right suggested class; planted groups
   found among ``duplicates`` (and the known dog.180/dog.74 pair) and how many other groups; planted
   off-topic photos among the first 15 ``off_topic``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args, env) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "catdog_zoo", *map(str, args)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def score(audit: dict, truth: dict) -> dict:
    flips = {f["path"]: f["true"] for f in truth["flips"]}
    first60 = audit["label_issues"][:60]
    caught = [i for i in first60 if i["path"] in flips and i["suggested"] == flips[i["path"]]]
    planted = [frozenset(d["paths"]) for d in truth["duplicates"]] + [frozenset(p) for p in truth["known_duplicates"]]
    found_groups = [frozenset(d["paths"]) for d in audit["duplicates"]]
    found = [p for p in planted if any(p <= g for g in found_groups)]
    others = [g for g in found_groups if not any(p <= g for p in planted)]
    off = {o["path"] for o in truth["off_topic"]}
    first15 = [o["path"] for o in audit["off_topic"][:15]]
    return {"flips_in_first_60_right_class": len(caught), "flips": len(flips),
            "flips_anywhere": sum(1 for i in audit["label_issues"] if i["path"] in flips),
            "planted_groups_found": len(found), "planted_groups": len(planted),
            "known_pair_found": any(frozenset(truth["known_duplicates"][0]) <= g for g in found_groups),
            "across_splits_flagged": sum(1 for d in audit["duplicates"] if d["across_splits"]),
            "other_groups": len(others), "other_group_examples": [sorted(g) for g in others[:5]],
            "off_topic_in_first_15": len(set(first15) & off), "off_topic_flagged": sum(o["flagged"] for o in
                                                                                       audit["off_topic"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-runs/audit"))
    parser.add_argument("--seed", type=int, default=0, help="of the planting")
    args = parser.parse_args()
    out = args.out.resolve()
    data = out / "planted"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    subprocess.run([sys.executable, str(ROOT / "bench" / "plant_defects.py"), str(data), "--seed", str(args.seed)],
                   check=True)
    truth = json.loads((data / "planted.json").read_text())
    (data / "planted.json").rename(out / "planted.json")  # beside the dataset, not in it
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    audit_env = {**env, "CATDOG_ZOO_CACHE": str(out / "cache-audit")}
    train_env = {**env, "CATDOG_ZOO_CACHE": str(out / "cache-train")}
    cold = timed(["audit", "--data", data, "--out", out / "audit", "-q"], audit_env)
    warm = timed(["audit", "--data", data, "--out", out / "audit", "-q"], audit_env)
    train = timed(["train", "mobilenet_v2", "--data", data, "--run-dir", out / "run", "-q"], train_env)
    result = score(json.loads((out / "audit" / "audit.json").read_text()), truth)
    result.update({"audit_cold_s": round(cold, 1), "audit_warm_s": round(warm, 1), "train_cold_s": round(train, 1),
                   "audit_cold_over_train_cold": round(cold / train, 2)})
    (out / "score.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Each extension point proved by an outside plugin, as a user meets it: ``catdog-zoo install`` from its folder,
listed by ``catdog-zoo plugins``, used end to end, then ``catdog-zoo uninstall -y`` and gone from the listing.

    KERAS_HOME=... python bench/plugin_lifecycle.py [--data FOLDER] [--only NAME ...]

Runs in this Python's environment (catdog-zoo's own), so it changes what is installed there while it runs: a
plugin that was installed before (``make install`` installs plugins/*/ editable) is put back, editable, at the
end. Prints one line per step with its seconds, and a summary table; exits 1 when a step failed.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "cats_and_dogs_filtered"


def zoo(*args, env=None, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "catdog_zoo", *map(str, args)], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    if check and result.returncode != 0:
        raise RuntimeError(f"catdog-zoo {' '.join(map(str, args))} exited {result.returncode}: "
                           f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return result


def listed(dist: str) -> dict:
    plugins = json.loads(zoo("plugins", "--json").stdout)
    return {p["name"]: p for p in plugins if p["distribution"] == dist}


def installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def small_data(out: Path) -> Path:
    """40 train and 20 validation photos of each class from the real data: enough to show each hook working."""
    for split, count in (("train", 40), ("validation", 20)):
        for cls in ("cats", "dogs"):
            folder = out / split / cls
            folder.mkdir(parents=True)
            for photo in sorted((SHARED_DATA / split / cls).iterdir())[:count]:
                (folder / photo.name).symlink_to(photo)
    return out


def use_models(work: Path, data: Path) -> str:
    check = zoo("check-plugin", "efficientnet_b0", "--quick", check=False)
    bench = zoo("models", "--bench", "efficientnet_b0", "--json")
    speed = json.loads(bench.stdout)[0]
    if check.returncode != 0:
        raise RuntimeError("check-plugin efficientnet_b0 failed: " + check.stdout.strip().splitlines()[-1])
    return f"check-plugin efficientnet_b0: {check.stdout.strip().splitlines()[-1]}; bench {speed}"


def use_onnx(work: Path, data: Path) -> str:
    zoo("train", "mobilenet_v2", "--data", data, "--epochs", 1, "--engine", "onnxruntime", "--run-dir",
        work / "onnx-run", "-q", env={"CATDOG_ZOO_CACHE": str(work / "cache")})
    engine = json.loads((work / "onnx-run" / "metrics.json").read_text())["feature_cache"]["engine"]
    zoo("export", work / "onnx-run", "--format", "onnx")
    report = json.loads((work / "onnx-run" / "export" / "model.onnx.export.json").read_text())
    return (f"trained with engine {engine}; export onnx max |p - p_keras| {report.get('max_probability_difference')}, "
            f"parity_ok {report.get('parity_ok')}")


def use_mlflow(work: Path, data: Path) -> str:
    uri = f"sqlite:///{work}/mlflow.db"
    zoo("train", "baseline", "--data", data, "--epochs", 2, "--image-size", 64, "--track", "mlflow", "--run-dir",
        work / "mlflow-run", "-q", env={"MLFLOW_TRACKING_URI": uri})
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
    return f"MLflow run {run.info.status}, {len(run.data.params)} params, val_loss at steps {steps}"


def use_polish(work: Path, data: Path) -> str:
    zoo("train", "baseline", "--data", data, "--epochs", 1, "--image-size", 64, "--run-dir", work / "polish-run",
        "-q", env={"CATDOG_ZOO_POLISH_EPOCHS": "2"})
    with open(work / "polish-run" / "history.csv") as f:
        stages = [row["stage"] for row in csv.DictReader(f)]
    return f"history.csv stage column {stages}"


# (distribution, folder, what it adds, how it is used)
PLUGINS = [
    ("catdog-zoo-keras-applications", ROOT / "plugins" / "catdog-zoo-keras-applications", "models", use_models),
    ("catdog-zoo-onnx", ROOT / "plugins" / "catdog-zoo-onnx", "engines, exporters", use_onnx),
    ("catdog-zoo-mlflow", ROOT / "plugins" / "catdog-zoo-mlflow", "trackers", use_mlflow),
    ("catdog-zoo-polish", ROOT / "docs" / "examples" / "catdog-zoo-polish", "stages", use_polish),
]


def lifecycle(dist: str, folder: Path, adds: str, use, work: Path, data: Path) -> list:
    steps, was_installed = [], installed(dist)

    def step(name, fn):
        started = time.perf_counter()
        try:
            said, ok = fn(), True
        except Exception as exc:  # noqa: BLE001 - reported as the step's failure
            said, ok = f"{type(exc).__name__}: {exc}", False
        steps.append((dist, name, ok, time.perf_counter() - started, said))
        print(f"{'ok  ' if ok else 'FAIL'} {dist}: {name} ({steps[-1][3]:.1f} s) {said}", flush=True)
        return ok

    if was_installed:
        zoo("uninstall", dist, "-y")
    try:
        step("install", lambda: zoo("install", folder, "--no-deps").stdout.strip().splitlines()[0])
        step("listed", lambda: "; ".join(f"{n} [{p['status']}] {', '.join(f'{k}: {p[k]}' for k in adds.split(', '))}"
                                         for n, p in listed(dist).items()) or "NOT LISTED")
        step("used end to end", lambda: use(work, data))
        step("uninstall", lambda: zoo("uninstall", dist, "-y").stdout.strip().splitlines()[-1])
        step("gone", lambda: "not listed" if not listed(dist) else "STILL LISTED")
    finally:
        if was_installed:  # as make install left it
            zoo("install", "-e", folder, "--no-deps")
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a folder of class folders (default: 120 photos of ../shared)")
    parser.add_argument("--only", nargs="*", help="distributions to run (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="catdog-zoo-lifecycle-") as tmp:
        work = Path(tmp)
        data = args.data or small_data(work / "data")
        results = []
        for dist, folder, adds, use in PLUGINS:
            if not args.only or dist in args.only:
                results += lifecycle(dist, folder, adds, use, work, data)
    print("\n| plugin | step | ok | seconds |\n| --- | --- | --- | ---: |")
    for dist, name, ok, seconds, _ in results:
        print(f"| {dist} | {name} | {'yes' if ok else 'NO'} | {seconds:.1f} |")
    return 0 if all(ok for _, _, ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())

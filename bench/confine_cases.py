#!/usr/bin/env python
"""Every case of docs/trust-round3-confine.md, run on whichever catdog_zoo is importable: one JSON line each.

    PYTHONPATH=. .venv/bin/python bench/confine_cases.py [--only 1,4,9] > after.jsonl
    git archive 427bd7e catdog_zoo | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before .venv/bin/python bench/confine_cases.py > before.jsonl

Each case builds what it needs in a fresh folder (tiny generated images, one baseline run at 32 px trained
once and copied), runs the command in-process as the CLI does, and reports the exit status, the last line of
output and what happened to the files concerned (the effect: what the table's before/after columns say).
"Another process holds the lock" is this process holding it as that process would: a writer (``train``) the
run's lock exclusively, a reader (``evaluate``) shared where the version has shared locks, else nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from click.testing import CliRunner  # noqa: E402
from imagefactory import make_image_folder  # noqa: E402
from PIL import Image  # noqa: E402
from runfolders import copy_run, edit_config  # noqa: E402

from catdog_zoo.cli import cli  # noqa: E402
from catdog_zoo.util.locks import folder_lock  # noqa: E402

CASES = {}


def case(number: int, title: str):
    def register(fn):
        CASES[number] = (title, fn)
        return fn
    return register


def zoo(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        lines.append(f"(uncaught) {type(result.exception).__name__}: {result.exception}")
    return result.exit_code, (lines[-1][:220] if lines else "")


def reader_lock(run: Path):
    """What a running ``evaluate`` holds in this version: the run's lock shared, or nothing."""
    try:
        return folder_lock(run, shared=True)
    except TypeError:
        return contextlib.nullcontext()


def listing(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


class Workspace:
    def __init__(self, root: Path):
        self.root = root
        self.data = make_image_folder(root / "data", n_train=12, n_val=8, size=40)
        self.run = root / "runs" / "base"
        code, line = zoo("train", "baseline", "--data", self.data, "--epochs", 2, "--image-size", 32, "--batch-size",
                         8, "--run-dir", self.run, "-q")
        assert code == 0, line
        self.n = 0

    def fresh(self, name: str) -> Path:
        self.n += 1
        folder = self.root / f"case{self.n:02d}-{name}"
        folder.mkdir()
        return folder

    def run_copy(self, folder: Path) -> Path:
        return copy_run(self.run, folder / "run")


@case(1, "config.yaml `model: ../../../../tmp/x`, then `export --format saved_model`")
def model_as_path(ws):
    f = ws.fresh("model-path")
    run = ws.run_copy(f)
    outside = f / "outside"
    edit_config(run, model=f"../../../../../../../../../..{outside}/x")
    code, line = zoo("export", run, "--format", "saved_model")
    return code, line, f"outside the run: {listing(outside) or 'nothing'}; run/export: {listing(run / 'export')[:3]}"


@case(2, "a copied run folder's config repeated: `train --config COPY/config.yaml`")
def repeat_copy(ws):
    f = ws.fresh("repeat")
    copy = ws.run_copy(f)
    before = (ws.run / "metrics.json").stat().st_mtime
    with contextlib.chdir(f):
        code, line = zoo("train", "--config", copy / "config.yaml", "--epochs", 1, "-q")
    same = (ws.run / "metrics.json").stat().st_mtime == before
    return code, line, f"original run {'untouched' if same else 'CHANGED'}; new runs/: {listing(f / 'runs')[:1]}"


@case(3, "`export` while `train --overwrite` holds the run")
def export_during_train(ws):
    f = ws.fresh("export-during-train")
    run = ws.run_copy(f)
    with folder_lock(run):
        code, line = zoo("export", run, "--format", "tflite")
    return code, line, f"run/export: {listing(run / 'export')}"


@case(4, "`predict RUN photo.jpg --out RUN/metrics.json`")
def predict_onto_metrics(ws):
    f = ws.fresh("predict-metrics")
    run = ws.run_copy(f)
    photo = next((ws.data / "validation" / "cats").iterdir())
    code, line = zoo("predict", run, photo, "--out", run / "metrics.json")
    text = (run / "metrics.json").read_text()
    return code, line, "metrics.json " + ("replaced by a CSV" if text.startswith("path,") else "kept")


@case(5, "`predict RUN photo.jpg --out photo.jpg` (the input)")
def predict_onto_input(ws):
    f = ws.fresh("predict-input")
    photo = f / "photo.jpg"
    shutil.copy2(next((ws.data / "validation" / "cats").iterdir()), photo)
    code, line = zoo("predict", ws.run, photo, "--out", photo)
    return code, line, "photo.jpg " + ("replaced by a CSV" if photo.read_bytes().startswith(b"path,") else "kept")


@case(6, "`data show --out RUN/model.keras`")
def show_onto_model(ws):
    f = ws.fresh("show-model")
    run = ws.run_copy(f)
    code, line = zoo("data", "show", "--data", ws.data, "--out", run / "model.keras")
    png = (run / "model.keras").read_bytes().startswith(b"\x89PNG")
    return code, line, "model.keras " + ("replaced by a PNG" if png else "kept")


@case(7, "a user's `.notes.tmp` in the cache folder, then a run that writes the cache")
def cache_notes(ws):
    f = ws.fresh("cache-notes")
    cache = f / "cache"
    cache.mkdir()
    notes = cache / ".notes.tmp"
    notes.write_text("mine")
    old = time.time() - 3600
    os.utime(notes, (old, old))
    saved = os.environ.get("CATDOG_ZOO_CACHE")
    os.environ["CATDOG_ZOO_CACHE"] = str(cache)
    try:
        code, line = zoo("train", "baseline", "--data", ws.data, "--epochs", 1, "--image-size", 32, "--run-dir",
                         f / "run", "-q")
    finally:
        os.environ["CATDOG_ZOO_CACHE"] = saved or ""
    return code, line, ".notes.tmp " + ("kept" if notes.exists() else "DELETED")


@case(8, "`checkpoints/epoch-0002-my-backup/`, then `train --overwrite` (3 epochs)")
def checkpoint_backup(ws):
    f = ws.fresh("checkpoint-backup")
    run = f / "run"
    args = ["train", "baseline", "--data", ws.data, "--epochs", 3, "--image-size", 32, "--run-dir", run, "-q"]
    zoo(*args)
    backup = run / "checkpoints" / "epoch-0002-my-backup"
    backup.mkdir(parents=True)
    (backup / "weights.npz").write_bytes(b"mine")
    code, line = zoo(*args, "--overwrite")
    return code, line, "epoch-0002-my-backup " + ("kept" if (backup / "weights.npz").exists() else "DELETED")


@case(9, "a half-written export (a failed export), then `export` and `export --overwrite`")
def half_written_export(ws):
    f = ws.fresh("half-export")
    run = ws.run_copy(f)
    data = f / "data"
    shutil.copytree(ws.data, data)
    edit_config(run, data=str(data))
    data.rename(f / "moved")  # the check after writing fails: the export fails half-way
    first = zoo("export", run, "--format", "tflite")
    left = listing(run / "export")
    (f / "moved").rename(data)
    again = zoo("export", run, "--format", "tflite")
    forced = zoo("export", run, "--format", "tflite", "--overwrite")
    return forced[0], f"failed: {first[1][:80]} | again: {again[1][:90]} | --overwrite: {forced[1][:90]}", \
        f"left by the failure: {left}"


@case(10, "`train --run-dir DATA/train/new` (inside the dataset)")
def run_dir_in_data(ws):
    f = ws.fresh("run-in-data")
    data = f / "data"
    shutil.copytree(ws.data, data)
    code, line = zoo("train", "baseline", "--data", data, "--epochs", 1, "--image-size", 32, "--run-dir",
                     data / "train" / "new", "-q")
    stats = zoo("data", "stats", "--data", data, "--json")
    return code, line, f"data/train/new: {'exists' if (data / 'train' / 'new').exists() else 'absent'}; " \
        f"data stats: exit {stats[0]}, {stats[1][:80]}"


@case(11, "`export --out DATA/train/cats/m.tflite` (inside the data the export checks on)")
def export_into_data(ws):
    f = ws.fresh("export-in-data")
    data = f / "data"
    shutil.copytree(ws.data, data)
    run = ws.run_copy(f)
    edit_config(run, data=str(data))
    code, line = zoo("export", run, "--format", "tflite", "--out", data / "train" / "cats" / "m.tflite")
    return code, line, f"data/train/cats: {[p for p in listing(data / 'train' / 'cats') if not p.endswith('.jpg')]}"


@case(12, "`lr-find --out RUN/learning_curves.png` (a run's file)")
def lr_find_onto_run(ws):
    f = ws.fresh("lr-find")
    run = ws.run_copy(f)
    before = (run / "learning_curves.png").read_bytes()
    code, line = zoo("lr-find", "baseline", "--data", ws.data, "--image-size", 32, "--steps", 5, "--out",
                     run / "learning_curves.png", "-q")
    return code, line, "learning_curves.png " + ("kept" if (run / "learning_curves.png").read_bytes() == before
                                                 else "REPLACED")


@case(13, "a run's config `data:` naming another user's folder, then `evaluate` and `predict`")
def other_users_data(ws):
    f = ws.fresh("other-data")
    theirs = f / "theirs"
    shutil.copytree(ws.data, theirs)
    run = ws.run_copy(f)
    edit_config(run, data=str(theirs))
    before = listing(theirs)
    code, line = zoo("evaluate", run)
    zoo("predict", run, theirs / "validation" / "cats")
    return code, line, "their folder " + ("unchanged" if listing(theirs) == before else "CHANGED")


@case(14, "`RUN/export` a symbolic link to another folder, then `export --format tflite`")
def symlinked_export(ws):
    f = ws.fresh("symlinked-export")
    run = ws.run_copy(f)
    elsewhere = f / "elsewhere"
    elsewhere.mkdir()
    (run / "export").symlink_to(elsewhere, target_is_directory=True)
    code, line = zoo("export", run, "--format", "tflite")
    return code, line, f"elsewhere: {listing(elsewhere) or 'nothing'}"


@case(15, "an unfinished run whose `checkpoints` links to another folder, then `train --resume`")
def symlinked_checkpoints(ws):
    f = ws.fresh("symlinked-checkpoints")
    run = f / "run"
    run.mkdir()
    shutil.copy2(ws.run / "config.yaml", run / "config.yaml")
    edit_config(run, run_dir=str(run), epochs=2)
    elsewhere = f / "elsewhere"
    (elsewhere / "epoch-0001").mkdir(parents=True)
    (elsewhere / "epoch-0001" / "state.json").write_text("someone else's")
    (run / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    code, line = zoo("train", "--resume", run, "-q")
    return code, line, f"elsewhere: {listing(elsewhere)}"


@case(16, "two exports of one run at once (the first holds the run)")
def two_exports(ws):
    f = ws.fresh("two-exports")
    run = ws.run_copy(f)
    with folder_lock(run):  # what the first export holds, in the version that takes a lock
        code, line = zoo("export", run, "--format", "tflite")
    return code, line, f"run/export: {listing(run / 'export')}"


@case(17, "`predict --explain DIR` inside the image folder being predicted")
def explain_among_photos(ws):
    f = ws.fresh("explain-photos")
    photos = f / "photos"
    shutil.copytree(ws.data / "validation" / "cats", photos)
    code, line = zoo("predict", ws.run, photos, "--explain", photos / "why")
    again = CliRunner().invoke(cli, ["predict", str(ws.run), str(photos), "--json"])
    counted = len(json.loads(again.stdout)) if again.exit_code == 0 else 0
    return code, line, f"photos/why: {len(listing(photos / 'why'))} files; the next predict of photos/ labels " \
        f"{counted} images (8 photos)"


@case(18, "`predict --explain RUN` (onto the run)")
def explain_onto_run(ws):
    f = ws.fresh("explain-run")
    run = ws.run_copy(f)
    code, line = zoo("predict", run, next((ws.data / "validation" / "cats").iterdir()), "--explain", run)
    return code, line, f"run: {len(listing(run))} entries"


@case(19, "`compare RUN --plot RUN/learning_curves.png`")
def compare_plot_onto_run(ws):
    f = ws.fresh("compare-plot")
    run = ws.run_copy(f)
    before = (run / "learning_curves.png").read_bytes()
    code, line = zoo("compare", run, "--plot", run / "learning_curves.png")
    return code, line, "learning_curves.png " + ("kept" if (run / "learning_curves.png").read_bytes() == before
                                                 else "REPLACED")


@case(20, "`predict --out preds.csv` when preds.csv exists (a user's file)")
def predict_existing_csv(ws):
    f = ws.fresh("predict-existing")
    csv = f / "preds.csv"
    csv.write_text("my spreadsheet\n")
    code, line = zoo("predict", ws.run, next((ws.data / "validation" / "cats").iterdir()), "--out", csv)
    return code, line, "preds.csv " + ("kept" if csv.read_text() == "my spreadsheet\n" else "REPLACED")


@case(21, "`augment-preview --out mine.png` when mine.png exists")
def augment_existing(ws):
    f = ws.fresh("augment-existing")
    mine = f / "mine.png"
    Image.new("RGB", (8, 8)).save(mine)
    code, line = zoo("augment-preview", "augmentation", "--data", ws.data, "--out", mine)
    with Image.open(mine) as picture:
        return code, line, "mine.png " + ("kept" if picture.size == (8, 8) else "REPLACED")


@case(22, "`train --run-dir RUN/sub` (inside another run)")
def run_dir_in_run(ws):
    f = ws.fresh("run-in-run")
    run = ws.run_copy(f)
    code, line = zoo("train", "baseline", "--data", ws.data, "--epochs", 1, "--image-size", 32, "--run-dir",
                     run / "sub", "-q")
    over = zoo("train", "baseline", "--data", ws.data, "--epochs", 1, "--image-size", 32, "--run-dir", run,
               "--overwrite", "-q")
    return code, line, f"RUN/sub {'exists' if (run / 'sub').exists() else 'absent'}; then train --overwrite RUN: " \
        f"exit {over[0]}"


@case(23, "`evaluate` while `train --overwrite` holds the run")
def evaluate_during_train(ws):
    f = ws.fresh("evaluate-during-train")
    run = ws.run_copy(f)
    with folder_lock(run):
        code, line = zoo("evaluate", run)
    return code, line, "scored a run being replaced" if code == 0 else "nothing read"


@case(24, "`train --overwrite` while an `evaluate` reads the run")
def train_during_evaluate(ws):
    f = ws.fresh("train-during-evaluate")
    run = ws.run_copy(f)
    before = (run / "model.keras").read_bytes()
    with reader_lock(run):
        code, line = zoo("train", "baseline", "--data", ws.data, "--epochs", 1, "--image-size", 32, "--run-dir", run,
                         "--overwrite", "-q")
    return code, line, "model.keras " + ("kept" if (run / "model.keras").read_bytes() == before
                                         else "replaced under the reader")


@case(25, "a killed SavedModel export's `.1.old/`, then `export --version 1 --overwrite`")
def saved_model_old(ws):
    f = ws.fresh("saved-model-old")
    run = ws.run_copy(f)
    base = f / "serving"
    first = zoo("export", run, "--format", "saved_model", "--out", base)
    (base / ".1.old").mkdir()  # what a kill between the two renames of a replacement leaves (old export set aside)
    (base / ".1.old" / "saved_model.pb").write_bytes(b"old")
    code, line = zoo("export", run, "--format", "saved_model", "--out", base, "--version", 1, "--overwrite")
    return code, line, f"first export exit {first[0]}; serving/: {[p for p in listing(base) if '/' not in p]}"


@case(26, "`audit --out A` where A holds an earlier audit")
def audit_existing(ws):
    from conftest import install_dist
    from test_audit import FROZEN_PLUGIN

    from catdog_zoo.plugins import reset_zoo
    f = ws.fresh("audit-existing")
    site = f / "site"
    install_dist(site, "frozen-probe", "0.1", {"frozen": "frozen_probe_mod"}, {"frozen_probe_mod": FROZEN_PLUGIN})
    sys.path.insert(0, str(site))
    reset_zoo()
    out = f / "audit"
    try:
        zoo("audit", "--data", ws.data, "--out", out, "--model", "frozen_plain", "-q")
        (out / "audit.json").write_text("{\"mine\": \"an earlier audit, annotated\"}")
        code, line = zoo("audit", "--data", ws.data, "--out", out, "--model", "frozen_plain", "-q")
    finally:
        sys.path.remove(str(site))
        reset_zoo()
    return code, line, "earlier audit.json " + ("kept" if "annotated" in (out / "audit.json").read_text() else
                                                 "REPLACED")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="comma-separated case numbers")
    args = parser.parse_args()
    wanted = sorted(CASES) if not args.only else [int(n) for n in args.only.split(",")]
    import catdog_zoo
    with tempfile.TemporaryDirectory(prefix="confine-cases-") as tmp:
        os.environ.setdefault("CATDOG_ZOO_CACHE", str(Path(tmp) / "zoo-cache"))
        os.environ.setdefault("CATDOG_ZOO_CACHE_KEY", str(Path(tmp) / "cache.key"))
        ws = Workspace(Path(tmp))
        for number in wanted:
            title, fn = CASES[number]
            try:
                code, line, effect = fn(ws)
            except Exception as exc:  # noqa: BLE001 - a case that crashes is a result too
                code, line, effect = "crash", f"{type(exc).__name__}: {exc}"[:220], ""
            print(json.dumps({"case": number, "title": title, "exit": code, "said": line.replace(tmp, "TMP"),
                              "effect": str(effect).replace(tmp, "TMP"), "code": catdog_zoo.__file__}), flush=True)


if __name__ == "__main__":
    main()

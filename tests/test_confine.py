"""Trust nothing, round 3 (principles 2-4): a run folder is confined to itself; every command takes the run's
lock, and no output replaces an input or a run's file; the zoo deletes only what it can prove it wrote.
Real files, folders, links and locks; each command run as a user runs it (docs/trust-round3-confine.md)."""

import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from conftest import cli_run
from PIL import Image
from runfolders import copy_run, edit_config

from catdog_zoo.util.locks import folder_lock

SMALL = ("--epochs", 1, "--image-size", 32, "--batch-size", 8)


def refused(result, *words):
    """Exit status 1 or 2 with one ``Error:`` line holding every one of ``words``."""
    assert result.exit_code in (1, 2), result.output + repr(result.exception)
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: ") and all(w in line for w in words), result.output
    return line


def snapshot(folder: Path) -> dict:
    """Every path under ``folder`` (links not followed) with its bytes or its kind: what 'untouched' means."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        found[key] = ("link", os.readlink(path)) if path.is_symlink() else (
            path.read_bytes() if path.is_file() else "folder")
    return found


# --- 2. A run folder is confined to itself ---------------------------------------------------------------------

def test_nothing_read_from_a_run_folder_makes_a_command_write_outside_it(tiny_run, tiny_data, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    outside = tmp_path / "outside"

    # config.yaml's model as a path: export's default SavedModel folder is named after it, inside the run.
    shared = copy_run(tiny_run, tmp_path / "shared-run")
    edit_config(shared, model=f"../../../../../../../../..{outside}/x")
    result = cli_run("export", shared, "--format", "saved_model", "--json")
    written = Path(json.loads(result.stdout)["path"]).resolve()
    assert shared.resolve() / "export" / "serving" in written.parents and not outside.exists()

    # A run's own folders that lead elsewhere (symbolic links) are refused, never written (or emptied) through.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "epoch-0001").mkdir(parents=True)
    (elsewhere / "epoch-0001" / "state.json").write_text("someone else's")
    before = snapshot(elsewhere)
    linked = copy_run(tiny_run, tmp_path / "linked-run")
    (linked / "export").symlink_to(elsewhere, target_is_directory=True)
    refused(cli_run("export", linked, "--format", "tflite", ok=False), f"{linked / 'export'} is a symbolic link")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy2(tiny_run / "config.yaml", unfinished / "config.yaml")
    edit_config(unfinished, run_dir=str(unfinished), image_size=[32, 32], epochs=1)
    (unfinished / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    refused(cli_run("train", "--resume", unfinished, ok=False), "checkpoints is a symbolic link")
    assert snapshot(elsewhere) == before

    # A copied run's config repeated with --config: a new folder of its own, never the original's.
    original = snapshot(tiny_run)
    copy = copy_run(tiny_run, tmp_path / "copy")
    result = cli_run("train", "--config", copy / "config.yaml", *SMALL, "-q")
    new = Path(result.output.strip().rsplit(" ", 1)[-1])
    assert new.resolve().parent == (cwd / "runs").resolve() and (new / "metrics.json").is_file()
    assert snapshot(tiny_run) == original
    from catdog_zoo.runs.confine import is_run_config
    (tmp_path / "exp.yaml").write_bytes((copy / "config.yaml").read_bytes())  # copied out of the run folder
    assert is_run_config(tmp_path / "exp.yaml") and not is_run_config(tmp_path / "cwd" / "missing.yaml")

    # A run's config naming someone else's data folder: evaluate and predict read it, write nothing there.
    theirs = tmp_path / "theirs"
    shutil.copytree(tiny_data, theirs)
    pointed = copy_run(tiny_run, tmp_path / "pointed")
    edit_config(pointed, data=str(theirs))
    before = snapshot(theirs)
    cli_run("evaluate", pointed, "--split", "test")
    cli_run("predict", pointed, theirs / "validation" / "cats")
    assert snapshot(theirs) == before


# --- 3. Every command takes the run's lock; no output replaces an input or a run's file -----------------------

def test_every_command_takes_the_runs_lock(tiny_run, tiny_data, tmp_path):
    photo = next((tiny_data / "validation" / "cats").iterdir())
    before = snapshot(tiny_run)
    with folder_lock(tiny_run):  # a writer: train --overwrite or export, in another process
        for args in (("evaluate", tiny_run), ("predict", tiny_run, photo),
                     ("export", tiny_run, "--format", "tflite", "--out", tmp_path / "m.tflite"),
                     ("compare", tiny_run)):
            refused(cli_run(*args, ok=False), f"run directory {tiny_run} is in use by process {os.getpid()}")
        found = cli_run("compare", "--runs-dir", tiny_run.parent, ok=False)
        assert f"{tiny_run} left out" in found.output
    with folder_lock(tiny_run, shared=True):  # a reader (evaluate, predict): readers side by side, no writer
        cli_run("evaluate", tiny_run)
        cli_run("predict", tiny_run, photo)
        refused(cli_run("export", tiny_run, "--format", "tflite", "--out", tmp_path / "m.tflite", ok=False),
                "is in use by")
        refused(cli_run("train", "baseline", "--data", tiny_data, *SMALL, "--run-dir", tiny_run, "--overwrite",
                        ok=False), "is in use by")
    assert snapshot(tiny_run) == before and not (tmp_path / "m.tflite").exists()
    with folder_lock(tiny_run, shared=True):
        with folder_lock(tiny_run, shared=True):
            pass
        assert (tiny_run / ".lock").exists()  # the first reader still holds it
    assert not (tiny_run / ".lock").exists()  # the last one out removes it


def test_no_output_replaces_an_input_or_a_runs_file(tiny_run, tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cats = tiny_data / "validation" / "cats"
    photo = next(cats.iterdir())
    data_before, run_before = snapshot(tiny_data), snapshot(tiny_run)
    mine = tmp_path / "mine.png"
    Image.new("RGB", (8, 8)).save(mine)
    for args, words in [
        (("predict", tiny_run, photo, "--out", tiny_run / "metrics.json", "--overwrite"), ["inside the run directory"]),
        (("predict", tiny_run, photo, "--out", photo, "--overwrite"), ["which this command reads"]),
        (("predict", tiny_run, cats, "--out", cats / "p.csv"), ["inside", "which this command reads"]),
        (("predict", tiny_run, cats, "--explain", cats / "why"), ["inside", "which this command reads"]),
        (("predict", tiny_run, photo, "--explain", tiny_run), ["run directory"]),
        (("predict", tiny_run, photo, "--out", mine), ["exists; pass --overwrite"]),
        (("data", "show", "--data", tiny_data, "--out", tiny_run / "model.keras", "--overwrite"), ["run directory"]),
        (("data", "show", "--data", tiny_data, "--out", tiny_data / "train" / "cats" / "grid.png"), ["reads"]),
        (("data", "show", "--data", tiny_data, "--out", mine), ["exists; pass --overwrite"]),
        (("augment-preview", "augmentation", "--data", tiny_data, "--out", mine), ["exists; pass --overwrite"]),
        (("lr-find", "baseline", "--data", tiny_data, "--out", tiny_run / "lr.png"), ["run directory"]),
        (("lr-find", "baseline", "--data", tiny_data, "--out", mine), ["exists; pass --overwrite"]),
        (("compare", tiny_run, "--plot", tiny_run / "learning_curves.png", "--overwrite"), ["run directory"]),
        (("compare", tiny_run, "--plot", mine), ["exists; pass --overwrite"]),
        (("zoo", "baseline", "--data", tiny_data, "--plot", mine), ["exists; pass --overwrite"]),
        (("export", tiny_run, "--format", "tflite", "--out", tiny_data / "m.tflite"), ["which this command reads"]),
        (("export", tiny_run, "--format", "tflite", "--out", tiny_run / "model.keras", "--overwrite"),
         ["run directory"]),
        (("train", "baseline", "--data", tiny_data, *SMALL, "--run-dir", tiny_data / "runs" / "x"), ["reads"]),
        (("train", "baseline", "--data", tiny_data, *SMALL, "--run-dir", tiny_run / "sub"), ["run directory"]),
        (("audit", "--data", tiny_data, "--out", tiny_run), ["run directory"]),
    ]:
        refused(cli_run(*args, ok=False), *words)
    assert snapshot(tiny_data) == data_before and snapshot(tiny_run) == run_before
    assert mine.read_bytes() == mine.read_bytes() and not Path("runs").exists()
    # An existing file of the user's is replaced when asked to; a grid needs no model.
    result = cli_run("data", "show", "--data", tiny_data, "--out", mine, "--overwrite", ok=False)
    assert result.exit_code == 0 and Image.open(mine).size != (8, 8)
    csv = tmp_path / "p.csv"
    cli_run("predict", tiny_run, photo, "--out", csv)
    refused(cli_run("predict", tiny_run, photo, "--out", csv, ok=False), "exists; pass --overwrite")
    cli_run("predict", tiny_run, photo, "--out", csv, "--overwrite")


def test_audit_replaces_its_own_files_only_with_overwrite(frozen_plugin_for_confine, tiny_data, tmp_path):
    out = tmp_path / "audit"
    args = ("audit", "--data", tiny_data, "--out", out, "--model", "frozen_plain", "-q")
    cli_run(*args)
    page = (out / "audit.html").read_bytes()
    refused(cli_run(*args, ok=False), "exists; pass --overwrite")
    assert (out / "audit.html").read_bytes() == page
    cli_run(*args, "--overwrite")


@pytest.fixture
def frozen_plugin_for_confine(site):
    """The audit tests' own plugin: a tiny random frozen backbone, so an audit runs in seconds."""
    from frozen_plugin import install_frozen
    install_frozen(site, "frozen_plain")


# --- 4. The zoo deletes only what it can prove it wrote -------------------------------------------------------

def test_the_zoo_deletes_only_what_it_wrote(tiny_data, tmp_path, own_cache):
    cache = own_cache
    cache.mkdir()
    notes = cache / ".notes.tmp"
    notes.write_text("the user's notes")
    dead = cache / f".decoded-{'0' * 32}.zoo-tmp-k1ll3d00.tmp"  # a killed writer's
    dead.write_bytes(b"half an entry")
    old = time.time() - 3600
    for path in (notes, dead):
        os.utime(path, (old, old))
    run = tmp_path / "run"
    train = ("train", "baseline", "--data", tiny_data, "--epochs", 3, "--image-size", 32, "--batch-size", 8,
             "--run-dir", run, "-q")
    cli_run(*train)
    assert notes.read_text() == "the user's notes" and not dead.exists()

    # A user's folders and files among the zoo's, then train --overwrite (checkpoints written and removed).
    backup = run / "checkpoints" / "epoch-0002-my-backup"
    backup.mkdir(parents=True)
    (backup / "weights.npz").write_bytes(b"mine")
    (run / "export" / "serving" / "theirs" / "1").mkdir(parents=True)
    (run / "export" / "serving" / "theirs" / "1" / "saved_model.pb").write_bytes(b"mine")
    (run / "export" / "model.tflite").write_bytes(b"someone's file, no record of an export")
    (run / "export" / "old.tflite").write_bytes(b"the zoo's export of the old model")
    (run / "export" / "old.tflite.export.json").write_text("{}")
    kept = {p: p.read_bytes() for p in (backup / "weights.npz", run / "export" / "model.tflite",
                                         run / "export" / "serving" / "theirs" / "1" / "saved_model.pb")}
    cli_run(*train, "--overwrite")
    assert {p: p.read_bytes() for p in kept} == kept
    assert not (run / "export" / "old.tflite").exists() and not (run / "export" / "old.tflite.export.json").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0002-my-backup"]


def test_a_failed_export_never_blocks_the_next(tiny_run, tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    run = copy_run(tiny_run, tmp_path / "run")
    edit_config(run, data=str(data))
    out = run / "export" / "model.tflite"
    data.rename(tmp_path / "moved")  # the export cannot be checked on the test split: refused before any writing
    failed = cli_run("export", run, "--format", "tflite", ok=False)
    assert failed.exit_code == 2 and "is not here: pass --data DIR" in failed.output
    assert not out.exists() and not (run / "export").exists()
    (tmp_path / "moved").rename(data)
    # What a killed export leaves: the file in place, its record still marked incomplete.
    out.parent.mkdir()
    out.write_bytes(b"half a model")
    (run / "export" / "model.tflite.export.json").write_text(json.dumps({"complete": False, "format": "tflite"}))
    result = cli_run("export", run, "--format", "tflite", "--json")
    assert json.loads(result.stdout)["parity_ok"] and out.read_bytes() != b"half a model"
    refused(cli_run("export", run, "--format", "tflite", ok=False), "exists; pass --overwrite")


def test_extracting_a_data_source_keeps_what_is_in_its_folder(tmp_path):
    from catdog_zoo.data.sources import safe_extract
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pets/cats/a.txt", "a")
    target = tmp_path / "pets_extracted"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    safe_extract(archive, target)
    assert (target / "notes.txt").read_text() == "mine" and (target / "pets" / "cats" / "a.txt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets.zip", "pets_extracted"]  # no staging left

"""Trust nothing on disk (issue 15): bounded inputs, run files checked, one process per run folder, --overwrite
that keeps a user's files, damaged checkpoints passed over, outputs safe to open. Real files and processes."""

import json
import os
import resource
import struct
import subprocess
import sys
import time
import zlib
from functools import partial
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import cli_run, limited, our_lines, zoo_command, zoo_env, zoo_subprocess

import catdog_zoo
from catdog_zoo.data.limits import ImageError
from catdog_zoo.data.pixels import decode_file
from catdog_zoo.util.files import csv_cell
from catdog_zoo.util.locks import folder_lock


zoo = partial(zoo_subprocess, check=False, timeout=120)  # this file's children: any exit status, 2 minutes at most
CAPPED = limited(resource.RLIMIT_FSIZE, 1_500_000)  # checkpoints fit, model.keras does not: as a full disk would


def png_bomb(path: Path, width: int, height: int, real: bool = False) -> Path:
    """A PNG declaring ``width`` x ``height`` RGB pixels: with ``real``, every row is there (zeros compress
    about 1000:1); without, only the header and one compressed row (enough to be refused by it)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    squeeze = zlib.compressobj(9)
    row = b"\0" * (width * 3 + 1)
    body = b"".join(squeeze.compress(row) for _ in range(height if real else 1)) + squeeze.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_a_pixel_bomb_is_refused_from_its_header(tmp_path):
    bomb = png_bomb(tmp_path / "bomb.png", 23000, 23000)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ImageError, match=r"declares 23000x23000 pixels, more than the 50 million"):
        decode_file(bomb, (32, 32))
    fine = png_bomb(tmp_path / "fine.png", 400, 300, real=True)
    assert decode_file(fine, (32, 32)).shape == (32, 32, 3)


@pytest.mark.slow
def test_data_check_on_real_pixel_bombs_stays_small(tmp_path):
    folder = tmp_path / "bombs"
    for split, n in (("train", 3), ("validation", 2)):
        for cls in ("cats", "dogs"):
            (folder / split / cls).mkdir(parents=True)
            for i in range(n):
                png_bomb(folder / split / cls / f"ok{i}.png", 64, 48, real=True)
    png_bomb(folder / "train" / "cats" / "bomb.png", 9000, 6000, real=True)  # 54 MP: 650 MB as float32 to resize
    png_bomb(folder / "train" / "dogs" / "bomb.png", 23000, 23000)
    # Peak RSS of the data check process, measured by a parent that waits for it (wait4's rusage).
    meter = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); _, status, ru = os.wait4(p.pid, 0); "
             "print('EXIT', os.waitstatus_to_exitcode(status), 'PEAK_KB', ru.ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", meter, *zoo_command("data", "check", "--data", folder)],
                            capture_output=True, text=True, timeout=300, env=zoo_env())
    exit_code, peak_kb = (int(v) for v in result.stdout.rsplit("EXIT", 1)[1].split()[::2])
    print(f"data check on pixel bombs: peak RSS {peak_kb / 1024:.0f} MB")  # shown with -s
    assert exit_code == 1 and result.stdout.count("more than the 50 million an image may have") == 2, result.stdout
    assert peak_kb < 1000 * 1024  # decoding the 48 MP one alone would take about 1.4 GB


def test_run_files_must_be_regular_files(tiny_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("model.keras", "metrics.json"):
        (run / name).write_bytes((tiny_run / name).read_bytes())
    (run / "config.yaml").symlink_to("/dev/zero")
    started = time.perf_counter()
    result = cli_run("evaluate", run, ok=False)
    assert result.exit_code == 2 and "is a symbolic link; only regular files are read" in result.output
    (run / "config.yaml").unlink()
    (run / "config.yaml").write_bytes((tiny_run / "config.yaml").read_bytes())
    (run / "metrics.json").unlink()
    os.mkfifo(run / "metrics.json")  # nobody will ever write to it: reading it would hang
    result = cli_run("evaluate", run, ok=False)
    assert result.exit_code == 1 and "metrics.json is not a regular file" in result.output
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("content, message", [
    ("- a\n- list\n", "mapping"),
    ("model: baseline\n", "missing"),
    ("a: &x [1, 2]\nb: *x\n", "aliases (*name) are not allowed"),
])
def test_a_damaged_run_config_is_one_line(tiny_run, tmp_path, content, message):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("model.keras", "metrics.json"):
        (run / name).write_bytes((tiny_run / name).read_bytes())
    (run / "config.yaml").write_text(content)
    result = cli_run("evaluate", run, ok=False)
    assert result.exit_code in (1, 2) and len(result.output.strip().splitlines()) == 1, result.output
    assert message in result.output


@pytest.mark.parametrize("edit, message", [
    ({"seed": 777}, "is not what it was trained and scored on"),
    ({"image_size": [48, 48]}, "but its model takes [40, 40]"),
])
def test_an_edited_run_config_is_refused_not_scored_in_silence(tiny_run, tmp_path, edit, message):
    import yaml
    run = tmp_path / "run"
    run.mkdir()
    for name in ("model.keras", "metrics.json"):
        (run / name).write_bytes((tiny_run / name).read_bytes())
    config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, **edit}))
    result = cli_run("evaluate", run, ok=False)
    assert result.exit_code == 1 and message in result.output, result.output


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
    config = tmp_path / "bomb.yaml"
    config.write_text(bomb + "data: *i\n")  # 9**9 strings once expanded
    assert config.stat().st_size < 1000
    result = cli_run("train", "baseline", "--config", config, ok=False)
    assert result.exit_code == 2 and "aliases (*name) are not allowed" in result.output
    assert len(result.output) < 500


def test_a_second_process_on_a_run_folder_is_refused(tiny_data, tmp_path):
    run = tmp_path / "run"
    args = ["--data", tiny_data, "--epochs", 1, "--image-size", 32, "--run-dir", run]
    cli_run("train", "baseline", *args)
    (run / "metrics.json").unlink()  # now an unfinished run, as after a kill
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with folder_lock(run):  # this test process holds it, as a running `train --resume` would
        second = zoo("train", "--resume", run)
        assert second.returncode == 1
        line = our_lines(second.stderr)[-1]
        assert f"run directory {run} is in use by process {os.getpid()}" in line, second.stderr
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"} == before
        sweep = tmp_path / "sweep"
        with folder_lock(sweep, what="zoo sweep folder"):
            result = cli_run("zoo", "baseline", "--runs-dir", sweep, "--epochs", 1, "--data", tiny_data, ok=False)
            assert result.exit_code != 0 and "zoo sweep folder" in result.output
    resumed = zoo("train", "--resume", run, "-q")
    assert resumed.returncode == 0, resumed.stderr  # the lock went with its holder


def test_overwrite_keeps_what_the_user_put_in_a_run_folder(tiny_data, tmp_path):
    run = tmp_path / "run"
    args = ["train", "baseline", "--data", tiny_data, "--epochs", 1, "--image-size", 32, "--run-dir", run]
    cli_run(*args)
    (run / "export").mkdir()
    (run / "export" / "mine.tflite").write_bytes(b"the user's own export")
    (run / "export" / "model.tflite").write_bytes(b"an old export of the zoo")
    (run / "export" / "model.tflite.export.json").write_text("{}")  # the zoo's record of its export
    (run / "checkpoints").mkdir(exist_ok=True)
    (run / "checkpoints" / "notes.txt").write_text("mine")
    # What killed processes leave: an export's staging folder, a report's temporary file.
    leftovers = [run / "export" / ".export.zoo-tmp-k1ll3d00", run / ".metrics.zoo-tmp-abc123de.json"]
    leftovers[0].mkdir()
    leftovers[1].write_text("{")
    old = time.time() - 3600
    for path in leftovers:
        os.utime(path, (old, old))
    cli_run(*args, "--overwrite", "--seed", 3)
    assert json.loads((run / "metrics.json").read_text())["seed"] == 3
    assert (run / "export" / "mine.tflite").read_bytes() == b"the user's own export"
    assert (run / "checkpoints" / "notes.txt").read_text() == "mine"
    assert not (run / "export" / "model.tflite").exists()
    assert not any(path.exists() for path in leftovers)


def test_a_damaged_checkpoint_falls_back_to_the_one_before(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    done = catdog_zoo.train("baseline", data=str(tiny_data), epochs=3, image_size=40, run_dir=str(tmp_path / "ref"),
                            quiet=True).metrics
    # A run stopped after its last epoch: a real file-size limit refuses model.keras (as a full disk would).
    stopped = zoo("train", "baseline", "--data", tiny_data, "--epochs", 3, "--image-size", 40,
                  "--run-dir", run, preexec_fn=CAPPED, timeout=300)
    assert stopped.returncode == 1 and "larger than this process may write (ulimit -f" in stopped.stderr
    kept = sorted(p.name for p in (run / "checkpoints").glob("epoch-*"))
    assert kept == ["epoch-0002", "epoch-0003"]  # the newest and its fallback
    weights = run / "checkpoints" / "epoch-0003" / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    resumed = catdog_zoo.resume(run, quiet=True)
    err = capsys.readouterr().err
    assert "checkpoint" in err and "epoch-0003" in err and "resuming from checkpoint epoch-0002 instead" in err
    assert resumed.metrics["epochs"] == 3
    assert resumed.metrics["val_accuracy"] == pytest.approx(done["val_accuracy"], abs=1e-6)
    # An edited state.json is damaged too; with no good checkpoint left the run starts over.
    stopped = zoo("train", "baseline", "--data", tiny_data, "--epochs", 3, "--image-size", 40,
                  "--run-dir", run, "--overwrite", preexec_fn=CAPPED, timeout=300)
    assert stopped.returncode == 1
    for folder in (run / "checkpoints").glob("epoch-*"):
        state = json.loads((folder / "state.json").read_text())
        (folder / "state.json").write_text(json.dumps({**state, "epoch": "many"}))
    catdog_zoo.resume(run, quiet=True)
    assert "resuming from the start instead" in capsys.readouterr().err


def test_outputs_are_safe_to_open(tiny_run, tmp_path, monkeypatch):
    from PIL import Image

    from catdog_zoo.cli.output import echo_json
    assert csv_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert csv_cell("+1+1") == "'+1+1" and csv_cell("-0.25") == "-0.25" and csv_cell("@SUM(A1)") == "'@SUM(A1)"
    monkeypatch.chdir(tmp_path)
    image = Image.fromarray(np.full((40, 40, 3), 200, np.uint8))
    image.save("=cmd()+evil.jpg")
    image.save(os.fsdecode(b"caf\xe9.jpg"))  # a name that is not UTF-8
    cli_run("predict", tiny_run, "=cmd()+evil.jpg", os.fsdecode(b"caf\xe9.jpg"), "--out", "p.csv")
    rows = (tmp_path / "p.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith("'=cmd()+evil.jpg,") and rows[2].startswith("caf\\xe9.jpg,")
    as_json = cli_run("predict", tiny_run, "=cmd()+evil.jpg", "--json", ok=False)
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)[0]["path"] == "=cmd()+evil.jpg"

    @click.command()
    def show():
        echo_json({"loss": float("nan"), "items": [float("inf"), 1.0]})
    assert json.loads(CliRunner().invoke(show).output) == {"loss": None, "items": [None, 1.0]}


def test_a_read_that_fails_for_the_system_is_not_cached(tiny_data, tmp_path):
    """Too many open files while decoding (a real, lowered RLIMIT_NOFILE), then a healthy run."""
    script = f"""
import resource, sys
from catdog_zoo.data.decode import decode_split
from catdog_zoo.data.splits import make_splits
from catdog_zoo.util.digest import files_digest
split = make_splits({str(tiny_data)!r}).train
import os
files_digest(split.paths)  # hashed now (and remembered by this process), before the descriptors run out
held = []
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass  # every descriptor taken: each open of an image fails with EMFILE, as with a real leak
decoded = decode_split(split, (16, 16))
print("skipped", len(decoded.skipped), file=sys.stderr)
"""
    cache = tmp_path / "cache"
    starved = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                             env=zoo_env({"CATDOG_ZOO_CACHE": str(cache)}))
    assert "skipped" in starved.stderr, starved.stderr
    skipped = int(starved.stderr.rsplit("skipped", 1)[1].split()[0])
    assert skipped > 0 and "tried again in the next" in starved.stderr, starved.stderr
    assert not list(cache.glob("decoded-*.entry"))
    healthy = subprocess.run([sys.executable, "-c", script.replace("resource.setrlimit", "(lambda *a: None)")
                              .replace("held.append(os.open(os.devnull, os.O_RDONLY))", "break")],
                             capture_output=True, text=True, timeout=120, env=zoo_env({"CATDOG_ZOO_CACHE": str(cache)}))
    assert "skipped 0" in healthy.stderr, healthy.stderr


def test_export_overwrite_replaces_only_an_export_it_wrote(tiny_run, tmp_path):
    photos = tmp_path / "photos"
    (photos / "2024").mkdir(parents=True)
    (photos / "2024" / "me.jpg").write_bytes(b"a user's photo")
    refused = cli_run("export", tiny_run, "--format", "tflite", "--out", photos, "--overwrite", ok=False)
    assert refused.exit_code == 1 and "is not an export catdog-zoo wrote" in refused.output
    assert (photos / "2024" / "me.jpg").read_bytes() == b"a user's photo"
    into_run = cli_run("export", tiny_run, "--format", "tflite", "--out", tiny_run, "--overwrite", ok=False)
    assert into_run.exit_code == 1 and f"is the run directory {tiny_run.resolve()}" in into_run.output
    assert (tiny_run / "model.keras").is_file()
    out = tmp_path / "m.tflite"
    cli_run("export", tiny_run, "--format", "tflite", "--out", out)
    cli_run("export", tiny_run, "--format", "tflite", "--out", out, "--overwrite")  # its own


def copy_run(run, to):
    to.mkdir(parents=True)
    for name in ("model.keras", "metrics.json", "config.yaml"):
        (to / name).write_bytes((run / name).read_bytes())
    return to


@pytest.mark.parametrize("edit, message", [
    ({"val_accuracy": 7.5}, "'val_accuracy' must be between 0 and 1"),
    ({"train_seconds": -5}, "'train_seconds' must be a non-negative number"),
    ({"class_names": ["cats", "cats"]}, "two or more distinct class names"),
    ({"split_sizes": {"test": "x"}}, "'split_sizes' must be a mapping of split names to image counts"),
])
def test_edited_metrics_are_refused_and_compare_leaves_them_out(tiny_run, tmp_path, edit, message):
    bad = copy_run(tiny_run, tmp_path / "runs" / "bad")
    copy_run(tiny_run, tmp_path / "runs" / "good")
    (bad / "metrics.json").write_text(json.dumps({**json.loads((tiny_run / "metrics.json").read_text()), **edit}))
    named = cli_run("compare", bad, ok=False)
    assert named.exit_code == 1 and message in named.output
    found = cli_run("compare", "--runs-dir", tmp_path / "runs", ok=False)
    assert found.exit_code == 0 and "good" in found.output and f"{bad} left out" in found.output


def test_terminal_control_characters_are_shown_not_obeyed(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "ansi")
    (run / "metrics.json").write_text(json.dumps({**json.loads((tiny_run / "metrics.json").read_text()),
                                                  "model": "\x1b[2J\x1b]0;title\x07evil"}))
    result = cli_run("compare", run, ok=False)
    assert result.exit_code == 0 and "\x1b" not in result.output and "\\x1b[2J" in result.output


def test_a_checkpoint_with_the_wrong_optimizer_or_nan_weights_is_not_used(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    stopped = zoo("train", "baseline", "--data", tiny_data, "--epochs", 3, "--image-size", 40,
                  "--run-dir", run, preexec_fn=CAPPED, timeout=300)
    assert stopped.returncode == 1
    newest = run / "checkpoints" / "epoch-0003"
    weights = dict(np.load(newest / "weights.npz"))
    weights["arr_0"] = np.full_like(weights["arr_0"], np.nan)
    np.savez(newest / "weights.npz", **weights)
    catdog_zoo.resume(run, quiet=True)
    assert "weights.npz holds non-finite values; resuming from checkpoint epoch-0002 instead" in capsys.readouterr().err
    (run / "metrics.json").unlink()
    stopped = zoo("train", "baseline", "--data", tiny_data, "--epochs", 3, "--image-size", 40,
                  "--run-dir", run, "--overwrite", preexec_fn=CAPPED, timeout=300)
    import shutil
    shutil.rmtree(newest)  # resume at epoch 3, continuing epoch 2's optimizer state
    before = run / "checkpoints" / "epoch-0002"
    optimizer = dict(np.load(before / "optimizer.npz"))
    optimizer["arr_2"] = np.zeros((7, 7), np.float32)
    np.savez(before / "optimizer.npz", **optimizer)
    resumed = zoo("train", "--resume", run)
    assert resumed.returncode == 1 and our_lines(resumed.stderr)[-1].startswith(
        f"Error: checkpoint {before} does not match this model's optimizer"), resumed.stderr


def test_a_lock_file_that_is_a_fifo_is_named(tiny_data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / ".lock")
    result = cli_run("train", "baseline", "--data", tiny_data, "--epochs", 1, "--image-size", 32, "--run-dir", run,
                     ok=False)
    assert result.exit_code == 2 and f"the lock file {run / '.lock'} is not a regular file" in result.output


def test_a_key_given_twice_in_a_config_is_refused(tmp_path):
    config = tmp_path / "twice.yaml"
    config.write_text("epochs: 3\nseed: 1\nepochs: 30\n")
    result = cli_run("train", "baseline", "--config", config, ok=False)
    assert result.exit_code == 2 and "key 'epochs' is given twice (line 3" in result.output

"""What a user sees on a terminal: no TensorFlow chatter, and Ctrl-C that says how to go on."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import interruptible, zoo_command, zoo_env, zoo_subprocess
from imagefactory import make_image_folder

from catdog_zoo.training import checkpoints


def test_commands_that_load_tensorflow_print_nothing_on_stderr(tiny_run, tmp_path):
    for args in (["info", "baseline"], ["evaluate", tiny_run, "--split", "test", "--json"]):  # text: a small-split warning
        result = zoo_subprocess(*args)
        assert result.stderr == "", result.stderr
    damaged = make_image_folder(tmp_path / "damaged", n_train=3, n_val=2, size=32)
    good = next((damaged / "train" / "cats").glob("*.jpg"))
    (good.parent / "truncated.jpg").write_bytes(good.read_bytes()[:300])  # libjpeg complains in C++ about it
    checked = zoo_subprocess("data", "check", "--data", damaged, check=False)
    assert checked.returncode == 1 and "truncated or corrupt JPEG data" in checked.stdout
    assert checked.stderr == "", checked.stderr
    failing = zoo_subprocess("evaluate", tiny_run, "--data", "/nonexistent/folder", check=False)
    assert failing.returncode == 2 and failing.stderr.splitlines() == [
        "Error: data folder not found: /nonexistent/folder (and no data source of that name; known: "
        "cats_and_dogs_filtered)"]


def test_the_filter_can_be_turned_off_and_lets_python_errors_through(tmp_path):
    noisy = zoo_subprocess("info", "baseline", env={"CATDOG_ZOO_TF_LOGS": "1"})
    assert "I0000" in noisy.stderr  # TensorFlow's own lines, which the filter removes
    code = ("from catdog_zoo.util.quiet import filter_tensorflow_noise; filter_tensorflow_noise(); import os, sys; "
            "os.write(2, b'I0000 00:00 noise\\nE1125 00:00 1 jpeg_mem.cc:331] Premature end of JPEG data\\n"
            "real C++ error\\n'); print('python warning', file=sys.stderr); "
            "raise SystemExit('python error')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    # Python's own stderr and the filtered C++ stream are separate pipes: the order between them may change.
    assert sorted(result.stderr.splitlines()) == ["python error", "python warning", "real C++ error"]


@pytest.mark.slow
def test_ctrl_c_exits_130_and_says_how_to_resume(tmp_path):
    data = make_image_folder(tmp_path / "data", n_train=48, n_val=16, size=64)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(zoo_command("train", "baseline", "--data", data, "--epochs", 40, "--image-size", 64,
                                        "--run-dir", run_dir, "-q"), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=zoo_env(), preexec_fn=interruptible)
    deadline = time.time() + 240
    while time.time() < deadline and not (checkpoints.latest(run_dir) and
                                          checkpoints.latest(run_dir).name >= "epoch-0002"):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == (f"Interrupted; the run keeps its last finished epoch: continue with "
                                            f"'catdog-zoo train --resume {run_dir}'"), err
    assert checkpoints.latest(run_dir) is not None and not (run_dir / "metrics.json").exists()
    zoo_subprocess("train", "--resume", run_dir, "-q")
    assert (run_dir / "metrics.json").is_file()


def test_the_quick_exit_still_flushes_waits_for_threads_and_runs_exit_hooks(tmp_path):
    """``cli.leave`` skips the interpreter's teardown once TensorFlow is loaded; everything an exit owes the
    user still happens: unflushed output, a thread that is not a daemon finishing its file, atexit handlers."""
    script = f"""
import atexit, threading, time, pathlib, sys
import tensorflow
from catdog_zoo.cli import leave
out = pathlib.Path({str(tmp_path)!r})
atexit.register(lambda: (out / "atexit").write_text("ran"))
threading.Thread(target=lambda: (time.sleep(0.5), (out / "thread").write_text("done"))).start()
print("no newline, not flushed", end="")
leave(sys.argv[1] if sys.argv[1] != "none" else None)
"""
    for code, status in (("none", 0), ("goodbye-from-leave", 1)):
        result = subprocess.run([sys.executable, "-c", script, code], capture_output=True, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert result.returncode == status and result.stdout == "no newline, not flushed"
        assert (tmp_path / "thread").read_text() == "done" and (tmp_path / "atexit").read_text() == "ran"
        assert ("goodbye-from-leave" in result.stderr) == (status == 1)
        for name in ("thread", "atexit"):
            (tmp_path / name).unlink()

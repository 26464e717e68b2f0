"""The notebook path: ``import catdog_zoo`` prints nothing of TensorFlow's while the user's own logging and
warnings still show; ``train`` returns a RunResult that Jupyter shows (its numbers, its curves inline) with its
history as rows and its report at hand; ``compare`` and ``zoo`` return a Leaderboard."""

import base64
import csv
import os
import re
import subprocess
import sys
import webbrowser

import pytest
from conftest import cli_run

import catdog_zoo
from catdog_zoo.runs.layout import REPORT_FILE

SCRIPT = """
import logging, sys, warnings
import catdog_zoo
help(catdog_zoo.train)
logging.warning("my own logging line")
warnings.warn("my own warning")
result = catdog_zoo.train("baseline", data=sys.argv[1], epochs=1, image_size=32, batch_size=8, run_dir=sys.argv[2],
                          quiet=True)
logging.warning("still mine after training")
print(repr(result))
"""


def test_the_api_keeps_tensorflows_lines_off_stderr_and_the_users_own_on_it(tiny_data, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a notebook starts

    def python(run_dir, **extra):
        return subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_data), str(tmp_path / run_dir)],
                              capture_output=True, text=True, env={**env, **extra}, timeout=300)
    quiet = python("run")
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stderr.splitlines()
    assert lines[0] == "WARNING:root:my own logging line" and lines[-1] == "WARNING:root:still mine after training"
    assert any(line.endswith("UserWarning: my own warning") for line in lines)
    assert not [line for line in lines if re.match(r"[IWE]\d{4} |WARNING: All log messages before absl", line)]
    assert "Help on function train" in quiet.stdout and "RunResult(run_dir=" in quiet.stdout
    # The lines are there to hide: with the filter off, TensorFlow prints them (the test above can fail).
    noisy = python("run2", CATDOG_ZOO_TF_LOGS="1")
    assert any(re.match(r"[IWE]\d{4} |WARNING: All log messages before absl", line)
               for line in noisy.stderr.splitlines()), noisy.stderr


def test_a_run_result_shows_itself_and_has_its_history_as_rows(tiny_run, monkeypatch):
    result = catdog_zoo.RunResult.read(tiny_run)
    record = result.record
    history = result.history
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]  # tiny_run: 4 epochs
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "stage"} <= set(history[0])
    with open(tiny_run / "history.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]
    assert history[-1]["val_loss"] == float(last["val_loss"]) and history[-1]["stage"] == last["stage"]
    short = repr(result)
    assert "\n" not in short and len(short) < 250 and short.startswith(f"RunResult(run_dir={str(tiny_run)!r}, "
                                                                     "model='baseline'")
    assert f"val_accuracy={record.val_accuracy:.2%}" in short
    page = result._repr_html_()
    assert f"{record.val_accuracy:.2%}" in page and "baseline" in page and "<script" not in page
    low, high = record.interval("test")  # tiny_run's 4 test images: the interval and the warning say how little
    assert f"95% CI {low * 100:.1f}-{high * 100:.1f}% of 4 images" in page and "Small data: " in page
    curves = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert curves and base64.b64decode(curves.group(1)) == (tiny_run / "learning_curves.png").read_bytes()
    assert result.report_path == tiny_run / REPORT_FILE and result.report_path.is_file()
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    assert result.open_report() is True and opened == [(tiny_run / REPORT_FILE).resolve().as_uri()]


def test_train_returns_a_run_result_and_a_worker_shows_its_facts(tiny_data, tmp_path):
    result = catdog_zoo.train("baseline", data=str(tiny_data), epochs=1, image_size=32, batch_size=8,
                              run_dir=str(tmp_path / "r"), quiet=True)
    assert isinstance(result, catdog_zoo.RunResult) and result.run_dir == tmp_path / "r"
    assert len(result.history) == 1 and result.metrics["model"] == "baseline"
    worker = catdog_zoo.RunResult(None, None, {"worker_index": 1})
    assert repr(worker) == "RunResult(worker={'worker_index': 1})" and worker.history == []
    with pytest.raises(catdog_zoo.ZooError, match="this run has no report"):
        worker.open_report()


def test_compare_and_zoo_return_a_leaderboard(tiny_data, tiny_run, tmp_path):
    board = catdog_zoo.compare(tiny_run)
    assert isinstance(board, list) and [row["model"] for row in board] == ["baseline"] and board[0]["rank"] == 1
    assert any("4 images" in note for note in board.notes)  # tiny_data's test split: 4 images, said
    page = board._repr_html_()
    assert "val acc" in page and f"{board[0]['val_accuracy']:.2%}" in page and "Warning: " in page
    runs = tmp_path / "zoo"
    swept = catdog_zoo.zoo("baseline", epochs=1, data=str(tiny_data), runs_dir=str(runs), quiet=True)
    assert [row["model"] for row in swept] == ["baseline"] and swept.failures == {}
    with pytest.raises(catdog_zoo.ZooError, match="every model failed: baseline: .* made with epochs=1, not 2; "
                                                  "choose another --runs-dir, or pass --overwrite to replace it"):
        catdog_zoo.zoo("baseline", epochs=2, data=str(tiny_data), runs_dir=str(runs), quiet=True)
    replaced = catdog_zoo.zoo("baseline", epochs=2, data=str(tiny_data), runs_dir=str(runs), quiet=True,
                              overwrite=True)
    assert replaced[0]["epochs"] == 2 and catdog_zoo.RunResult.read(runs / "baseline").record.epochs == 2


def test_the_zoo_says_a_failure_once_and_replaces_with_overwrite(tiny_data, tmp_path):
    runs = tmp_path / "zoo"
    cli_run("zoo", "baseline", "--epochs", "1", "--data", tiny_data, "--runs-dir", runs, "-q")
    refused = cli_run("zoo", "baseline", "--epochs", "2", "--data", tiny_data, "--runs-dir", runs, "-q", ok=False)
    assert refused.exit_code == 1 and refused.output.count("made with epochs=1, not 2") == 1
    assert refused.output.splitlines()[-1] == "Error: 1 of 1 models failed: baseline (the reasons are above)"
    replaced = cli_run("zoo", "baseline", "--epochs", "2", "--data", tiny_data, "--runs-dir", runs, "-q", "--overwrite",
                       ok=False)
    assert replaced.exit_code == 0, replaced.output
    assert f"replacing the run in {runs / 'baseline'} (made with epochs=1, not 2)" in replaced.output
    assert catdog_zoo.RunResult.read(runs / "baseline").record.epochs == 2

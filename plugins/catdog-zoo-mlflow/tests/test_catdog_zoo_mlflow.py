"""The MLflow tracker driven through catdog-zoo's tracker protocol (catdog_zoo.TrackerSpec) into a real SQLite store,
and read back through MLflow's own client. Run from a clone without installing the plugin: its module is imported
from the folder above (no conftest.py, so this folder can join any test run without shadowing another's).
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed: pip install -e plugins/catdog-zoo-mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

import catdog_zoo_mlflow  # noqa: E402
from catdog_zoo import TrackerSpec, ZooError  # noqa: E402

EPOCHS = [("head", 1, {"loss": 0.7, "accuracy": 0.5, "val_loss": 0.6, "val_accuracy": 0.55}),
          ("head", 2, {"loss": 0.5, "accuracy": 0.7, "val_loss": 0.45, "val_accuracy": 0.75}),
          ("fine_tune", 3, {"loss": 0.3, "accuracy": 0.9, "val_loss": 0.35, "val_accuracy": 0.85})]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh SQLite store of its own, named the way a user names theirs (MLFLOW_TRACKING_URI)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow puts artifacts in ./mlruns: under tmp_path too
    return uri


def a_run(tmp_path) -> Path:
    run_dir = tmp_path / "runs" / "baseline-1"
    (run_dir / "export" / "1").mkdir(parents=True)
    (run_dir / "model.keras").write_bytes(b"weights")
    (run_dir / "export" / "1" / "saved_model.pb").write_bytes(b"graph")
    return run_dir


def test_a_run_logged_through_the_protocol_reads_back_through_mlflows_client(store, tmp_path, capsys):
    run_dir = a_run(tmp_path)
    tracker = catdog_zoo_mlflow.start(run_dir, {"model": "baseline", "epochs": 3})
    tracker.params({"model": "baseline", "plugin": "catdog-zoo-baseline", "epochs": 3, "image_size": [40, 40],
                    "weights": None})
    for stage, epoch, logs in EPOCHS:
        tracker.epoch(stage, epoch, logs)
    tracker.artifact(run_dir / "model.keras")
    tracker.artifact(run_dir / "export" / "1" / "saved_model.pb")
    tracker.finish("finished", {"val_accuracy": 0.85, "test_accuracy": 0.8, "classes": ["cats", "dogs"]})

    (said,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("MLflow:")]
    assert said == f"MLflow: run {tracker.run_id} in {store}"
    client = MlflowClient(store)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "baseline-1"
    assert client.get_experiment(run.info.experiment_id).name == "catdog-zoo"
    assert run.data.params == {"model": "baseline", "plugin": "catdog-zoo-baseline", "epochs": "3",
                               "image_size": "[40, 40]", "weights": "None"}
    for key in EPOCHS[0][2]:
        history = sorted(client.get_metric_history(tracker.run_id, key), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(epoch, logs[key]) for _, epoch, logs in EPOCHS]
    assert run.data.metrics["final/val_accuracy"] == 0.85 and run.data.metrics["final/test_accuracy"] == 0.8
    assert not any("classes" in key for key in run.data.metrics)  # a list is no metric
    tags = run.data.tags
    assert tags["catdog_zoo.stage"] == "fine_tune" and tags["catdog_zoo.run_dir"] == str(run_dir.resolve())
    assert tags["catdog_zoo.stage.head"] == "epochs 1-2" and tags["catdog_zoo.stage.fine_tune"] == "epochs 3-3"
    assert [a.path for a in client.list_artifacts(tracker.run_id)] == ["export", "model.keras"]
    assert [a.path for a in client.list_artifacts(tracker.run_id, "export/1")] == ["export/1/saved_model.pb"]
    copy = Path(client.download_artifacts(tracker.run_id, "model.keras", str(tmp_path)))
    assert copy.read_bytes() == b"weights"


@pytest.mark.parametrize("status, mlflow_status", [("failed", "FAILED"), ("interrupted", "KILLED"),
                                                   ("unheard-of", "FAILED")])
def test_how_a_run_ended_is_the_mlflow_runs_status(store, tmp_path, status, mlflow_status):
    tracker = catdog_zoo_mlflow.start(a_run(tmp_path), {})
    tracker.epoch("head", 1, {"loss": float("nan"), "accuracy": 0.5})
    tracker.finish(status, {})
    run = MlflowClient(store).get_run(tracker.run_id)
    assert run.info.status == mlflow_status and run.info.end_time is not None
    assert str(run.data.metrics["loss"]) == "nan" and run.data.metrics["accuracy"] == 0.5


def test_params_fit_mlflows_limits_of_name_length_and_count(store, tmp_path):
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    tracker = catdog_zoo_mlflow.start(a_run(tmp_path), {})
    many = {f"key_{i:03d}": i for i in range(150)}  # more than one batch of MLflow's 100
    tracker.params({**many, "long": "x" * (MAX_PARAM_VAL_LENGTH + 500), "odd name!?": 1, "k" * 400: 2,
                    "augment": {"flip": True, "zoom": 0.1}})
    params = MlflowClient(store).get_run(tracker.run_id).data.params
    assert {k: params[k] for k in many} == {k: str(v) for k, v in many.items()}
    assert len(params["long"]) == MAX_PARAM_VAL_LENGTH and params["long"].endswith("...")
    assert params["odd name__"] == "1" and params["k" * 250] == "2"
    assert params["augment.flip"] == "True" and params["augment.zoom"] == "0.1"


def test_without_a_tracking_uri_it_logs_to_mlflow_db_in_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "pets")
    monkeypatch.chdir(tmp_path)
    tracker = catdog_zoo_mlflow.start(a_run(tmp_path), {})
    tracker.artifact(tmp_path / "runs" / "baseline-1" / "model.keras")
    tracker.finish("finished", {})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert f"MLflow: run {tracker.run_id} in {uri}" in capsys.readouterr().out
    run = MlflowClient(uri).get_run(tracker.run_id)
    assert MlflowClient(uri).get_experiment(run.info.experiment_id).name == "pets"
    assert list(tmp_path.glob(f"mlruns/*/{tracker.run_id}/artifacts/model.keras"))  # beside mlflow.db, not in runs/


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("where", ["a regular file", "a server that is down"])
def test_a_store_that_cannot_be_reached_is_one_line_from_start_and_fast(tmp_path, monkeypatch, where):
    (tmp_path / "file").write_text("not a folder")
    uri = f"sqlite:///{tmp_path / 'file' / 'mlflow.db'}" if where == "a regular file" \
        else f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    began = time.monotonic()
    with pytest.raises(ZooError) as refused:
        catdog_zoo_mlflow.start(a_run(tmp_path), {})
    assert time.monotonic() - began < 60  # MLflow's own retries would wait minutes for the server
    message = str(refused.value)
    assert message.startswith(f"MLflow: cannot log to {uri}: ") and "\n" not in message
    assert not set(catdog_zoo_mlflow.PROBE_ENV) & set(os.environ)  # its fail-fast settings were for start alone


def test_a_failure_after_start_is_one_line_for_the_cores_warning(store, tmp_path):
    tracker = catdog_zoo_mlflow.start(a_run(tmp_path), {})
    MlflowClient(store).delete_run(tracker.run_id)  # someone removed it meanwhile: MLflow refuses to log to it
    with pytest.raises(ZooError, match=r"^MLflow: logging epoch 1 failed: ") as refused:
        tracker.epoch("head", 1, {"loss": 0.5})
    assert "\n" not in str(refused.value)


def test_it_registers_the_tracker_named_mlflow_without_importing_mlflow():
    registered = []
    catdog_zoo_mlflow.register_trackers(registered.append)
    (spec,) = registered
    assert isinstance(spec, TrackerSpec) and spec.name == "mlflow" and spec.start is catdog_zoo_mlflow.start
    assert catdog_zoo_mlflow.CATDOG_ZOO_API_VERSION == 3
    code = "import sys, catdog_zoo_mlflow; print('mlflow' in sys.modules)"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert fresh.stdout.strip() == "False"

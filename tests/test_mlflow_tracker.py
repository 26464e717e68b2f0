"""The MLflow tracker plugin (plugins/catdog-zoo-mlflow) as the zoo finds it: registered through
``register_trackers``, started by the zoo's spec, and a real ``train --track mlflow`` read back through MLflow's
own client. Its own tests (the protocol in detail, limits, failures) are in the plugin's folder."""

import csv
import importlib.metadata
import os
from pathlib import Path

import pytest
from conftest import install_dist, zoo_subprocess

mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed (the catdog-zoo-mlflow plugin's dependency: "
                                              "make install, or pip install -e plugins/catdog-zoo-mlflow)")
from mlflow.tracking import MlflowClient  # noqa: E402

from catdog_zoo.plugins import Zoo  # noqa: E402

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "catdog-zoo-mlflow"


@pytest.fixture
def mlflow_plugin(site) -> str:
    """The plugin as installed (``make install``), else laid out in ``site`` as pip would: the PYTHONPATH for a
    child process that must find it."""
    try:
        importlib.metadata.distribution("catdog-zoo-mlflow")
    except importlib.metadata.PackageNotFoundError:
        install_dist(site, "catdog-zoo-mlflow", "0.1.0", {"mlflow": "catdog_zoo_mlflow"},
                     {"catdog_zoo_mlflow": (PLUGIN / "catdog_zoo_mlflow.py").read_text()})
    return os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow's artifacts go to ./mlruns
    return uri


def test_the_zoo_lists_the_mlflow_tracker_and_its_spec_logs_a_run(mlflow_plugin, store, tmp_path):
    spec = Zoo().extension("trackers", "mlflow")
    assert spec.distribution == "catdog-zoo-mlflow" and spec.plugin == "mlflow"
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text('{"val_accuracy": 0.75}')
    tracker = spec.start(run_dir, {"model": "baseline"})
    tracker.params({"model": "baseline", "epochs": 2})
    tracker.epoch("head", 1, {"loss": 0.6, "val_accuracy": 0.5})
    tracker.epoch("fine_tune", 2, {"loss": 0.4, "val_accuracy": 0.75})
    tracker.artifact(run_dir / "metrics.json")
    tracker.finish("interrupted", {"val_accuracy": 0.75})
    client = MlflowClient(store)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "KILLED" and run.data.params == {"model": "baseline", "epochs": "2"}
    assert [(m.step, m.value) for m in client.get_metric_history(tracker.run_id, "loss")] == [(1, 0.6), (2, 0.4)]
    assert [a.path for a in client.list_artifacts(tracker.run_id)] == ["metrics.json"]


def history_rows(run_dir: Path) -> list:
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_train_with_track_mlflow_is_one_mlflow_run_with_the_runs_history(mlflow_plugin, store, tiny_data, tmp_path):
    run_dir = tmp_path / "runs" / "baseline-tiny"
    done = zoo_subprocess("train", "baseline", "--data", tiny_data, "--epochs", 2, "--image-size", 40,
                          "--batch-size", 8, "--run-dir", run_dir, "--track", "mlflow",
                          env={"PYTHONPATH": mlflow_plugin, "MLFLOW_TRACKING_URI": store})
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("catdog-zoo").experiment_id])
    assert done.stdout.count(f"MLflow: run {run.info.run_id} in {store}") == 1
    assert run.info.status == "FINISHED" and run.info.run_name == "baseline-tiny"
    assert run.data.tags["catdog_zoo.run_dir"] == str(run_dir.resolve()) and run.data.params["epochs"] == "2"
    rows = history_rows(run_dir)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        logged = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        assert [m.value for m in logged] == pytest.approx([float(row[key]) for row in rows], rel=1e-5)
        assert [m.step - logged[0].step for m in logged] == list(range(len(rows)))  # one step per epoch
    assert run.data.tags["catdog_zoo.stage"] == rows[-1]["stage"]
    assert "model.keras" in {a.path for a in client.list_artifacts(run.info.run_id)}

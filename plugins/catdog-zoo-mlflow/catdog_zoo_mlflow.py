"""catdog-zoo plugin: an MLflow tracker, ``catdog-zoo train --track mlflow``.

Each training run becomes one MLflow run: the config as params, the four per-epoch numbers as metrics with the
epoch as their step, the files the run keeps as artifacts, and its end as the run's status. The protocol it
follows is :class:`catdog_zoo.TrackerSpec`'s.

Where it logs: MLflow's own tracking URI when one is set (``MLFLOW_TRACKING_URI``, or ``mlflow.set_tracking_uri``
in a notebook), else MLflow's own default made absolute: ``mlflow.db`` (SQLite) in the current folder, artifacts in
``mlruns/`` beside it, where ``mlflow ui`` started in that folder finds them. Not beside the run folders: a runs
folder is searched recursively for ``config.yaml`` + ``metrics.json`` by ``compare``, and the artifacts hold copies
of both. Not a ``./mlruns`` file store: MLflow 3 refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is set.

MLflow is imported when a run starts, never when the plugin is listed: ``catdog-zoo plugins`` stays instant.
"""

import contextlib
import numbers
import os
import re
import time
from pathlib import Path

from catdog_zoo import TrackerSpec, ZooError, hookimpl

CATDOG_ZOO_API_VERSION = 3

EXPERIMENT = "catdog-zoo"  # when MLFLOW_EXPERIMENT_NAME is unset
STORE_FILE = "mlflow.db"  # the default store, in the current folder (MLflow's own default name)
# The protocol's statuses -> MLflow's; anything else means the run did not end well.
STATUSES = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
STAGE_TAG = "catdog_zoo.stage"  # the stage of the latest epoch; "catdog_zoo.stage.NAME": its first and last epoch
FINAL_PREFIX = "final/"  # finish()'s metrics, apart from the per-epoch curves of the same names
# The first contact with a server fails fast (MLflow's default retries take minutes) unless the user set these.
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@hookimpl
def register_trackers(register):
    register(TrackerSpec(name="mlflow", summary="MLflow: params, per-epoch metrics, artifacts and status of each run "
                                                "(MLFLOW_TRACKING_URI, else ./mlflow.db)", start=start))


def one_line(exc: BaseException) -> str:
    """MLflow's and SQLAlchemy's messages run to many lines (SQL, links): their first line, bounded."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first if len(first) <= 300 else first[:297] + "..."


@contextlib.contextmanager
def failing_fast():
    """Around the first contact: a server that is down is said at once, and MLflow's notes on creating its tables
    (two INFO lines on stderr) stay out of the run's output."""
    import logging
    added = {key: value for key, value in PROBE_ENV.items() if key not in os.environ}
    os.environ.update(added)
    quiet = [logging.getLogger(name) for name in ("mlflow.store.db.utils", "alembic")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


def tracking_uri() -> str:
    from mlflow.tracking import get_tracking_uri, is_tracking_uri_set
    return get_tracking_uri() if is_tracking_uri_set() else f"sqlite:///{Path.cwd() / STORE_FILE}"


def start(run_dir, config):
    """A new MLflow run for the training run in ``run_dir``; any failure to reach the store is one line."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ZooError(f"MLflow is not importable ({one_line(exc)}): pip install catdog-zoo-mlflow's "
                       f"dependencies (mlflow-skinny, sqlalchemy, alembic)") from exc
    uri = tracking_uri()
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
    try:
        with failing_fast():
            client = MlflowClient(tracking_uri=uri)
            experiment = client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
            run = client.create_run(experiment_id, run_name=Path(run_dir).name,
                                    tags={"catdog_zoo.run_dir": str(Path(run_dir).resolve()),
                                          "mlflow.source.name": "catdog-zoo"})
    except Exception as exc:  # whatever MLflow, SQLAlchemy or requests raise: the core warns and goes on without it
        raise ZooError(f"MLflow: cannot log to {uri}: {one_line(exc)}") from exc
    print(f"MLflow: run {run.info.run_id} in {uri}", flush=True)
    return MlflowTracker(client, run.info.run_id, Path(run_dir))


def flat(values: dict, prefix: str = "") -> dict:
    """Nested dicts as dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def mlflow_key(key) -> str:
    """A name MLflow takes for a param, metric or tag: its characters (a subset on every OS), no leading dot or
    slash (names may become file paths), at most its length limit."""
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH
    safe = re.sub(r"[^\w.\-/ ]", "_", str(key)).strip("/") or "_"
    safe = re.sub(r"/+", "/", safe)
    if safe.startswith("."):
        safe = "_" + safe
    return safe[:MAX_ENTITY_KEY_LENGTH]


def param_value(value) -> str:
    """Stringified and cut to MLflow's length limit (a long value is marked so, never refused)."""
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    text = str(value)
    return text if len(text) <= MAX_PARAM_VAL_LENGTH else text[:MAX_PARAM_VAL_LENGTH - 3] + "..."


def numbers_only(values: dict) -> dict:
    """The entries MLflow can hold as metrics (numbers; not booleans, not strings or lists)."""
    return {key: float(value) for key, value in values.items()
            if isinstance(value, numbers.Real) and not isinstance(value, bool)}


class MlflowTracker:
    """One MLflow run, written through MLflow's client (no fluent "active run": a notebook's own is untouched)."""

    def __init__(self, client, run_id: str, run_dir: Path):
        self.client, self.run_id, self.run_dir = client, run_id, run_dir
        self.stages = {}  # stage -> [first epoch, last epoch], for its tag

    def _call(self, what: str, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Exception as exc:  # one line for the core's warning, MLflow's traceback kept as the cause
            raise ZooError(f"MLflow: {what} failed: {one_line(exc)}") from exc

    def params(self, params: dict):
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAMS_TAGS_PER_BATCH
        logged = {}
        for key, value in flat(params).items():
            logged.setdefault(mlflow_key(key), param_value(value))
        items = [Param(key, value) for key, value in logged.items()]
        for at in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
            self._call("logging params", self.client.log_batch, self.run_id,
                       params=items[at:at + MAX_PARAMS_TAGS_PER_BATCH])

    def epoch(self, stage: str, epoch: int, logs: dict):
        from mlflow.entities import Metric, RunTag
        now = int(time.time() * 1000)
        metrics = [Metric(mlflow_key(key), value, now, int(epoch)) for key, value in numbers_only(logs).items()]
        span = self.stages.setdefault(stage, [int(epoch), int(epoch)])
        span[1] = int(epoch)
        tags = [RunTag(STAGE_TAG, str(stage)), RunTag(mlflow_key(f"{STAGE_TAG}.{stage}"), f"epochs {span[0]}-{span[1]}")]
        self._call(f"logging epoch {epoch}", self.client.log_batch, self.run_id, metrics=metrics, tags=tags)

    def artifact(self, path):
        path = Path(path)
        try:  # a file inside the run keeps its folder (export/1/...); one outside goes to the top
            folder = path.resolve().parent.relative_to(self.run_dir.resolve()).as_posix()
        except ValueError:
            folder = "."
        folder = None if folder == "." else folder
        if path.is_dir():
            self._call(f"logging {path.name}", self.client.log_artifacts, self.run_id, str(path),
                       "/".join(p for p in (folder, path.name) if p))
        else:
            self._call(f"logging {path.name}", self.client.log_artifact, self.run_id, str(path), folder)

    def finish(self, status: str, metrics: dict):
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        final = [Metric(mlflow_key(FINAL_PREFIX + key), value, now, 0)
                 for key, value in numbers_only(flat(metrics or {})).items()]
        try:
            if final:
                self._call("logging the final metrics", self.client.log_batch, self.run_id, metrics=final)
        finally:  # the run's status is set even when its last metrics could not be
            self._call("ending the run", self.client.set_terminated, self.run_id, STATUSES.get(status, "FAILED"))

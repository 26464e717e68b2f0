"""Experiment trackers (``--track NAME``): an outside tracker hears params once, every epoch, the run's files and
its end; a raising one is warned of once and dropped; an unknown name is one line; ``--tensorboard`` is an alias."""

import json
import re

import pytest
import yaml
from conftest import cli_run, install_dist, interrupted_train

import catdog_zoo
from catdog_zoo.plugins import reset_zoo

# Appends every call it hears, as JSON lines, to the file named in $TRACK_LOG; "fragile" raises on its 2nd epoch,
# "quitter" calls exit() when given the params.
TRACKERS = """
    import json, os
    from catdog_zoo import TrackerSpec, hookimpl

    class Log:
        def __init__(self, name, run_dir, config):
            self.name, self.epochs = name, 0
            self.write("start", str(run_dir), config["epochs"])

        def write(self, *call):
            with open(os.environ["TRACK_LOG"], "a") as f:
                f.write(json.dumps([self.name, *call]) + "\\n")

        def params(self, params):
            if self.name == "quitter":
                raise SystemExit("no tracking server")  # as a client library calling exit() would
            self.write("params", params["model"], params["plugin"], params["learning_rate"])

        def epoch(self, stage, epoch, logs):
            self.epochs += 1
            if self.name == "fragile" and self.epochs == 2:
                raise RuntimeError("the tracking server went away")
            self.write("epoch", stage, epoch, sorted(logs))

        def artifact(self, path):
            assert path.is_absolute(), path
            self.write("artifact", path.name)

        def finish(self, status, metrics):
            self.write("finish", status, metrics.get("val_accuracy") is not None)

    class Quitter(Log):
        def finished(self):  # a helper of its own, named near 'finish': the author is asked whether it meant that
            return False

    @hookimpl
    def register_trackers(register):
        for name in ("log", "fragile", "quitter"):
            made = Quitter if name == "quitter" else Log
            register(TrackerSpec(name=name, summary="logs every call",
                                 start=lambda run_dir, config, name=name, made=made: made(name, run_dir, config)))
"""

OPTIONS = dict(epochs=3, image_size=40, batch_size=8, learning_rate=0.02, seed=3, quiet=True)


@pytest.fixture
def tracked(site, tmp_path, monkeypatch):
    """The tracker plugin installed; a function reading back what each tracker heard."""
    install_dist(site, "catdog-zoo-logtracker", "0.1", {"logtracker": "logtracker_mod"},
                 {"logtracker_mod": TRACKERS})
    reset_zoo()
    log = tmp_path / "track.jsonl"
    monkeypatch.setenv("TRACK_LOG", str(log))

    def calls(name):
        lines = log.read_text().splitlines() if log.exists() else []
        return [call[1:] for call in map(json.loads, lines) if call[0] == name]
    return calls


def test_a_tracker_hears_params_once_every_epoch_the_files_and_the_end(tracked, tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a run folder given relative to here: the tracker is told where it is
    run = catdog_zoo.train("baseline", data=str(tiny_data), run_dir="run", track=["log"], **OPTIONS)
    heard = tracked("log")
    assert heard[0] == ["start", str(tmp_path / "run"), 3]
    assert heard[1] == ["params", "baseline", run.record.plugin, 0.02]
    epochs = [call for call in heard if call[0] == "epoch"]
    assert epochs == [["epoch", "head", e, ["accuracy", "loss", "val_accuracy", "val_loss"]] for e in range(3)]
    artifacts = [call[1] for call in heard if call[0] == "artifact"]
    assert {"model.keras", "metrics.json", "history.csv", "config.yaml", "report.html"} == set(artifacts)
    assert heard[-1] == ["finish", "finished", True] and [c[0] for c in heard].count("params") == 1
    assert yaml.safe_load((run.run_dir / "config.yaml").read_text())["track"] == ["log"]


def test_a_raising_tracker_is_warned_of_once_and_dropped_and_the_run_finishes(tracked, tiny_data, tmp_path, capfd):
    run = catdog_zoo.train("baseline", data=str(tiny_data), run_dir=str(tmp_path / "run"), track=["fragile", "log"],
                           **OPTIONS)
    assert (run.run_dir / "metrics.json").is_file()
    warnings = [line for line in capfd.readouterr().err.splitlines() if "tracker" in line]
    assert warnings == ["Warning: tracker 'fragile' (catdog-zoo-logtracker) failed in epoch (RuntimeError: the "
                        "tracking server went away); dropped for the rest of this run"]
    fragile = tracked("fragile")
    assert [c[0] for c in fragile] == ["start", "params", "epoch"]  # nothing after it raised, not even finish
    assert len([c for c in tracked("log") if c[0] == "epoch"]) == 3  # the other tracker heard every epoch


def test_a_tracker_calling_exit_is_dropped_like_one_raising(tracked, tiny_data, tmp_path, capfd):
    run = catdog_zoo.train("baseline", data=str(tiny_data), run_dir=str(tmp_path / "run"), track=["quitter"],
                           **OPTIONS)
    assert (run.run_dir / "metrics.json").is_file()
    said = capfd.readouterr().err
    assert "tracker 'quitter' (catdog-zoo-logtracker) failed in params (SystemExit: no tracking server)" in said
    assert ("Warning: tracker 'quitter' (catdog-zoo-logtracker) has a method 'finished', which is never called: did "
            "you mean 'finish'?") in said
    assert [c[0] for c in tracked("quitter")] == ["start"]


def test_an_interrupted_run_tells_its_trackers(tracked, tiny_data, tmp_path, monkeypatch):
    interrupted_train(monkeypatch, "baseline", data=str(tiny_data), run_dir=str(tmp_path / "run"), track=["log"],
                      **OPTIONS)
    assert tracked("log")[-1] == ["finish", "interrupted", False]


def test_a_run_resumes_without_a_tracker_uninstalled_since_it_was_interrupted(tracked, tiny_data, tmp_path,
                                                                             monkeypatch, capfd):
    interrupted_train(monkeypatch, "baseline", data=str(tiny_data), run_dir=str(tmp_path / "run"),
                      track=["log"], **OPTIONS)
    monkeypatch.setenv("CATDOG_ZOO_DISABLE", "catdog-zoo-logtracker")
    reset_zoo()
    capfd.readouterr()
    run = catdog_zoo.resume(tmp_path / "run", quiet=True)
    assert (run.run_dir / "metrics.json").is_file()
    warned = [line for line in capfd.readouterr().err.splitlines() if "tracker" in line]
    assert len(warned) == 1 and warned[0].startswith("Warning: tracker 'log', recorded for this run, is not "
                                                     "available (unknown --track 'log' (known: ")
    assert warned[0].endswith("); the run goes on without it")


def test_an_unknown_tracker_is_one_line_naming_the_known_ones(tiny_data, tmp_path):
    result = cli_run("train", "baseline", "--data", tiny_data, "--track", "nope", "--run-dir", tmp_path / "run",
                     ok=False)
    assert result.exit_code == 2 and not (tmp_path / "run").exists()
    assert re.search(r"unknown --track 'nope' \(known: [\w, -]*\btensorboard\b[\w, -]*; see 'catdog-zoo plugins'\)",
                     result.output)  # the built-in one, beside any tracker a plugin installed here adds
    bad = cli_run("train", "baseline", "--track", "no way", ok=False)
    assert bad.exit_code == 2 and "track must be a name or a list of names" in bad.output


def test_tensorboard_flag_is_the_tensorboard_tracker():
    from catdog_zoo.config import resolve_config
    spec = catdog_zoo.get_model_spec("baseline")
    assert resolve_config(spec, None, tensorboard=True).track == ("tensorboard",)
    assert resolve_config(spec, None, tensorboard=True, track=["tensorboard"]).track == ("tensorboard",)
    assert resolve_config(spec, None, track="x").to_dict()["track"] == ["x"]  # a tuple in memory, a list written
    listed = {p["name"]: p for p in json.loads(cli_run("plugins", "--json").output)}
    assert "tensorboard" in listed["catdog_zoo.training.tensorboard"]["trackers"]


def test_overwrite_removes_any_stages_tensorboard_folder_but_never_one_holding_a_users_file(tmp_path):
    from catdog_zoo.runs.layout import create_run_dir
    run = tmp_path / "run"
    for stage in ("head", "polish", "mine"):
        for split in ("train", "validation"):
            (run / "tensorboard" / stage / split).mkdir(parents=True)
            (run / "tensorboard" / stage / split / "events.out.tfevents.1").write_bytes(b"x")
    (run / "tensorboard" / "mine" / "notes.txt").write_text("keep me")
    (run / "config.yaml").write_text("model: baseline\n")
    create_run_dir("baseline", str(run), "runs", overwrite=True)
    assert sorted(p.name for p in (run / "tensorboard").iterdir()) == ["mine"]  # a plugin stage's is ours too
    assert (run / "tensorboard" / "mine" / "notes.txt").read_text() == "keep me"

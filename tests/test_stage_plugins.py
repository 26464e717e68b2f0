"""A training stage from an outside plugin: planned after the built-in ones, trained through its context, in
history.csv, the run record and the curves, resumed across, and a resumed run refused when the plan changed."""

import csv
import json

import pytest
from conftest import cli_run, install_dist, interrupted_train

import catdog_zoo
from catdog_zoo.errors import ZooError
from catdog_zoo.plugins import reset_zoo
from catdog_zoo.training import checkpoints

# Trains the whole model a few more epochs at a tenth of the rate, on every model without a frozen backbone.
POLISH = """
    from catdog_zoo import StageSpec, hookimpl

    CATDOG_ZOO_API_VERSION = 3

    class Polish:
        def __init__(self, epochs, rate):
            self.epochs, self.rate = epochs, rate

        def run(self, context, first, last, checkpoint):
            from catdog_zoo import StageResult
            context.compile(context.net, self.rate)
            context.fit(context.net, first, last, context.images("train", shuffle=True, first_epoch=first),
                        context.images("validation"), checkpoint)
            return StageResult(facts={{"learning_rate": self.rate, "after": [s.name for s in self.planned]}})

    def make(spec, cfg, net, planned):
        if spec.frozen_backbone:
            return None
        stage = Polish({epochs}, cfg.learning_rate / 10)
        stage.planned = planned
        return stage

    @hookimpl
    def register_stages(register):
        register(StageSpec(name="polish", summary="a few more epochs at a tenth of the rate", make=make,
                           order=50, records=("learning_rate",), drawn="polishing starts"))
"""

OPTIONS = dict(epochs=2, image_size=40, batch_size=8, learning_rate=0.02, seed=3, quiet=True)


def install_polish(site, epochs: int = 2):
    install_dist(site, "catdog-zoo-polish", "0.3", {"polish": "polish_mod"},
                 {"polish_mod": POLISH.format(epochs=epochs)})
    reset_zoo()


def stage_column(run_dir) -> list:
    with open(run_dir / "history.csv") as f:
        return [row["stage"] for row in csv.DictReader(f)]


def test_an_outside_stage_is_planned_after_the_builtins_and_shows_in_history_record_and_listing(site, tiny_data,
                                                                                                  tmp_path):
    install_polish(site)
    listed = {p["name"]: p for p in json.loads(cli_run("plugins", "--json").output)}
    assert listed["polish"]["stages"] == ["polish"] and listed["polish"]["status"] == "ok"
    run = catdog_zoo.train("baseline", data=str(tiny_data), run_dir=str(tmp_path / "run"), **OPTIONS)
    assert stage_column(run.run_dir) == ["head", "head", "polish", "polish"]
    polish = run.record.stages["polish"]
    assert polish["epochs"] == 2 and polish["learning_rate"] == pytest.approx(0.002)
    assert polish["after"] == ["head"]  # make() saw the stages planned before it
    assert list(json.loads((run.run_dir / "metrics.json").read_text())["stages"]) == ["head", "polish"]
    assert run.record.total_epochs == 4  # the record counts every stage's epochs, not only the built-in ones


def test_the_curves_mark_where_a_drawn_stage_starts(tmp_path):
    from catdog_zoo.reports.plots import learning_curves
    history = {"stage": ["head", "head", "polish"], "loss": [0.9, 0.6, 0.5], "val_loss": [1.0, 0.7, 0.6],
               "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.5, 0.6, 0.7]}
    plain = learning_curves(history, tmp_path / "plain.png").read_bytes()
    marked = learning_curves(history, tmp_path / "marked.png", marks={"polish": "polishing starts"}).read_bytes()
    unknown = learning_curves(history, tmp_path / "unknown.png", marks={"nowhere": "never drawn"}).read_bytes()
    assert marked != plain and unknown == plain


def test_a_run_interrupted_in_the_outside_stage_resumes_to_the_same_weights(site, tiny_data, tmp_path, monkeypatch):
    install_polish(site)
    straight = catdog_zoo.train("baseline", data=str(tiny_data), run_dir=str(tmp_path / "a"), **OPTIONS)
    interrupted_train(monkeypatch, "baseline", at_epoch=3, data=str(tiny_data), run_dir=str(tmp_path / "b"),
                      **OPTIONS)  # in the first epoch of "polish"
    state = checkpoints.load_state(checkpoints.latest(tmp_path / "b"))
    assert state["stage"] == "polish" and state["plan"] == [["head", 2], ["polish", 2]]
    resumed = catdog_zoo.resume(tmp_path / "b", quiet=True)
    assert stage_column(resumed.run_dir) == stage_column(straight.run_dir)
    assert resumed.record.strategy["weights_sha256"] == straight.record.strategy["weights_sha256"]
    assert (resumed.run_dir / "history.csv").read_text() == (straight.run_dir / "history.csv").read_text()


def test_a_run_is_not_resumed_with_another_plan(site, tiny_data, tmp_path, monkeypatch):
    install_polish(site)
    interrupted_train(monkeypatch, "baseline", data=str(tiny_data), run_dir=str(tmp_path / "run"), **OPTIONS)
    monkeypatch.setenv("CATDOG_ZOO_DISABLE", "polish")
    reset_zoo()
    with pytest.raises(ZooError, match=r"planned as head \(2 epochs\), polish \(2 epochs\), but this installation "
                                       r"plans head \(2 epochs\)"):
        catdog_zoo.resume(tmp_path / "run", quiet=True)


def test_a_stage_plugin_that_makes_no_stage_is_named(site, tiny_data, tmp_path):
    install_dist(site, "bad-stage", "0.1", {"bad": "bad_mod"}, {"bad_mod": """
        from catdog_zoo import StageSpec, hookimpl

        @hookimpl
        def register_stages(register):
            register(StageSpec(name="broken", summary="makes a string", make=lambda *a: "not a stage"))
    """})
    reset_zoo()
    with pytest.raises(ZooError, match=r"stage 'broken' \(bad-stage\) made str, not a stage with an int 'epochs'"):
        catdog_zoo.train("baseline", data=str(tiny_data), run_dir=str(tmp_path / "run"), **OPTIONS)
    assert not (tmp_path / "run" / "config.yaml").exists()  # refused when planned, before the run is written


@pytest.mark.parametrize("body, said", [("raise KeyError('lr')", r"stage 'flaky' \(flaky-stage\) failed: KeyError: 'lr'"),
                                        ("return {'accuracy': 1}", r"stage 'flaky' \(flaky-stage\) returned dict, not "
                                                                   r"a catdog_zoo.StageResult")])
def test_a_stage_plugin_that_fails_or_returns_no_result_is_one_error_naming_it(site, tiny_data, tmp_path, body, said):
    install_dist(site, "flaky-stage", "0.1", {"flaky": "flaky_mod"}, {"flaky_mod": f"""
        from catdog_zoo import StageSpec, hookimpl

        class Flaky:
            epochs = 1

            def run(self, context, first, last, checkpoint):
                {body}

        @hookimpl
        def register_stages(register):
            register(StageSpec(name="flaky", summary="fails when run", make=lambda *a: Flaky()))
    """})
    reset_zoo()
    with pytest.raises(ZooError, match=said):
        catdog_zoo.train("baseline", data=str(tiny_data), run_dir=str(tmp_path / "run"), **OPTIONS)


def test_a_stage_plugin_whose_make_raises_is_named_with_how_to_disable_it(site, tiny_data, tmp_path):
    install_dist(site, "raising-stage", "0.1", {"raising": "raising_mod"}, {"raising_mod": """
        from catdog_zoo import StageSpec, hookimpl

        def make(spec, cfg, net, planned):
            raise RuntimeError("cannot read its settings")

        @hookimpl
        def register_stages(register):
            register(StageSpec(name="raising", summary="fails when planned", make=make))
    """})
    reset_zoo()
    with pytest.raises(ZooError, match=r"^stage 'raising' \(raising-stage\) failed to plan this run: RuntimeError: "
                                       r"cannot read its settings \(disable it with CATDOG_ZOO_DISABLE=raising-stage\)$"):
        catdog_zoo.train("baseline", data=str(tiny_data), run_dir=str(tmp_path / "run"), **OPTIONS)
    assert not (tmp_path / "run").exists()

"""lr-find: fastai's valley and steep rules on the debiased smoothed loss, the warm-up and the divergence left
out, the sweep stopped when the loss diverges, and train's flags (--config, --weights, HxW sizes)."""

import json
import math

import numpy as np
import pytest
import yaml
from conftest import cli_run

from catdog_zoo.training.lr_find import smoothed, steep, valley


def fastai_valley(lrs, losses):
    """fastai's ``valley`` (fastai/callback/schedule.py), transcribed: ``(rate, length of the longest fall)``."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]), max(lds)


def test_valley_is_fastais_rule_on_any_curve():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(400):
        n = int(rng.integers(2, 70))
        losses = list(np.round(rng.normal(size=n).cumsum(), 1))  # rounded: ties, which do not count as a fall
        rates = list(np.geomspace(1e-6, 1.0, n))
        theirs, longest = fastai_valley(rates, losses)
        ours = valley(rates, losses)
        if longest < 3:  # no fall of three points: fastai still answers (an arbitrary point), we do not
            assert ours is None
        else:
            assert ours == theirs
            checked += 1
    assert checked > 300


def test_the_rules_on_known_curves():
    rates = list(np.geomspace(1e-6, 1.0, 60))
    falling = list(np.linspace(2.0, 0.5, 60))  # the loss never stops falling (a head that never diverged)
    assert rates[20] < valley(rates, falling) < rates[35]  # half-way down, not the end of the sweep
    bump = [2.0] * 10 + [1.9, 1.8, 1.2, 1.1, 1.0] + [1.0] * 5  # falls fastest from point 11 to point 12
    assert steep(rates[:20], bump) == rates[11]
    assert steep(rates[:5], [1.0, 1.1, 1.2, 1.3, 1.4]) is None  # never falls
    assert valley(rates[:5], [1.0, 1.1, 1.2, 1.3, 1.4]) is None


def test_the_smoothed_loss_is_debiased():
    # Without the correction the first values would be 2% of the loss: the "fall" the old suggestion found there.
    assert smoothed([2.0] * 6) == pytest.approx([2.0] * 6)
    raw = [3.0, 1.0, 2.0]
    assert smoothed(raw)[1] == pytest.approx((0.98 * 0.02 * 3 + 0.02 * 1) / (1 - 0.98 ** 2))


def test_the_sweep_stops_at_divergence_and_suggests_only_from_the_batches_that_say_something(tiny_data, tmp_path):
    out = tmp_path / "lr.png"
    result = cli_run("lr-find", "baseline", "--data", tiny_data, "--image-size", "40x32", "--batch-size", 8,
                     "--steps", 40, "--start", 1e-5, "--end", 1e3, "--out", out, "--json")
    found = json.loads(result.stdout)
    rates, smooth = found["rates"], found["smoothed"]
    assert found["image_size"] == [40, 32] and out.stat().st_size > 10_000
    # A rate of 1000 wrecks a from-scratch CNN: the sweep ends there, and says why.
    assert len(rates) < 40 and ("diverged" in found["stopped"] or "not finite" in found["stopped"])
    if "diverged" in found["stopped"]:
        assert smooth[-1] > 4 * min(smooth)
    first, last = found["considered"]
    assert first == 4 and last == max(len(rates) - 5, 4)  # the warm-up (a tenth of 40) and the last five
    assert set(found["suggestions"]) == {"valley", "steep"}
    for rate in filter(None, found["suggestions"].values()):
        assert rate in rates[first:last]
    # Two even classes: answering their shares costs ln 2; a sweep that never gets below it suggests nothing.
    assert found["chance_loss"] == pytest.approx(math.log(2))
    raw = found["losses"][first:last]
    medians = [float(np.median(raw[max(0, i - 4):i + 1])) for i in range(len(raw))]
    assert found["learned"] == (min(medians) < math.log(2))
    assert found["suggested"] == (found["suggestions"]["valley"] if found["learned"] else None)


def test_a_sweep_that_saw_no_learning_suggests_nothing(tiny_data, tmp_path):
    # At rates of 1e-12 nothing moves: the loss stays at the untrained network's, far above ln 2.
    said = cli_run("lr-find", "baseline", "--data", tiny_data, "--image-size", 40, "--batch-size", 8, "--steps", 20,
                   "--start", 1e-12, "--end", 1e-11, "--out", tmp_path / "lr.png")
    assert said.stdout.splitlines()[-1] == (
        "No suggestion: between batches 3 and 15 the loss (a running median of 5 batches) never got below 0.69, the loss of answering each "
        "class's share, so no rate made the model learn in this sweep (what falls is its initial error, or the "
        f"network dying at high rates). Keep the configured 0.001, or sweep longer (--steps). Plot: {tmp_path / 'lr.png'}")


def test_lr_find_takes_trains_config_and_says_how_to_use_the_rate(tiny_data, tmp_path):
    config = tmp_path / "mine.yaml"
    # preprocess scales its input, and learns the colour-coded classes within the sweep (baseline, fed raw
    # pixels, does not: see the test above).
    config.write_text(yaml.safe_dump({"model": "preprocess", "data": str(tiny_data), "image_size": 40,
                                      "batch_size": 8, "learning_rate": 0.003, "epochs": 7}))
    found = json.loads(cli_run("lr-find", "--config", config, "--steps", 12, "--out", tmp_path / "a.png",
                               "--json", ok=False).stdout)
    assert found["model"] == "preprocess" and found["configured"] == 0.003 and found["image_size"] == [40, 40]
    said = cli_run("lr-find", "--config", config, "--image-size", "32x40", "--steps", 40, "--start", 1e-5, "--end", 10,
                   "--out", tmp_path / "b.png")
    lines = said.stdout.splitlines()
    assert lines[0].startswith("preprocess: the whole model, on images, ")
    rules = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert set(rules) == {"valley", "steep"} and "fastai's default" in rules["valley"]
    advice = next(line for line in lines if "Train with it:" in line)
    best = next(rate for rate in (rules["valley"].split()[1], rules["steep"].split()[1]) if rate != "-")
    assert advice.endswith(f"catdog-zoo train preprocess --learning-rate {best} --config {config} --image-size 32x40")
    assert lines[-1] == f"Plot: {tmp_path / 'b.png'}"


def test_lr_find_refuses_before_any_work(tiny_data, tmp_path):
    scratch = cli_run("lr-find", "baseline", "--data", tiny_data, "--weights", tmp_path / "none.h5", "--out",
                      tmp_path / "x.png", ok=False)
    assert scratch.exit_code == 2 and "has no pretrained weights; --weights does not apply" in scratch.output
    size = cli_run("lr-find", "baseline", "--data", tiny_data, "--image-size", "40x", "--out", tmp_path / "x.png",
                   ok=False)
    assert size.exit_code == 2 and "must be N or HxW" in size.output
    (tmp_path / "taken.png").write_bytes(b"mine")
    taken = cli_run("lr-find", "baseline", "--data", tiny_data, "--out", tmp_path / "taken.png", ok=False)
    assert taken.exit_code == 1 and "exists; pass --overwrite" in taken.output
    assert (tmp_path / "taken.png").read_bytes() == b"mine" and not (tmp_path / "x.png").exists()
    nothing = cli_run("lr-find", "--out", tmp_path / "x.png", ok=False)
    assert nothing.exit_code == 2 and "give a MODEL" in nothing.output

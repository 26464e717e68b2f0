"""Test-time augmentation: the mean of an image's and its mirror image's probabilities, in predict and evaluate."""

import json

import numpy as np
import pytest
from conftest import cli_run
from PIL import Image

import catdog_zoo


def test_tta_averages_the_image_and_its_mirror(tiny_run, tmp_path):
    pixels = np.random.default_rng(3).integers(0, 255, (40, 40, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    Image.fromarray(pixels[:, ::-1]).save(tmp_path / "mirror.png")
    plain = {r["path"]: r["probabilities"] for r in catdog_zoo.predict(tiny_run, [tmp_path / "a.png",
                                                                                   tmp_path / "mirror.png"])}
    [tta] = catdog_zoo.predict(tiny_run, [tmp_path / "a.png"], tta=True)
    for name, p in tta["probabilities"].items():
        expected = (plain[str(tmp_path / "a.png")][name] + plain[str(tmp_path / "mirror.png")][name]) / 2
        assert p == pytest.approx(expected, abs=1e-5)


def test_evaluate_with_tta_scores_the_averaged_probabilities(tiny_run):
    plain, tta = (catdog_zoo.evaluate(tiny_run, split="validation", tta=t) for t in (False, True))
    assert tta["tta"] is True and plain["tta"] is False and tta["num_images"] == plain["num_images"]
    assert 0 <= tta["accuracy"] <= 1 and np.isfinite(tta["loss"]) and tta["loss"] > 0
    out = cli_run("evaluate", tiny_run, "--tta", "--json", ok=False)
    assert out.exit_code == 0 and json.loads(out.output)["accuracy"] == pytest.approx(tta["accuracy"])

"""Export formats as a registry: the built-in ones registered like a plugin's, a plugin's format getting everything
the core does around an export (record, labels, parity check on the test split, refusal when it disagrees), and
the bundled ONNX plugin (``plugins/catdog-zoo-onnx``): ``export --format onnx`` and the ``onnxruntime`` engine."""

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_run, install_dist, zoo_subprocess
from test_third_party import pip_install_target

from catdog_zoo.plugins import Zoo, reset_zoo

ONNX_PLUGIN = Path(__file__).parents[1] / "plugins" / "catdog-zoo-onnx"
needs_onnx = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime", "tf2onnx")),
                                reason="the ONNX plugin's dependencies (onnx, onnxruntime, tf2onnx) are not installed")

# A plugin's export format: the model as a .keras file (``.keras``) or inside a folder (``dir``), opened again by
# Keras; ``answer`` is what the opened export answers (another answer than the model's: a wrong export).
KERAS_FORMAT = """
    from catdog_zoo import ExporterSpec, hookimpl

    CATDOG_ZOO_API_VERSION = 3

    def write(model, staged, context):
        target = staged
        if "{name}" == "in_folder":
            staged.mkdir()
            target = staged / "model.keras"
        elif "{name}" == "exits":
            raise SystemExit(3)  # a converter calling exit() must not end the user's command without a word
        elif "{name}" == "broken":
            raise RuntimeError("the converter met an op it has never seen\\nand a second line nobody should see")
        model.save(target)
        context.advance()
        if "{name}" == "odd_facts":
            return {{"converter": object()}}  # a fact the report (JSON) cannot hold
        return {{"output": "logits ({name})", "parity_ok": True}}  # a plugin cannot write the core's verdict

    def load(path):
        import keras
        model = keras.saving.load_model(path / "model.keras" if path.is_dir() else path)
        return lambda x: {answer}

    @hookimpl
    def register_exporters(register):
        register(ExporterSpec(name="{name}", summary="Keras' own file", write=write, load=load,
                              suffix="{suffix}"))
"""


def keras_format(site, name: str, suffix: str = ".keras", answer: str = "model.predict_on_batch(x)") -> None:
    install_dist(site, f"fmt-{name}", "0.3", {name: f"{name}_mod"},
                 {f"{name}_mod": KERAS_FORMAT.format(name=name, suffix=suffix, answer=answer)})
    reset_zoo()


def record(out: Path) -> dict:
    return json.loads(out.with_name(out.name + ".export.json").read_text())


def test_the_built_in_formats_are_registered_through_the_hook_like_a_plugins():
    zoo = Zoo()
    saved, tflite = zoo.extension("exporters", "saved_model"), zoo.extension("exporters", "tflite")
    assert saved.distribution == tflite.distribution == "catdog-zoo"
    assert saved.versioned and not saved.quantizations and not tflite.versioned
    assert tflite.suffix == ".tflite" and set(tflite.quantizations) == {"dynamic", "float16", "int8"}
    (builtin,) = [p for p in json.loads(cli_run("plugins", "--json").output) if "saved_model" in p["exporters"]]
    assert builtin["exporters"] == ["saved_model", "tflite"] and builtin["distribution"] == "catdog-zoo"


def test_an_unknown_format_or_an_option_it_does_not_take_is_one_line_before_any_work(tiny_run):
    unknown = cli_run("export", tiny_run, "--format", "pmml", ok=False)
    assert unknown.exit_code == 2 and len(unknown.output.strip().splitlines()) == 1
    known = re.search(r"unknown export format 'pmml' \(known: ([^;]+);", unknown.output).group(1).split(", ")
    assert {"saved_model", "tflite"} <= set(known) and known == sorted(known)  # with whatever plugins add
    quantized = cli_run("export", tiny_run, "--format", "tflite", "--quantize", "int4", ok=False)
    assert quantized.exit_code == 2 and "--quantize int4: --format tflite takes one of none, dynamic" in quantized.output
    versioned = cli_run("export", tiny_run, "--format", "tflite", "--version", 3, ok=False)
    assert versioned.exit_code == 2 and "--version applies to --format saved_model only" in versioned.output
    assert not (tiny_run / "export").exists()


def test_a_plugins_format_gets_the_cores_record_labels_and_parity_check(site, tiny_run, tmp_path):
    keras_format(site, "keras_file")
    out = tmp_path / "m.keras"
    result = cli_run("export", tiny_run, "--format", "keras_file", "--out", out, "--json")
    report = json.loads(result.stdout)
    assert report == record(out) and report["format"] == "keras_file" and report["path"] == str(out)
    assert report["parity_ok"] and report["max_probability_difference"] < 1e-6 and report["parity_images"] == 4
    assert report["output"] == "logits (keras_file)" and report["size_bytes"] == out.stat().st_size
    assert (tmp_path / "m.keras.labels.txt").read_text() == "cats\ndogs\n"
    again = cli_run("export", tiny_run, "--format", "keras_file", "--out", out, ok=False)
    assert again.exit_code == 1 and "exists; pass --overwrite" in again.output  # the core's --overwrite rule
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    default = json.loads(cli_run("export", run, "--format", "keras_file", "--json").stdout)
    assert default["path"] == str(run / "export" / "model.keras")
    keras_format(site, "in_folder", suffix="")
    folder = json.loads(cli_run("export", tiny_run, "--format", "in_folder", "--out", tmp_path / "f",
                                "--json").stdout)
    assert (tmp_path / "f" / "labels.txt").read_text() == "cats\ndogs\n" and folder["parity_ok"]


def test_a_plugins_export_that_disagrees_with_the_keras_model_is_refused_by_the_core(site, tiny_run, tmp_path):
    keras_format(site, "lying", answer="-model.predict_on_batch(x)")  # its write says parity_ok: the core measures
    out = tmp_path / "m.keras"
    result = cli_run("export", tiny_run, "--format", "lying", "--out", out, ok=False)
    assert result.exit_code == 1 and "ABOVE the 0.001 tolerance" in result.output
    assert "Error: the export at" in result.output and "do not ship it" in result.output
    assert record(out)["parity_ok"] is False and record(out)["max_probability_difference"] > 0.05


@pytest.mark.parametrize("answer, said", [("model.predict_on_batch(x)[:1]", "answered shape (1, 2) for 4 images"),
                                          ("model.predict_on_batch(x).repeat(2, axis=1)", "answers 4 classes, the run has 2"),
                                          ("1 / 0", "failed on 4 images: division by zero"),
                                          # NaN compares as "no difference": a NaN export must not pass as faithful
                                          ("model.predict_on_batch(x) * float('nan')", "the export answers NaN")])
def test_an_export_that_answers_wrongly_or_fails_when_checked_is_one_line_and_not_kept(site, tiny_run, tmp_path,
                                                                                         answer, said):
    keras_format(site, "odd", answer=answer)
    result = cli_run("export", tiny_run, "--format", "odd", "--out", tmp_path / "m.keras", ok=False)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1 and said in result.output
    assert sorted(tmp_path.iterdir()) == [tmp_path / "site"]  # an export never checked is taken back


def test_a_plugins_write_that_fails_is_one_line_naming_it_and_leaves_nothing(site, tiny_run, tmp_path):
    keras_format(site, "broken")
    result = cli_run("export", tiny_run, "--format", "broken", "--out", tmp_path / "m.keras", ok=False)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "--format broken (fmt-broken) could not export" in result.output and "op it has never seen" in result.output
    assert sorted(tmp_path.iterdir()) == [tmp_path / "site"]


@pytest.mark.parametrize("name, said", [("exits", "--format exits (fmt-exits) could not export"),
                                        ("odd_facts", "--format odd_facts (fmt-odd_facts): its write() returned facts "
                                                      "that are not plain JSON")])
def test_a_plugins_write_that_calls_exit_or_returns_odd_facts_is_its_error_too(site, tiny_run, tmp_path, name, said):
    keras_format(site, name)
    result = cli_run("export", tiny_run, "--format", name, "--out", tmp_path / "m.keras", ok=False)
    assert result.exit_code == 1 and said in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(tmp_path.iterdir()) == [tmp_path / "site"]


# -- the bundled ONNX plugin ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_plugin(module_site):
    """The plugin as a user has it: installed (``make install`` does), else installed here from its folder."""
    if not importlib.metadata.entry_points(group="catdog_zoo", name="onnx"):
        pip_install_target(ONNX_PLUGIN, module_site)
    reset_zoo()
    import catdog_zoo_onnx
    return catdog_zoo_onnx


@needs_onnx
def test_onnx_is_listed_with_its_exporter_and_engine(onnx_plugin):
    listed = {p["name"]: p for p in json.loads(cli_run("plugins", "--json").output)}
    assert listed["onnx"]["status"] == "ok" and listed["onnx"]["distribution"] == "catdog-zoo-onnx"
    assert listed["onnx"]["exporters"] == ["onnx"] and listed["onnx"]["engines"] == ["onnxruntime"]
    assert onnx_plugin.CATDOG_ZOO_API_VERSION == 3 and onnx_plugin.available() == ""


@needs_onnx
def test_export_onnx_end_to_end_checked_with_onnx_runtime(onnx_plugin, tiny_run, tmp_path):
    import onnxruntime

    from catdog_zoo import load_model
    out = tmp_path / "m.onnx"
    result = cli_run("export", tiny_run, "--format", "onnx", "--out", out)
    report = record(out)
    assert report["format"] == "onnx" and report["parity_ok"] and report["parity_images"] == 4
    assert 0 <= report["max_probability_difference"] < 1e-3 and report["accuracy_export"] == report["accuracy_keras"]
    assert f"max |p_export - p_keras| = {report['max_probability_difference']:.2e} (ok)" in result.output
    assert (tmp_path / "m.onnx.labels.txt").read_text() == "cats\ndogs\n"
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"] and session.get_outputs()[0].name == "logits"
    images = np.random.default_rng(3).uniform(0, 255, (3, 40, 40, 3)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"images": images})[0], load_model(tiny_run).predict_on_batch(images),
                               atol=1e-4)
    refused = cli_run("export", tiny_run, "--format", "onnx", "--quantize", "int8", ok=False)
    assert refused.exit_code == 2 and "--quantize applies to --format tflite only" in refused.output


@needs_onnx
def test_the_onnxruntime_engine_gives_the_keras_layers_features(onnx_plugin):
    from test_engine import frozen_layers, images

    import keras
    spec = Zoo().extension("engines", "onnxruntime")
    assert spec.distribution == "catdog-zoo-onnx" and spec.available() == ""
    layers = frozen_layers()
    engine = spec.load(spec.convert(layers, (32, 32, 3)))
    reference = keras.Sequential(layers)
    for n in (5, 2, 8):  # the batch size changes and changes back
        x = images(n)
        expected = np.asarray(reference(x, training=False))
        assert engine(x).shape == expected.shape and np.abs(engine(x) - expected).max() < 1e-4
    assert "tf2onnx" in spec.runtime() and "onnxruntime" in spec.runtime()


@pytest.mark.slow
@needs_onnx
def test_train_mobilenet_v2_with_the_onnxruntime_engine(onnx_plugin, module_site, keras_home, tiny_data, tmp_path):
    """Needs the core to take any registered ``--engine`` (the engines registry of issue 26): the core converts the
    frozen backbone with the plugin, checks it against Keras and extracts every split's features with it."""
    run_dir = tmp_path / "run"
    zoo_subprocess("train", "mobilenet_v2", "--data", tiny_data, "--epochs", 1, "--engine", "onnxruntime",
                   "--run-dir", run_dir, env={"KERAS_HOME": str(keras_home), "PYTHONPATH": os.pathsep.join(
                       [str(module_site), os.environ.get("PYTHONPATH", "")])})
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["feature_cache"]["engine"] == "onnxruntime" and metrics["feature_cache"]["images_extracted"] > 0

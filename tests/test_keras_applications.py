"""plugins/catdog-zoo-keras-applications: every keras.applications backbone as a model, and `models --bench`.

Only MobileNetV2's ImageNet weights exist offline here, so every backbone is tested with random weights
(``weights=None``, or a weights file saved from such a build, as ``--weights`` takes): the layers, the
preprocessing, the engines and the saving are the same; only the accuracy is not tested.
"""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_run

import catdog_zoo
from catdog_zoo.plugins import reset_zoo

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "catdog-zoo-keras-applications"
DIST = "catdog-zoo-keras-applications"


def _install(site: Path) -> dict:
    """The plugin as pip would install it: its package importable, its pyproject's entry points in a dist-info."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    entry_points = project["entry-points"]["catdog_zoo"]
    info = site / f"{DIST.replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {project['version']}\n")
    (info / "entry_points.txt").write_text("[catdog_zoo]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return entry_points


@pytest.fixture(scope="module")
def kapps(module_site):
    """The plugin installed for this module's tests; its entry points."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(PLUGIN))
        entry_points = _install(module_site)
        reset_zoo()
        yield entry_points
    for name in [m for m in sys.modules if m.startswith("catdog_zoo_keras_applications")]:
        del sys.modules[name]


def ours():
    return [s for s in catdog_zoo.list_models() if s.distribution == DIST]


def test_every_backbone_of_the_installed_keras_is_registered_or_skipped_with_a_reason(kapps):
    import keras
    from catdog_zoo_keras_applications.table import FAMILIES, SKIPPED

    assert sorted(value.rsplit(".", 1)[1] for value in kapps.values()) == sorted(FAMILIES)  # an entry point each
    zoo = catdog_zoo.get_zoo()
    assert all(zoo.plugins[name].status == "ok" for name in kapps), [zoo.plugins[n].errors for n in kapps]
    specs = ours()
    rows = {row.name: row for family in FAMILIES.values() for row in family}
    assert sorted(s.name for s in specs) == sorted(rows) and len(specs) >= 35  # every row, each name once
    constructors = {row.constructor for row in rows.values()}
    available = {n for n in dir(keras.applications) if n[0].isupper() and callable(getattr(keras.applications, n))}
    assert constructors | set(SKIPPED) == available and not constructors & set(SKIPPED)
    assert catdog_zoo.get_model_spec("mobilenet_v2").distribution == "catdog-zoo-mobilenet-v2"  # no clash
    for spec in specs:  # what the trainer and the bench need from each
        assert spec.frozen_backbone == "backbone" and spec.pretrained == "imagenet", spec.name
        assert 60 < spec.imagenet_top1 < 90 and 224 <= spec.defaults.image_size[0] <= 512, spec.name


def test_registering_the_catalogue_loads_neither_keras_nor_tensorflow(kapps, module_site):
    code = ("import sys, catdog_zoo; n = len([s for s in catdog_zoo.list_models() if s.distribution == "
            f"{DIST!r}]); print(n, sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    paths = os.pathsep.join([str(module_site), str(PLUGIN), *sys.path])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": paths})
    assert done.stdout.split("[")[1] == "]\n" and int(done.stdout.split()[0]) == len(ours())


@pytest.mark.parametrize("kind, module", [("tf", "xception"), ("torch", "densenet"), ("caffe", "resnet"),
                                          ("caffe", "vgg16")])
def test_preprocessing_layers_match_keras_preprocess_input_and_load_in_safe_mode(kapps, kind, module, tmp_path):
    import keras
    from catdog_zoo_keras_applications.building import preprocessed

    from catdog_zoo.models.saving import load_model, save_model

    pixels = np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, preprocessed(kind, inputs))
    expected = getattr(keras.applications, module).preprocess_input(pixels.copy())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(pixels)), expected, rtol=1e-6, atol=1e-4)
    save_model(model, tmp_path / "m.keras")  # the layers a saved run holds, read back as predict and serve read them
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(load_model(tmp_path / "m.keras")(pixels)),
                                  keras.ops.convert_to_numpy(model(pixels)))


SMALLEST = ["convnext_tiny", "densenet121", "efficientnet_b0", "efficientnet_v2_b0", "inception_v3", "mobilenet_v1",
            "mobilenet_v3_small", "nasnet_mobile", "resnet50", "resnet50_v2", "vgg16", "xception"]


def test_each_family_builds_small_with_random_weights_as_a_frozen_chain(kapps):
    """The first size of every family (one entry point each) at its smallest input: a model over [0, 255] pixels
    whose frozen backbone the trainer can split off and cache."""
    import keras

    from catdog_zoo.models.frozen import split_frozen

    families = {s.plugin for s in ours()}
    assert {catdog_zoo.get_model_spec(n).plugin for n in SMALLEST} == families
    for name in SMALLEST:
        spec = catdog_zoo.get_model_spec(name)
        size = 75 if name.startswith(("inception", "xception")) else 32
        model = spec.build(3, (size, size), weights=None)
        assert model.output_shape == (None, 3) and not model.get_layer("backbone").trainable, name
        assert split_frozen(model, "backbone") is not None, name
        keras.backend.clear_session()


def test_a_size_below_what_the_backbone_takes_is_one_config_error(kapps):
    with pytest.raises(catdog_zoo.ConfigError, match="model 'xception' needs image_size of at least 71"):
        catdog_zoo.get_model_spec("xception").build(2, (64, 64), weights=None)


def random_weights_file(spec, size, where: Path) -> Path:
    """A no-top weights file of ``spec``'s backbone with random weights: what ``--weights`` takes offline."""
    path = where / f"{spec.name}.weights.h5"
    spec.build(2, (size, size), weights=None).get_layer("backbone").save_weights(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v3_small"])  # one: ~20 s; the others' engine and saving below
def test_one_epoch_on_cached_features_and_the_saved_model_loads_in_safe_mode(kapps, name, tiny_data, tmp_path):
    spec = catdog_zoo.get_model_spec(name)
    weights = random_weights_file(spec, 32, tmp_path)
    result = catdog_zoo.train(name, data=str(tiny_data), weights=str(weights), epochs=1, image_size=32,
                              batch_size=8, engine="tflite", run_dir=str(tmp_path / "run"), quiet=True)
    assert result.metrics["feature_cache"]["used"]
    model = catdog_zoo.load_model(result.run_dir)  # Keras safe mode: no Lambda anywhere in the model
    x = np.random.default_rng(2).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    again = catdog_zoo.load_model(result.run_dir)
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    assert model.get_layer("backbone").count_params() == spec.build(2, (32, 32), None).get_layer(
        "backbone").count_params()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convnext_tiny"])  # ~25 s; ResNet50's (~18 s more) passed when last run alone
def test_tflite_engine_parity_and_safe_mode_round_trip(kapps, name, tmp_path):
    """The TFLite engine converts the frozen part within the trainer's parity tolerance (it raises otherwise), and
    the whole model saves and loads in safe mode with the same outputs (ConvNeXt's LayerScale)."""
    import keras

    from catdog_zoo.models.engine import frozen_engine
    from catdog_zoo.models.extraction import decide
    from catdog_zoo.models.frozen import split_frozen
    from catdog_zoo.models.saving import load_model, save_model

    model = catdog_zoo.get_model_spec(name).build(2, (32, 32), weights=None)
    chain = split_frozen(model, "backbone")
    engine = frozen_engine(chain.frozen, (32, 32, 3), chain.weights_digest(), decide("tflite"), say=pytest.fail)
    assert engine.name == "tflite"
    path = tmp_path / "model.keras"
    save_model(model, path)
    x = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(load_model(path)(x, training=False)),
                               keras.ops.convert_to_numpy(model(x, training=False)), atol=1e-5)


@pytest.mark.slow
def test_models_bench_times_a_small_backbone(kapps):
    bench = ("models", "--bench", "mobilenet_v3_s*", "--images", 4, "--engine", "tensorflow")  # no conversion
    (row,) = json.loads(cli_run(*bench, "--json").stdout)
    assert row["name"] == "mobilenet_v3_small" and row["images_per_s"] > 0 and row["images"] == 4
    assert row["imagenet_top1"] == 68.1 and row["image_size"] == [224, 224] and row["params"] > 900_000
    assert row["engine"] == "tensorflow" and "error" not in row
    header, line = cli_run(*bench).stdout.splitlines()[:2]  # the progress line goes to stderr
    assert header.split() == ["NAME", "INPUT", "PARAMS", "TOP-1", "IMAGES/S", "ENGINE"]
    name, size, params, top1, speed, engine = line.split()
    assert (name, size, top1, engine) == ("mobilenet_v3_small", "224x224", "68.1%", "tensorflow") and float(speed) > 0


def test_bench_flags_without_bench_are_refused(kapps):
    refused = cli_run("models", "--images", 4, ok=False)
    assert refused.exit_code == 2 and "--engine and --images apply only with --bench" in refused.output

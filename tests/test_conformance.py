"""The conformance kit (`catdog-zoo check-plugin`, `catdog_zoo.check_plugin`): every bundled model passes it, and
outside plugins with one defect each fail with that defect named, the other checks still run."""

import json
import re

import pytest
from conftest import GOOD_PLUGIN, cli_run, install_dist
import frozen_plugin
from frozen_plugin import install_frozen

import catdog_zoo
from catdog_zoo.conformance import check_spec, specs_for
from catdog_zoo.conformance.outcome import FAIL, PASS, SKIP

# One distribution, three models, each with one defect the kit must name.
BROKEN = """
    import os
    from catdog_zoo import ModelSpec, hookimpl

    def _cnn(num_classes, image_size, *middle, head=None):
        import keras
        return keras.Sequential([keras.Input(tuple(image_size) + (3,)), *middle,
                                 keras.layers.Conv2D(4, 3, strides=2), keras.layers.GlobalAveragePooling2D(),
                                 head or keras.layers.Dense(num_classes)])

    def ignores_classes(num_classes, image_size):
        return _cnn(2, image_size)  # always two logits, whatever num_classes says

    def with_lambda(num_classes, image_size):
        import keras
        return _cnn(num_classes, image_size, keras.layers.Lambda(lambda t: t / 255.0))  # code saved in the file

    def unseeded(num_classes, image_size):
        import keras
        seed = int.from_bytes(os.urandom(4), "little")  # not from keras.utils.set_random_seed
        return _cnn(num_classes, image_size,
                    head=keras.layers.Dense(num_classes, kernel_initializer=keras.initializers.RandomNormal(seed=seed)))

    @hookimpl
    def register_models(register):
        for name, builder in (("ignores_classes", ignores_classes), ("with_lambda", with_lambda),
                              ("unseeded", unseeded)):
            register(ModelSpec(name=name, summary="one defect", builder=builder))
"""

# A model that builds at 48x48 only: failing "another size" unless its spec says so with the tag.
FIXED = """
    from catdog_zoo import ModelSpec, TrainingDefaults, hookimpl

    def build(num_classes, image_size):
        import keras
        if tuple(image_size) != (48, 48):
            raise ValueError(f"only 48x48, not {{image_size}}")
        return keras.Sequential([keras.Input((48, 48, 3)), keras.layers.Conv2D(4, 3),
                                 keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(num_classes)])

    @hookimpl
    def register_models(register):
        register(ModelSpec(name="{name}", summary="48x48 only", builder=build, tags={tags!r},
                           defaults=TrainingDefaults(image_size=(48, 48))))
"""


def statuses(report) -> dict:
    return {o.check: o.status for o in report.outcomes}


def test_a_good_plugin_passes_every_check_with_a_line_each(site):
    install_dist(site, "good-net", "1.0", {"good": "good_mod"}, {"good_mod": GOOD_PLUGIN.format(
        name="good_net", summary="pooling and a dense layer")})
    result = cli_run("check-plugin", "good_net")
    lines = result.output.splitlines()
    assert lines[0] == "good-net:good_net:" and lines[-1].startswith("good-net:good_net: ")
    checks = dict(re.fullmatch(r"(PASS|FAIL|SKIP)  (.+?) {2,}\S.*", line).group(2, 1) for line in lines[1:-1])
    assert set(checks.values()) <= {PASS, SKIP}
    for passing in ("plugin loads", "metadata", "build 2 classes 160x160", "build 5 classes 96x128", "train step",
                    "seeding", "save/load safe mode", "export saved_model", "export tflite"):
        assert checks[passing] == PASS, result.output
    assert "probabilities within" in result.output
    assert checks["frozen backbone"] == checks["engine tflite"] == SKIP  # no frozen backbone, no engine to check
    assert "0 failed" in lines[-1]


def test_each_defect_is_named_and_the_other_checks_still_run(site):
    install_dist(site, "broken-nets", "0.1", {"broken": "broken_mod"}, {"broken_mod": BROKEN})
    result = cli_run("check-plugin", "broken-nets", "--quick", "--json", ok=False)
    assert result.exit_code == 1
    reports = {r["model"]: {c["check"]: c for c in r["checks"]} for r in json.loads(result.output)}
    assert set(reports) == {"broken-nets:ignores_classes", "broken-nets:with_lambda", "broken-nets:unseeded"}

    classes = reports["broken-nets:ignores_classes"]
    assert classes["build 3 classes 96x128"]["status"] == FAIL
    assert "logits of shape (4, 2) for 3 classes; expected (4, 3)" in classes["build 3 classes 96x128"]["why"]
    assert classes["build 2 classes 160x160"]["status"] == classes["seeding"]["status"] == PASS

    lam = reports["broken-nets:with_lambda"]
    assert lam["save/load safe mode"]["status"] == FAIL
    assert "refusing to load model.keras: it contains code" in lam["save/load safe mode"]["why"]
    assert lam["train step"]["status"] == lam["build 3 classes 96x128"]["status"] == PASS

    seeded = reports["broken-nets:unseeded"]
    assert seeded["seeding"]["status"] == FAIL and "different initial weights" in seeded["seeding"]["why"]
    assert seeded["save/load safe mode"]["status"] == PASS
    # only their defects: nothing else was blamed on them
    assert [sum(c["status"] == FAIL for c in r.values()) for r in reports.values()] == [2, 1, 1]


def test_the_pytest_helper_lists_every_failure_in_one_assertion(site):
    install_dist(site, "broken-nets", "0.1", {"broken": "broken_mod"}, {"broken_mod": BROKEN})
    with pytest.raises(AssertionError) as raised:
        catdog_zoo.check_plugin("broken", quick=True)  # the entry point's name: all its models
    message = str(raised.value)
    assert "broken-nets:ignores_classes: build 3 classes 96x128: logits of shape (4, 2)" in message
    assert "broken-nets:ignores_classes: build 5 classes 96x128: logits of shape (4, 2)" in message
    assert "broken-nets:with_lambda: save/load safe mode: refusing to load" in message
    assert "broken-nets:unseeded: seeding: two builds from the same seed" in message
    assert "check_plugin" in catdog_zoo.PLUGIN_API


def test_a_fixed_size_model_fails_another_size_unless_its_spec_declares_it(site):
    install_dist(site, "fixed-nets", "0.1", {"fixed": "fixed_mod", "tagged": "tagged_mod"},
                 {"fixed_mod": FIXED.format(name="only48", tags=()),
                  "tagged_mod": FIXED.format(name="only48_tagged", tags=("fixed-size",))})
    untagged = check_spec(specs_for("only48")[0], quick=True)
    assert not untagged.ok
    failures = [o for o in untagged.outcomes if o.status == FAIL]
    assert [o.check for o in failures] == [f"build {c} classes 96x128" for c in (2, 3, 5)]
    assert "ValueError: only 48x48" in failures[0].why and "declares tags=('fixed-size',)" in failures[0].why
    assert statuses(untagged)["train step"] == PASS  # the other checks ran at the size it takes

    tagged = check_spec(specs_for("only48_tagged")[0], quick=True)
    assert tagged.ok, tagged.failures()
    assert statuses(tagged)["build at another size"] == SKIP
    assert statuses(tagged)["build 3 classes 48x48"] == PASS


def test_a_frozen_backbone_is_split_and_every_converting_engine_checked(site):
    source = frozen_plugin.SOURCE.format(name="tiny_frozen", size=32, filters=8, seed=None, more=0)
    install_dist(site, "tiny-frozen", "0.1", {"tiny_frozen": "tiny_frozen_mod"}, {"tiny_frozen_mod": source.replace(
        'pretrained="init",', 'pretrained="init", weights_licence="CC0 (made up for a test)",')})
    report = check_spec(specs_for("tiny_frozen")[0])
    assert report.ok, report.failures()
    found = statuses(report)
    assert found["frozen backbone"] == PASS and found["engine tflite"] == PASS
    engine = next(o for o in report.outcomes if o.check == "engine tflite")
    assert "features within" in engine.why and "at 96x128" in engine.why
    assert "built with weights=None: nothing downloaded" in next(o.why for o in report.outcomes
                                                                if o.check == "metadata")


def test_pretrained_weights_without_a_licence_fail_the_metadata_check(site):
    install_frozen(site, "unlicensed", size=32)
    report = check_spec(specs_for("unlicensed")[0], quick=True)
    assert [(o.check, o.why) for o in report.outcomes if o.status == FAIL] == [
        ("metadata", "pretrained source 'init' without weights_licence")]


def test_a_frozen_backbone_the_model_does_not_have_is_named(site):
    install_dist(site, "wrong-backbone", "0.1", {"wrong": "wrong_mod"}, {"wrong_mod": GOOD_PLUGIN.format(
        name="wrong_backbone", summary="names a backbone it lacks").replace(
        'tags=("test",)', 'tags=("test",), frozen_backbone="backbone"')})
    report = check_spec(specs_for("wrong_backbone")[0], quick=True)
    frozen = next(o for o in report.outcomes if o.check == "frozen backbone")
    assert frozen.status == FAIL and "frozen_backbone 'backbone' is not a layer of the model" in frozen.why


def test_an_unknown_name_or_a_plugin_without_models_is_one_line_and_exit_2():
    result = cli_run("check-plugin", "no_such_model", ok=False)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: unknown model or plugin 'no_such_model' (see 'catdog-zoo models' and 'catdog-zoo plugins')"]
    close = cli_run("check-plugin", "baselin", ok=False)
    assert close.exit_code == 2 and "(did you mean baseline?)" in close.output
    builtin = cli_run("check-plugin", "catdog_zoo.default_plugins.cats_and_dogs", ok=False)
    assert builtin.exit_code == 2 and builtin.output.strip().splitlines() == [
        "Error: plugin 'catdog_zoo.default_plugins.cats_and_dogs' registers no models (the kit checks models)"]
    formats = cli_run("check-plugin", "catdog_zoo.runs.builtin_exporters", ok=False)  # formats only: how to check them
    assert formats.exit_code == 2 and "run it on one, e.g. 'catdog-zoo check-plugin baseline'" in formats.output


@pytest.mark.slow
@pytest.mark.parametrize("model", ["baseline", "dropout", "dropout_heavy", "augmentation", "preprocess",
                                   "mobilenet_v2"])
def test_every_bundled_model_passes(model):
    # Without conversions, to keep the suite under 10 minutes on 2 cores: dropout_heavy is dropout's builder with
    # more Dropout layers, which every conversion drops; mobilenet_v2's conversions are each checked elsewhere on
    # the real model (test_realdata: its engines at every conversion, its TFLite export on the test split;
    # test_export_plugins: onnxruntime and ONNX). 'catdog-zoo check-plugin mobilenet_v2' runs them all (46 s).
    quick = model in ("dropout_heavy", "mobilenet_v2")
    reports = catdog_zoo.check_plugin(model, quick=quick)  # raises, listing every failure, when one fails
    assert [r.ok for r in reports] == [True]
    found = statuses(reports[0])
    assert found["seeding"] == PASS
    if not quick:
        assert found["export saved_model"] == found["export tflite"] == PASS
    if model == "mobilenet_v2":  # built with weights=None: nothing downloaded
        assert found["frozen backbone"] == PASS


# An engine that converts anything and computes the wrong features, and a backbone no converter can take.
WRONG_ENGINE = """
    import numpy as np
    from catdog_zoo import EngineSpec, hookimpl

    @hookimpl
    def register_engines(register):
        register(EngineSpec(name="wrong_engine", summary="converts anything, computes halves",
                            convert=lambda layers, shape: b"nothing",
                            load=lambda content: lambda x: np.full((len(x), 8), 0.5, np.float32)))
"""
UNCONVERTIBLE = """
    from catdog_zoo import ModelSpec, hookimpl

    def build(num_classes, image_size, weights=None):
        import keras
        import tensorflow as tf

        class NumpyTanh(keras.layers.Layer):  # runs Python: nothing converts it to TFLite
            def call(self, x):
                y = tf.numpy_function(lambda a: a.clip(-1, 1), [x], tf.float32)
                return tf.ensure_shape(y, x.shape)

        shape = tuple(image_size) + (3,)
        backbone = keras.Sequential([keras.Input(shape), keras.layers.Conv2D(8, 3), NumpyTanh()], name="backbone")
        backbone.trainable = False
        inputs = keras.Input(shape)
        x = backbone(keras.layers.Rescaling(1 / 255)(inputs), training=False)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes)(x))

    @hookimpl
    def register_models(register):
        register(ModelSpec(name="unconvertible", summary="a backbone running Python", builder=build,
                           pretrained="none", weights_licence="none", frozen_backbone="backbone"))
"""


def test_an_engine_off_from_keras_fails_and_one_that_cannot_convert_says_runs_fall_back(site):
    install_frozen(site, "tiny_frozen", size=32, filters=8)
    install_dist(site, "wrong-engine", "0.1", {"wrong_engine": "wrong_engine_mod"},
                 {"wrong_engine_mod": WRONG_ENGINE})
    install_dist(site, "unconvertible", "0.1", {"unconvertible": "unconvertible_mod"},
                 {"unconvertible_mod": UNCONVERTIBLE})
    wrong = next(o for o in check_spec(specs_for("tiny_frozen")[0]).outcomes
                 if o.check == "engine wrong_engine (wrong-engine)")  # a plugin's engine, named with its distribution
    assert wrong.status == FAIL and wrong.why.startswith("features differ from Keras' by")
    assert "runs would refuse this engine and extract with TensorFlow" in wrong.why

    report = check_spec(specs_for("unconvertible")[0])
    tflite = next(o for o in report.outcomes if o.check == "engine tflite")
    assert tflite.status == SKIP and tflite.why.startswith("cannot convert this backbone (")
    assert tflite.why.endswith("runs extract with TensorFlow instead")
    assert statuses(report)["frozen backbone"] == PASS

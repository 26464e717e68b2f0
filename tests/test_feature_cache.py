"""Frozen-backbone models: cached-feature training, its cache keys, and fine-tuning."""

import csv
import json

import keras
import numpy as np
import pytest
from conftest import install_dist
from imagefactory import make_image_folder

import catdog_zoo
from catdog_zoo import load_model
from catdog_zoo.data.decode import decode_split
from catdog_zoo.data.splits import make_splits

FROZEN_PLUGIN = """
    from catdog_zoo import ModelSpec, hookimpl

    def build(num_classes, image_size, weights="init", augment=False):
        import keras
        from catdog_zoo import augmentation, logit_units
        shape = tuple(image_size) + (3,)
        backbone = keras.Sequential([keras.Input(shape), keras.layers.Conv2D(8, 3, activation="relu"),
                                     keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
                                     keras.layers.BatchNormalization()], name="backbone")
        if weights not in ("init", None):
            backbone.load_weights(weights)
        backbone.trainable = False
        inputs = keras.Input(shape)
        x = keras.layers.Rescaling(1 / 255)(inputs)
        if augment:
            x = augmentation(flip="horizontal", rotation=0.1)(x)
        x = backbone(x, training=False)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(logit_units(num_classes))(x))

    def build_aug(num_classes, image_size, weights="init"):
        return build(num_classes, image_size, weights, augment=True)

    @hookimpl
    def register_models(register):
        for name, builder in (("frozen_plain", build), ("frozen_aug", build_aug)):
            register(ModelSpec(name=name, summary="tiny frozen backbone", builder=builder, pretrained="init",
                               frozen_backbone="backbone"))
"""


@pytest.fixture
def frozen_plugin(site):
    install_dist(site, "frozen-test", "0.1", {"frozen": "frozen_test_mod"}, {"frozen_test_mod": FROZEN_PLUGIN})


def train(model, data, run_dir, **kw):
    opts = dict(epochs=3, image_size=32, batch_size=8, quiet=True)
    opts.update(kw)
    return catdog_zoo.train(model, data=str(data), run_dir=str(run_dir), **opts)


def val_images(data, size=32):
    return np.asarray(decode_split(make_splits(data).validation, (size, size)).images, "float32")


def test_full_batch_training_is_the_same_with_and_without_the_cache(frozen_plugin, tiny_data, tmp_path):
    # One batch per epoch makes the order irrelevant, so both paths do exactly the same updates.
    cached = train("frozen_plain", tiny_data, tmp_path / "cached", batch_size=64, aug_views=0,
                   train_precision="float32")
    plain = train("frozen_plain", tiny_data, tmp_path / "plain", batch_size=64, feature_cache=False)
    assert cached.metrics["feature_cache"]["used"] and not plain.metrics["feature_cache"]["used"]
    x = val_images(tiny_data)
    np.testing.assert_allclose(load_model(cached.run_dir).predict(x, verbose=0),
                               load_model(plain.run_dir).predict(x, verbose=0), atol=1e-4)
    assert cached.metrics["val_accuracy"] == pytest.approx(plain.metrics["val_accuracy"])


def test_saved_model_reproduces_the_cached_path_metrics(frozen_plugin, tiny_data, tmp_path):
    run = train("frozen_aug", tiny_data, tmp_path / "run", aug_views=2)
    assert run.metrics["feature_cache"]["misses"] == 4  # 2 train views, validation, test
    for split, key in (("validation", "val"), ("test", "test")):
        end_to_end = catdog_zoo.evaluate(run.run_dir, split=split)
        assert end_to_end["accuracy"] == pytest.approx(run.metrics[f"{key}_accuracy"], abs=1e-6)
        assert end_to_end["loss"] == pytest.approx(run.metrics[f"{key}_loss"], rel=1e-3, abs=1e-5)


def test_bfloat16_is_for_the_training_features_only(frozen_plugin, tiny_data, tmp_path, own_cache):
    """Validation and test features (every recorded score) stay float32: their entries are shared with a float32
    run, and the saved model.keras, run end to end, reproduces the recorded scores."""
    from catdog_zoo.models import openvino_engine
    if not (openvino_engine.available() and openvino_engine.native_bfloat16()):
        pytest.skip("needs OpenVINO on a CPU with native bfloat16")
    reduced = train("frozen_plain", tiny_data, tmp_path / "reduced")  # auto
    fc = reduced.metrics["feature_cache"]
    assert (fc["engine"], fc["train_precision"], fc["misses"]) == ("openvino", "bfloat16", 3)
    full = train("frozen_plain", tiny_data, tmp_path / "full", train_precision="float32")
    fc = full.metrics["feature_cache"]
    assert (fc["train_precision"], fc["hits"], fc["misses"]) == ("float32", 2, 1)  # only train computed again
    for split, key in (("validation", "val"), ("test", "test")):
        end_to_end = catdog_zoo.evaluate(reduced.run_dir, split=split)
        assert end_to_end["loss"] == pytest.approx(reduced.metrics[f"{key}_loss"], rel=1e-4, abs=1e-6)
    again = train("frozen_plain", tiny_data, tmp_path / "again")  # bfloat16 features from the cache, no engine made
    assert again.metrics["feature_cache"]["hits"] == 3 and again.metrics["feature_cache"]["engine"] == ""
    assert again.metrics["feature_cache"]["train_precision"] == "bfloat16"


def test_bfloat16_asked_of_an_engine_without_it_is_one_clear_error(frozen_plugin, tiny_data, tmp_path, own_cache):
    with pytest.raises(catdog_zoo.ConfigError, match="bfloat16 needs --engine openvino or auto, not tflite"):
        train("frozen_plain", tiny_data, tmp_path / "r", engine="tflite", train_precision="bfloat16")
    assert not (tmp_path / "r").exists()  # refused before any work: no half-made run to trip over


def test_augmented_views_differ_and_are_reproducible(frozen_plugin, tiny_data, tmp_path, own_cache):
    from catdog_zoo.models.features import FeatureStore
    from catdog_zoo.models.frozen import split_frozen
    model = catdog_zoo.create_model("frozen_aug", image_size=(32, 32))
    chain = split_frozen(model, "backbone")
    assert [type(layer).__name__ for layer in chain.frozen] == ["Sequential", "GlobalAveragePooling2D"]
    split = make_splits(tiny_data).train
    images = decode_split(split, (32, 32)).images
    def views(store):
        return np.stack([np.asarray(view) for view in store.augmented(images, "digest", 2)])
    first = views(FeatureStore(chain, "m", (32, 32), seed=1))
    assert first.shape == (2, len(split), 8) and not np.allclose(first[0], first[1])
    again = FeatureStore(chain, "m", (32, 32), seed=1)
    np.testing.assert_array_equal(views(again), first)
    assert again.report.hits == 2
    for f in own_cache.glob("features-*"):
        f.unlink()
    recomputed = views(FeatureStore(chain, "m", (32, 32), seed=1))
    np.testing.assert_allclose(recomputed, first, atol=1e-6)  # same seed, same draws, cache or not
    other_seed = views(FeatureStore(chain, "m", (32, 32), seed=2))
    assert not np.allclose(other_seed[0], first[0])


def test_cache_is_invalidated_by_weights_image_size_and_data(frozen_plugin, tmp_path, own_cache):
    data = make_image_folder(tmp_path / "data", n_train=8, n_val=5)
    weights = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        backbone = catdog_zoo.create_model("frozen_plain", image_size=(32, 32)).get_layer("backbone")
        path = tmp_path / f"w{seed}.weights.h5"
        backbone.save_weights(path)
        weights.append(str(path))

    def cache_use(name, **kw):
        opts = dict(weights=weights[0], aug_views=1)
        opts.update(kw)
        fc = train("frozen_plain", data, tmp_path / name, epochs=1, **opts).metrics["feature_cache"]
        return fc["hits"], fc["misses"]

    assert cache_use("first") == (0, 3)
    assert cache_use("same") == (3, 0)
    assert cache_use("other-weights", weights=weights[1]) == (0, 3)
    assert cache_use("other-size", image_size=40) == (0, 3)
    assert cache_use("more-views", aug_views=2) == (3, 1)  # view 0 reused, view 1 new
    from PIL import Image
    with Image.open(data / "train" / "cats" / "img_000.jpg") as img:
        img.rotate(90).save(data / "train" / "cats" / "img_000.jpg")
    assert cache_use("changed-image") == (2, 1)  # validation and test unchanged, train recomputed


def test_fine_tuning_unfreezes_the_top_of_the_backbone(frozen_plugin, tiny_data, tmp_path):
    head_only = train("frozen_plain", tiny_data, tmp_path / "head", epochs=2)
    tuned = train("frozen_plain", tiny_data, tmp_path / "tuned", epochs=2, fine_tune_epochs=2, fine_tune_at=1,
                  fine_tune_learning_rate=0.01)
    rows = list(csv.DictReader((tuned.run_dir / "history.csv").open()))
    assert [r["stage"] for r in rows] == ["head", "head", "fine_tune", "fine_tune"]
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    stages = json.loads((tuned.run_dir / "metrics.json").read_text())["stages"]
    assert stages["fine_tune"]["epochs"] == 2 and stages["fine_tune"]["from_layer"] == 1
    backbones = [load_model(r.run_dir).get_layer("backbone") for r in (head_only, tuned)]
    kernels = [b.layers[i].kernel.numpy() for b in backbones for i in (0, 1)]
    np.testing.assert_array_equal(kernels[0], kernels[2])  # below fine_tune_at: untouched
    assert not np.allclose(kernels[1], kernels[3])  # from fine_tune_at on: trained
    # BatchNorm stays in inference mode: its statistics are the pretrained ones, untouched.
    for name in ("moving_mean", "moving_variance", "gamma", "beta"):
        np.testing.assert_array_equal(getattr(backbones[0].layers[2], name).numpy(),
                                      getattr(backbones[1].layers[2], name).numpy())
    assert catdog_zoo.evaluate(tuned.run_dir)["accuracy"] == pytest.approx(tuned.metrics["val_accuracy"], abs=1e-6)


def test_fine_tuning_errors(frozen_plugin, tiny_data, tmp_path):
    with pytest.raises(catdog_zoo.ConfigError, match="declares no frozen backbone"):
        train("baseline", tiny_data, tmp_path / "a", fine_tune_epochs=1)
    with pytest.raises(catdog_zoo.ConfigError, match="fine_tune_at must be < 3"):
        train("frozen_plain", tiny_data, tmp_path / "b", fine_tune_epochs=1, fine_tune_at=5)
    with pytest.raises(catdog_zoo.ConfigError, match="no layer 'nope'"):
        train("frozen_plain", tiny_data, tmp_path / "c", fine_tune_epochs=1, fine_tune_at="nope")
    assert not any((tmp_path / n).exists() for n in "abc")


def test_training_precision_is_decided_without_an_engine_when_it_can_be():
    from types import SimpleNamespace

    from catdog_zoo.models.precision import training_precision

    class Native:
        native_bfloat16 = True
        spec = SimpleNamespace(shown="OpenVINO")

        def computes(self, precision):
            return True

        def bfloat16(self):
            return lambda x: x

    class Emulated(Native):
        native_bfloat16 = False

    class Broken(Native):
        def bfloat16(self):
            raise RuntimeError("no bfloat16 kernels for this layer")

    made = []
    yes, no = (lambda: True), (lambda: False)
    assert training_precision("float32", yes, lambda: made.append(1)) == "float32"
    assert training_precision("auto", yes, lambda: made.append(1)) == "bfloat16" and made == []  # cached: no engine
    assert training_precision("auto", no, Native) == "bfloat16"
    assert training_precision("auto", no, Emulated) == "float32"  # emulated bfloat16 is slower: not taken
    assert training_precision("bfloat16", no, Emulated) == "bfloat16"  # asked for: given
    assert training_precision("auto", no, Broken) == "float32"
    assert training_precision("auto", no, lambda: None) == "float32"  # TensorFlow: float32
    with pytest.raises(catdog_zoo.ConfigError, match="the OpenVINO engine cannot compile this backbone in bfloat16"):
        training_precision("bfloat16", no, Broken)
    with pytest.raises(catdog_zoo.ConfigError, match="needs an engine that computes in bfloat16"):
        training_precision("bfloat16", no, lambda: None)


def test_auto_precision_is_float32_where_no_engine_computes_bfloat16_natively(monkeypatch):
    """Decided once, before any engine is made (a warm run makes none): bfloat16 only with an engine that
    computes in it natively here."""
    from catdog_zoo.models import extraction, openvino_engine

    monkeypatch.setattr(extraction, "gpu_visible", lambda: False)
    monkeypatch.setattr(openvino_engine, "faster_here", lambda: False)
    assert extraction.decide("auto", "auto") == extraction.Extraction("auto", ("tflite",), "float32")
    assert extraction.decide("openvino", "auto").precision == "float32"
    assert extraction.decide("tflite", "bfloat16").precision == "bfloat16"  # asked: the engine is told, not us
    monkeypatch.setattr(openvino_engine, "faster_here", lambda: True)
    assert extraction.decide("auto", "auto") == extraction.Extraction("auto", ("openvino", "tflite"), "auto")
    assert extraction.decide("tflite", "auto").precision == "float32"
    monkeypatch.setattr(extraction, "gpu_visible", lambda: True)  # the CPU engines would leave the GPU idle
    assert extraction.decide("auto", "auto") == extraction.Extraction("auto", (), "float32")
    assert extraction.decide("tensorflow", "auto") == extraction.IN_TENSORFLOW


def test_a_run_whose_engine_is_missing_here_is_scored_by_keras(frozen_plugin, tiny_data, tmp_path, own_cache,
                                                                monkeypatch):
    from catdog_zoo.models import openvino_engine
    if not openvino_engine.available():
        pytest.skip("needs OpenVINO to make the run")
    run = train("frozen_plain", tiny_data, tmp_path / "run", engine="openvino")
    monkeypatch.setattr(openvino_engine, "available", lambda: False)  # evaluated where the extra is not installed
    scored = catdog_zoo.evaluate(run.run_dir, split="validation")
    assert scored["accuracy"] == pytest.approx(run.metrics["val_accuracy"], abs=1e-6)

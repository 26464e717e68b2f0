"""Fine-tuning on cached activations: the same model as fine-tuning end to end on images, cut where it must be."""

import keras
import numpy as np
import pytest
from frozen_plugin import install_frozen

import catdog_zoo
from catdog_zoo.models.frozen import split_backbone

# A frozen backbone of four layers: fine-tuning from layer 2 trains its third convolution and the head.
@pytest.fixture
def deep_plugin(site):
    install_frozen(site, "deep_frozen", size=32, more_convs=1)  # four layers: a cut to fine-tune above


def test_fine_tuning_on_activations_gives_the_model_fine_tuning_on_images_gives(deep_plugin, tiny_data, tmp_path,
                                                                                 own_cache):
    common = dict(data=str(tiny_data), epochs=2, fine_tune_epochs=3, fine_tune_at=2, fine_tune_learning_rate=1e-2,
                  image_size=32, batch_size=8, engine="tensorflow", quiet=True)
    cached = catdog_zoo.train("deep_frozen", run_dir=str(tmp_path / "cached"), **common)
    images = catdog_zoo.train("deep_frozen", run_dir=str(tmp_path / "images"), feature_cache=False, **common)
    stage = cached.record.stages["fine_tune"]
    assert stage["activations_at"] == 2 and stage["feature_cache"] is True
    assert images.record.stages["fine_tune"]["feature_cache"] is False
    a, b = (catdog_zoo.load_model(r.run_dir) for r in (cached, images))
    tuned = [np.asarray(w) for w in a.get_layer("backbone").layers[2].weights]
    before = catdog_zoo.create_model("deep_frozen", image_size=(32, 32)).get_layer("backbone").layers[2].weights
    assert any(np.abs(t - np.asarray(w)).max() > 1e-3 for t, w in zip(tuned, before)), "layer 2 did not train"
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(np.asarray(wa), np.asarray(wb), atol=2e-4)
    assert cached.record.val_accuracy == pytest.approx(images.record.val_accuracy, abs=1e-6)
    # Scored on cached activations, the record says what the saved whole model does on images.
    assert catdog_zoo.evaluate(cached.run_dir)["accuracy"] == pytest.approx(cached.record.val_accuracy, abs=1e-6)


def test_the_cut_is_the_highest_point_one_tensor_crosses():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4))
    a = keras.layers.Conv2D(4, 1, name="a")(inputs)
    b = keras.layers.Conv2D(4, 1, name="b")(a)
    added = keras.layers.Add(name="skip")([a, b])  # a crosses into 'skip', b too: no single-tensor cut at b
    c = keras.layers.Conv2D(4, 1, name="c")(added)
    backbone = keras.Model(inputs, c)
    names = [layer.name for layer in backbone.layers]
    parts = split_backbone(backbone, names.index("skip"))
    assert parts.cut == names.index("b")  # a alone reaches everything from b on
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 4)).astype("float32")
    np.testing.assert_allclose(parts.upper(parts.lower(x)), backbone(x), atol=1e-6)
    assert split_backbone(backbone, names.index("c")).cut == names.index("c")

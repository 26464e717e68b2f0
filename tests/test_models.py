"""The six reference architectures: layer stacks as in the reference, any number of classes."""

import keras
import numpy as np
import pytest
from conftest import SHARED_WEIGHTS, needs_shared

import catdog_zoo


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("name", ["baseline", "dropout", "dropout_heavy", "augmentation", "preprocess"])
@pytest.mark.parametrize("num_classes", [2, 5])
def test_scratch_cnns_output_one_logit_per_class(name, num_classes):
    model = catdog_zoo.create_model(name, num_classes=num_classes, image_size=(48, 40))
    assert model.input_shape == (None, 48, 40, 3)
    out = model(np.zeros((3, 48, 40, 3), "float32"))
    assert out.shape == (3, num_classes)
    assert model.layers[-1].get_config()["activation"] == "linear"  # logits


def test_reference_layer_stacks():
    stacks = {name: layer_types(catdog_zoo.create_model(name)) for name in
              ["baseline", "dropout", "dropout_heavy", "augmentation", "preprocess"]}
    assert stacks["baseline"] == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten",
                                  "Dense", "Dense"]
    assert stacks["dropout"][4] == "Dropout" and stacks["dropout"].count("Dropout") == 1
    assert stacks["dropout_heavy"].count("Dropout") == 4
    assert stacks["augmentation"][0] == "Sequential" and stacks["augmentation"][1:] == stacks["baseline"]
    assert stacks["preprocess"][:2] == ["Rescaling", "Sequential"] and stacks["preprocess"][2:] == stacks["dropout"]
    # At 160x160 the scratch CNN has the reference's 5,337,250 parameters.
    assert catdog_zoo.create_model("baseline").count_params() == 5_337_250


def test_augmentation_settings_match_the_reference():
    def aug(model):
        seq = next(layer for layer in model.layers if isinstance(layer, keras.Sequential))
        flip, rot = seq.layers
        return flip.get_config()["mode"], tuple(rot.get_config()["factor"])
    assert aug(catdog_zoo.create_model("augmentation")) == ("horizontal_and_vertical", (-0.2, 0.2))
    assert aug(catdog_zoo.create_model("preprocess")) == ("horizontal_and_vertical", (-0.4, 0.4))
    assert aug(catdog_zoo.create_model("mobilenet_v2", weights=None)) == ("horizontal", (-0.3, 0.3))


def test_preprocessing_equals_mobilenet_v2_preprocess_input():
    from catdog_zoo import mobilenet_v2_preprocessing
    x = np.linspace(0, 255, 60, dtype="float32").reshape(1, 4, 5, 3)
    expected = keras.applications.mobilenet_v2.preprocess_input(x.copy())
    np.testing.assert_allclose(mobilenet_v2_preprocessing()(x), expected, atol=1e-6)


@pytest.mark.parametrize("num_classes, units", [(2, 1), (4, 4)])
def test_mobilenet_v2_head_and_frozen_backbone(num_classes, units):
    model = catdog_zoo.create_model("mobilenet_v2", num_classes=num_classes, image_size=(96, 96), weights=None)
    assert model.output_shape == (None, units)
    backbone = model.get_layer("backbone")
    assert not backbone.trainable
    trainable = {w.path for w in model.trainable_weights}
    assert len(trainable) == 2 and all("dense" in p for p in trainable)


@needs_shared
def test_mobilenet_v2_loads_a_local_weights_file():
    model = catdog_zoo.create_model("mobilenet_v2", image_size=(96, 96), weights=str(SHARED_WEIGHTS))
    random = catdog_zoo.create_model("mobilenet_v2", image_size=(96, 96), weights=None)
    first_conv = model.get_layer("backbone").get_layer("Conv1").kernel.numpy()
    assert not np.allclose(first_conv, random.get_layer("backbone").get_layer("Conv1").kernel.numpy())
    import h5py
    with h5py.File(SHARED_WEIGHTS) as f:
        stored = f["Conv1"]["Conv1"]["kernel"][()]
    np.testing.assert_allclose(first_conv, stored)

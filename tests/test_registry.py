"""The registry: names, patterns, qualified names, and the weights rule of a spec."""

import pytest

from catdog_zoo import ModelSpec
from catdog_zoo.errors import ConfigError, UnknownModelError, ZooError
from catdog_zoo.registry import Registry, with_origin


def spec(name, dist="dist-a", pretrained=None):
    calls = []

    def builder(num_classes, image_size, **kwargs):
        import keras
        calls.append((num_classes, image_size, kwargs))
        model = keras.Sequential()  # build() accepts only a keras.Model; this one carries the calls
        model.calls = calls
        return model
    return with_origin(ModelSpec(name=name, summary="s", builder=builder, pretrained=pretrained), name, dist, "1")


def test_list_is_sorted_and_filtered_with_fnmatch():
    reg = Registry()
    for name in ("mobilenet_v2", "baseline", "mobilenet_v3"):
        assert reg.add(spec(name)) is None
    assert [s.name for s in reg.list()] == ["baseline", "mobilenet_v2", "mobilenet_v3"]
    assert [s.name for s in reg.list("mobile*")] == ["mobilenet_v2", "mobilenet_v3"]
    assert [s.name for s in reg.list("dist-a:base*")] == ["baseline"]
    assert reg.list("nothing*") == []


def test_unknown_name_suggests_close_matches():
    reg = Registry()
    reg.add(spec("mobilenet_v2"))
    with pytest.raises(UnknownModelError, match="did you mean mobilenet_v2"):
        reg.get("mobilenet")
    with pytest.raises(UnknownModelError, match="catdog-zoo models"):
        reg.get("zzz")


def test_same_name_from_two_distributions_is_ambiguous_but_qualified_names_work():
    reg = Registry()
    reg.add(spec("net", "dist-a"))
    message = reg.add(spec("net", "dist-b"))
    assert "dist-a and dist-b" in message
    with pytest.raises(ConfigError, match="'dist-a:net' or 'dist-b:net'"):
        reg.get("net")
    assert reg.get("dist-b:net").distribution == "dist-b"
    assert len(reg) == 2


def test_weights_are_passed_only_to_pretrained_specs():
    plain = spec("plain")
    assert plain.build(3, (64, 64)).calls == [(3, (64, 64), {})]
    with pytest.raises(ConfigError, match="no pretrained weights"):
        plain.build(2, None, weights="/some/file.h5")
    pre = spec("pre", pretrained="imagenet")
    assert pre.build(2).calls[-1] == (2, (160, 160), {"weights": "imagenet"})
    assert pre.build(2, weights=None).calls[-1][2] == {"weights": None}
    assert pre.build(2, weights="/w.h5").calls[-1][2] == {"weights": "/w.h5"}


def test_a_builder_that_returns_no_model_is_named():
    odd = with_origin(ModelSpec(name="odd", summary="s", builder=lambda n, s: "not a model"), "odd", "rogue", "1")
    with pytest.raises(ZooError, match="model 'odd' of rogue: its builder returned str, not a keras.Model"):
        odd.build(2)

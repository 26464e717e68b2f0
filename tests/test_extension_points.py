"""The extension points beyond models: engines, exporters, trackers and stages, each a registry a plugin fills
through its hook (catdog_zoo/extensions.py), with the same isolation and naming rules as models."""

import json

import pytest
from conftest import cli_run, install_dist

from catdog_zoo import EngineSpec, ExporterSpec, StageSpec, TrackerSpec
from catdog_zoo.errors import ConfigError
from catdog_zoo.plugins import Zoo

EVERY_KIND = """
    from catdog_zoo import EngineSpec, ExporterSpec, StageSpec, TrackerSpec, hookimpl

    CATDOG_ZOO_API_VERSION = 3

    @hookimpl
    def register_engines(register):
        register(EngineSpec(name="{p}_engine", summary="an engine", load=lambda *a: None))

    @hookimpl
    def register_exporters(register):
        register(ExporterSpec(name="{p}_format", summary="a format", write=lambda *a: {{}}, load=lambda *a: None))

    @hookimpl
    def register_trackers(register):
        register(TrackerSpec(name="{p}_tracker", summary="a tracker", start=lambda *a: None))

    @hookimpl
    def register_stages(register):
        register(StageSpec(name="{p}_stage", summary="a stage", make=lambda *a: None))
"""


def test_a_plugin_registers_one_of_each_kind_and_is_listed_with_them(site):
    install_dist(site, "every-kind", "1.2", {"every": "every_mod"}, {"every_mod": EVERY_KIND.format(p="x")})
    zoo = Zoo()
    info = zoo.plugins["every"]
    assert info.status == "ok", info.errors
    for kind in ("engines", "exporters", "trackers", "stages"):
        (name,) = getattr(info, kind)
        spec = zoo.extension(kind, name)
        assert spec.distribution == "every-kind" and spec.version == "1.2" and spec.plugin == "every"
    listed = {p["name"]: p for p in json.loads(cli_run("plugins", "--json").output)}
    assert listed["every"]["trackers"] == ["x_tracker"] and listed["every"]["stages"] == ["x_stage"]
    text = cli_run("plugins").output
    assert "  engines:\n    x_engine - an engine\n" in text and "  exporters:\n    x_format - a format\n" in text


def test_a_name_taken_stays_the_first_plugins_and_the_second_is_told(site):
    install_dist(site, "first-one", "1.0", {"first": "first_mod"}, {"first_mod": EVERY_KIND.format(p="same")})
    install_dist(site, "second-one", "1.0", {"second": "second_mod"}, {"second_mod": EVERY_KIND.format(p="same")})
    zoo = Zoo()
    owners = {zoo.extension(kind, f"same_{suffix}").distribution
              for kind, suffix in (("engines", "engine"), ("exporters", "format"), ("trackers", "tracker"))}
    assert len(owners) == 1  # whichever loaded first keeps every name
    loser = zoo.plugins["second" if owners == {"first-one"} else "first"]
    assert loser.status == "error" and any("already registered by" in e and "rename it" in e for e in loser.errors)
    assert len(loser.errors) == 4


def test_registering_the_wrong_kind_of_spec_is_the_plugins_error_alone(site):
    install_dist(site, "wrong-kind", "0.1", {"wrong": "wrong_mod"}, {"wrong_mod": """
        from catdog_zoo import ExporterSpec, hookimpl

        @hookimpl
        def register_engines(register):
            register(ExporterSpec(name="fmt", summary="", write=print, load=print))
    """})
    zoo = Zoo()
    (error,) = zoo.plugins["wrong"].errors
    assert "register_engines failed" in error and "takes a catdog_zoo.EngineSpec, got ExporterSpec" in error
    assert "fmt" not in zoo.extensions["engines"] and "baseline" in {s.name for s in zoo.models.list()}


def test_an_unknown_name_is_one_error_listing_what_is_known(site):
    install_dist(site, "every-kind", "1.0", {"every": "every_mod"}, {"every_mod": EVERY_KIND.format(p="k")})
    with pytest.raises(ConfigError, match=r"unknown tracker 'nope' \(known: .*k_tracker"):
        Zoo().extension("trackers", "nope")


def test_a_spec_with_a_name_a_user_cannot_type_is_refused_where_it_is_made():
    for bad in ("", "has space", "semi;colon", "ünï", "Upper", "-flag", "x" * 65):
        with pytest.raises(ValueError, match="name must be"):
            TrackerSpec(name=bad, summary="x", start=print)
    with pytest.raises(ValueError, match="one line"):  # a listing shows summaries one per line
        TrackerSpec(name="ok", summary="two\nlines", start=print)
    assert EngineSpec(name="my-engine_2", summary="", load=print).chunk == 64
    assert ExporterSpec(name="onnx", summary="", write=print, load=print).quantizations == ()
    for suffix in ("npz", "../x", ".a/b"):  # from its dot: the default file is model + suffix, inside export/
        with pytest.raises(ValueError, match="suffix must be"):
            ExporterSpec(name="npz", summary="", write=print, load=print, suffix=suffix)
    assert StageSpec(name="s", summary="", make=print).order == 100


def test_plugins_of_api_version_2_still_load_and_version_4_is_skipped(site):
    install_dist(site, "old-one", "1.0", {"old": "old_mod"}, {"old_mod": EVERY_KIND.format(p="old").replace(
        "CATDOG_ZOO_API_VERSION = 3", "CATDOG_ZOO_API_VERSION = 2")})
    install_dist(site, "new-one", "1.0", {"new": "new_mod"}, {"new_mod": EVERY_KIND.format(p="new").replace(
        "CATDOG_ZOO_API_VERSION = 3", "CATDOG_ZOO_API_VERSION = 4")})
    zoo = Zoo()
    assert zoo.plugins["old"].status == "ok" and "old_engine" in zoo.extensions["engines"]
    assert zoo.plugins["new"].status == "skipped" and "provides 2 and 3" in zoo.plugins["new"].skipped

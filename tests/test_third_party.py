"""Third-party plugins: the scaffold, installing from outside the source tree, API versions, metadata."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_run, install_dist, our_lines, zoo_subprocess

from catdog_zoo.errors import ConfigError
from catdog_zoo.hookspecs import PLUGIN_API_VERSION
from catdog_zoo.plugins import Zoo
from catdog_zoo.scaffold import names_for, scaffold

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "catdog-zoo-mobilenet-v3"


def pip_install_target(src: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True)


def zoo_cli(target: Path, *args, env=None, check=True):
    """``catdog-zoo ARGS`` in a fresh process that also sees the packages under ``target``."""
    return zoo_subprocess(*args, env={"PYTHONPATH": str(target), **(env or {})}, check=check)


def test_names_and_refusals(tmp_path):
    assert names_for("catdog-zoo-tiny-net") == ("catdog_zoo_tiny_net", "tiny_net")
    assert names_for("My.Plugin") == ("my_plugin", "my_plugin")
    with pytest.raises(ConfigError, match="invalid distribution name"):
        names_for("no spaces")
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        scaffold("taken", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]  # no staging folder left behind


@pytest.mark.slow
def test_scaffolded_plugin_installs_lists_trains_passes_its_tests_and_uninstalls(tmp_path, tiny_data):
    result = cli_run("new-plugin", "catdog-zoo-tiny-net", "--dir", tmp_path / "src", ok=False)
    assert result.exit_code == 0 and "model 'tiny_net'" in result.output
    src = tmp_path / "src" / "catdog-zoo-tiny-net"
    assert sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file()) == [
        "README.md", "catdog_zoo_tiny_net.py", "pyproject.toml", "tests/test_catdog_zoo_tiny_net.py"]
    target = tmp_path / "site"

    def listed():
        models = json.loads(zoo_cli(target, "models", "--json", "--no-params").stdout)
        plugins = json.loads(zoo_cli(target, "plugins", "--json").stdout)
        return {m["name"] for m in models}, {p["name"]: p for p in plugins}

    models, plugins = listed()
    assert "tiny_net" not in models and "tiny_net" not in plugins
    pip_install_target(src, target)
    models, plugins = listed()
    assert "tiny_net" in models and "mobilenet_v2" in models
    assert plugins["tiny_net"]["distribution"] == "catdog-zoo-tiny-net" and plugins["tiny_net"]["status"] == "ok"

    run_dir = tmp_path / "run"
    zoo_cli(target, "train", "tiny_net", "--data", tiny_data, "--epochs", 1, "--image-size", 40, "--run-dir", run_dir)
    assert json.loads((run_dir / "metrics.json").read_text())["distribution"] == "catdog-zoo-tiny-net"

    own_tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(src / "tests")],
                               env={**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "2"},
                               capture_output=True, text=True, cwd=tmp_path)
    assert own_tests.returncode == 0 and "3 passed" in own_tests.stdout, own_tests.stdout[-2000:]

    shutil.rmtree(target)  # uninstalling a --target install is removing it
    models, plugins = listed()
    assert "tiny_net" not in models and "tiny_net" not in plugins


@pytest.mark.slow
def test_example_outside_plugin_offline_without_weights_says_what_to_do(tmp_path, tiny_data):
    target = tmp_path / "site"
    pip_install_target(EXAMPLE, target)
    info = json.loads(zoo_cli(target, "models", "mobilenet_v3_small_example", "--json").stdout)
    assert info[0]["name"] == "mobilenet_v3_small_example" and info[0]["pretrained"] == "imagenet"
    assert info[0]["params"] > 900_000 and info[0]["flops"] > 0
    # An empty Keras cache and a proxy that refuses connections: offline, whatever this machine has.
    offline = {"KERAS_HOME": str(tmp_path / "empty-keras"), "https_proxy": "http://127.0.0.1:9",
               "HTTPS_PROXY": "http://127.0.0.1:9"}
    result = zoo_cli(target, "train", "mobilenet_v3_small_example", "--data", tiny_data, "--epochs", 1,
                     "--run-dir", tmp_path / "run", "-q", env=offline, check=False)
    assert result.returncode == 1
    ours = our_lines(result.stderr)
    assert len(ours) == 1, result.stderr
    assert ours[0].startswith(f"Error: model 'mobilenet_v3_small_example' needs its imagenet weights: not in the Keras "
                              f"cache ({tmp_path / 'empty-keras'}) and could not be downloaded (URL fetch failure on ")
    # The file keras.applications asked for, whatever plugin built it (the name follows the model and its size).
    assert re.search(r"set KERAS_HOME to a folder holding models/weights_mobilenet_v3_small\S*_no_top\S*\.h5, "
                     r"or pass --weights PATH", ours[0]), ours[0]
    assert "Traceback" not in result.stderr


def test_incompatible_api_version_is_skipped_and_never_imported(site, tmp_path):
    marker = tmp_path / "imported.txt"
    install_dist(site, "future-plugin", "3.0", {"future": "future_mod"}, {"future_mod": f"""
        CATDOG_ZOO_API_VERSION = {PLUGIN_API_VERSION + 1}
        open({str(marker)!r}, "w").write("imported")
    """})
    install_dist(site, "current-plugin", "1.0", {"current": "current_mod"}, {"current_mod": f"""
        CATDOG_ZOO_API_VERSION = {PLUGIN_API_VERSION}
    """})
    zoo = Zoo()
    future = zoo.plugins["future"]
    assert future.status == "skipped" and f"plugin API {PLUGIN_API_VERSION + 1}" in future.skipped
    assert not marker.exists()
    assert zoo.plugins["current"].status == "ok"
    out = cli_run("plugins", ok=False).output
    assert "future (future-plugin 3.0) [skipped]" in out
    assert f"skipped: written for plugin API {PLUGIN_API_VERSION + 1}" in out


def test_hook_reference_in_docs_matches_hookspecs():
    """docs/plugins.md documents every hook with every argument its spec takes."""
    import inspect

    from catdog_zoo import hookspecs
    from catdog_zoo.plugins import HOOK_NAMES
    docs = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    for name in HOOK_NAMES:
        args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"`{name}({args})`" in docs, f"{name}({args}) is not documented as in hookspecs.py"
    assert f"PLUGIN_API_VERSION = {PLUGIN_API_VERSION}" in docs or f"API version {PLUGIN_API_VERSION}" in docs


def test_models_json_carries_metadata():
    rows = json.loads(cli_run("models", "mobilenet_v2", "--json", ok=False).output)
    m = rows[0]
    assert (m["params"], m["image_size"], m["pretrained"]) == (2_259_265, [224, 224], "imagenet")
    assert 500e6 < m["flops"] < 700e6  # about 300M multiply-adds at 224x224
    assert m["weights_licence"].startswith("Apache-2.0") and m["version"] == "0.1.0"


def test_plugin_data_source_is_usable_as_data_name(site, tiny_data):
    install_dist(site, "catdog-zoo-tinyset", "0.2", {"tinyset": "tinyset_mod"}, {"tinyset_mod": f"""
        from pathlib import Path
        from catdog_zoo import hookimpl
        from catdog_zoo import DataSource

        @hookimpl
        def register_datasets(register):
            register(DataSource("tinyset", "generated colour squares", lambda: Path({str(tiny_data)!r})))
    """})
    plugins = json.loads(cli_run("plugins", "--json", ok=False).output)
    assert next(p for p in plugins if p["name"] == "tinyset")["datasets"] == ["tinyset"]
    stats = json.loads(cli_run("data", "stats", "--data", "tinyset", "--json", ok=False).output)
    assert stats["root"] == str(tiny_data) and stats["totals"]["train"] == 32
    unknown = cli_run("data", "stats", "--data", "nosuchset", ok=False)
    assert unknown.exit_code == 2 and "known: cats_and_dogs_filtered, tinyset" in unknown.output


@pytest.mark.slow
def test_install_and_uninstall_go_into_the_tools_own_environment(tmp_path):
    cli_run("new-plugin", "catdog-zoo-inst-net", "--dir", tmp_path)
    src = tmp_path / "catdog-zoo-inst-net"
    try:
        added = zoo_subprocess("install", "--no-deps", "--no-build-isolation", "-q", src)
        assert "New plugins: inst_net (catdog-zoo-inst-net)" in added.stdout, added.stdout + added.stderr
        models = json.loads(zoo_subprocess("models", "--json", "--no-params").stdout)
        assert "inst_net" in {m["name"] for m in models}
    finally:
        unasked = zoo_subprocess("uninstall", "catdog-zoo-inst-net", check=False)
        removed = zoo_subprocess("uninstall", "catdog-zoo-inst-net", "-y", check=False)
    assert unasked.returncode == 1 and "no terminal to ask on: pass -y" in unasked.stderr
    assert "Traceback" not in unasked.stderr + unasked.stdout
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip().splitlines() == ["Removed catdog-zoo-inst-net-0.1.0"], removed.stdout
    models = json.loads(zoo_subprocess("models", "--json", "--no-params").stdout)
    assert "inst_net" not in {m["name"] for m in models}
    # A plugin that installs but cannot load is named with its error by install itself.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "catdog_zoo_inst_broken.py").write_text("import not_a_real_module\n")
    (broken / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "catdog-zoo-inst-broken"\nversion = "0.1"\n[tool.setuptools]\n'
        'py-modules = ["catdog_zoo_inst_broken"]\n'
        '[project.entry-points.catdog_zoo]\ninst_broken = "catdog_zoo_inst_broken"\n')
    try:
        added = zoo_subprocess("install", "--no-deps", "--no-build-isolation", "-q", broken)
        assert ("Warning: inst_broken (catdog-zoo-inst-broken) is installed but failed to load: "
                "failed to load: ModuleNotFoundError: No module named 'not_a_real_module'") in added.stderr, \
            added.stderr
    finally:
        assert zoo_subprocess("uninstall", "catdog-zoo-inst-broken", "-y", check=False).returncode == 0


def test_new_plugin_says_to_install_with_catdog_zoos_own_pip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli_run("new-plugin", "catdog-zoo-tiny-net")
    assert result.output.splitlines()[-1] == ("Next: catdog-zoo install -e './catdog-zoo-tiny-net[test]' && "
                                             "catdog-zoo models tiny_net")
    readme = (tmp_path / "catdog-zoo-tiny-net" / "README.md").read_text()
    assert 'catdog-zoo install -e ".[test]"' in readme and 'pip install -e ".[test]"' not in readme
    assert "pypi.org" not in readme  # catdog-zoo is installed from its clone, not from a package index
    elsewhere = cli_run("new-plugin", "catdog-zoo-far", "--dir", tmp_path / "my plugins", ok=False)
    assert f"Next: catdog-zoo install -e '{tmp_path}/my plugins/catdog-zoo-far[test]'" in elsewhere.output


def test_with_no_model_installed_the_reference_plugins_are_named(monkeypatch):
    import catdog_zoo.plugins as plugins
    monkeypatch.setattr(plugins, "_zoo", Zoo(entry_points=[]))  # the core alone: only its built-in data source
    folder = Path(plugins.__file__).resolve().parents[1] / "plugins"
    listed = cli_run("models", "--no-params", ok=False)
    assert listed.output == f"No models installed. The reference models are plugins in this clone: catdog-zoo " \
                            f"install {folder}/*/\n"
    assert {p.name for p in folder.glob("*/")} >= {"catdog-zoo-mobilenet-v2", "catdog-zoo-baseline"}
    train = cli_run("train", "mobilenet_v2", ok=False)
    assert train.exit_code == 2 and "no models are installed" in train.output and f"install {folder}/*/" in train.output


@pytest.mark.slow
def test_install_says_one_line_and_shows_pip_only_when_it_fails(tmp_path):
    cli_run("new-plugin", "catdog-zoo-quiet-net", "--dir", tmp_path)
    target = tmp_path / "site"  # --target: the shared environment stays as it is
    done = zoo_subprocess("install", "--no-deps", "--no-build-isolation", "--target", target,
                          tmp_path / "catdog-zoo-quiet-net")
    assert done.stdout.splitlines()[0] == "Installed catdog-zoo-quiet-net-0.1.0"
    assert "Processing" not in done.stdout + done.stderr and "Building" not in done.stdout + done.stderr
    assert (target / "catdog_zoo_quiet_net.py").is_file()
    failed = zoo_subprocess("install", "--no-deps", "--no-index", "--target", target, tmp_path / "nowhere",
                            check=False)
    assert failed.returncode == 1 and "nowhere" in failed.stderr and "ERROR" in failed.stderr  # pip's own words
    assert failed.stderr.rstrip().splitlines()[-1].startswith("Error: pip install --no-deps --no-index --target")

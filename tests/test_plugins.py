"""The plugin system: discovery, isolation of broken plugins, conflicts, disabling, commands."""

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from conftest import GOOD_PLUGIN, cli_run, install_dist

from catdog_zoo.cli import cli
from catdog_zoo.errors import ConfigError
from catdog_zoo.plugins import Zoo

REFERENCE_MODELS = {"baseline", "dropout", "dropout_heavy", "augmentation", "preprocess", "mobilenet_v2"}

def test_installed_reference_plugins_register_the_six_models():
    zoo = Zoo()
    names = {spec.name for spec in zoo.models.list()}
    assert REFERENCE_MODELS <= names
    spec = zoo.models.get("dropout_heavy")
    assert spec.distribution == "catdog-zoo-dropout" and spec.plugin == "dropout_heavy" and spec.version == "0.1.0"
    assert zoo.plugins["mobilenet_v2"].hooks == ["register_models"]
    assert "cats_and_dogs_filtered" in zoo.datasets


def test_plugin_that_fails_to_import_is_reported_and_others_keep_working(site):
    install_dist(site, "broken-import", "1.0", {"broken": "broken_mod"},
                 {"broken_mod": "import no_such_module_anywhere\n"})
    install_dist(site, "good-plugin", "2.0", {"good": "good_mod"}, {"good_mod": GOOD_PLUGIN.format(name="goodnet", summary="tiny test model")})
    zoo = Zoo()
    broken = zoo.plugins["broken"]
    assert broken.status == "error" and broken.distribution == "broken-import"
    assert "no_such_module_anywhere" in broken.errors[0]
    assert zoo.models.get("goodnet").distribution == "good-plugin"
    assert REFERENCE_MODELS <= {s.name for s in zoo.models.list()}


def test_plugin_whose_hook_raises_is_isolated(site):
    install_dist(site, "raises", "0.3", {"raiser": "raiser_mod"}, {"raiser_mod": """
        from catdog_zoo import hookimpl

        @hookimpl
        def register_models(register):
            raise RuntimeError("kaboom in register")
    """})
    zoo = Zoo()
    assert zoo.plugins["raiser"].errors == ["register_models failed: RuntimeError: kaboom in register"]
    assert zoo.models.get("baseline").name == "baseline"


def test_plugin_registering_something_else_than_a_spec_is_reported(site):
    install_dist(site, "wrong-type", "0.1", {"wrong": "wrong_mod"}, {"wrong_mod": """
        from catdog_zoo import hookimpl

        @hookimpl
        def register_models(register):
            register("not a spec")
    """})
    assert "takes a catdog_zoo.ModelSpec, got str" in Zoo().plugins["wrong"].errors[0]


def test_misspelled_hook_is_reported(site):
    install_dist(site, "typo", "0.1", {"typo": "typo_mod"}, {"typo_mod": """
        from catdog_zoo import hookimpl

        @hookimpl
        def register_model(register):
            pass
    """})
    errors = Zoo().plugins["typo"].errors
    assert any("register_model" in e for e in errors)


def test_two_distributions_registering_one_name_need_a_qualified_name(site):
    install_dist(site, "zoo-alpha", "1.0", {"alpha": "alpha_mod"}, {"alpha_mod": GOOD_PLUGIN.format(name="twin", summary="tiny test model")})
    install_dist(site, "zoo-beta", "1.0", {"beta": "beta_mod"}, {"beta_mod": GOOD_PLUGIN.format(name="twin", summary="tiny test model")})
    zoo = Zoo()
    with pytest.raises(ConfigError) as excinfo:
        zoo.models.get("twin")
    message = str(excinfo.value)
    assert "zoo-alpha" in message and "zoo-beta" in message and "'zoo-alpha:twin'" in message
    assert zoo.models.get("zoo-beta:twin").distribution == "zoo-beta"
    reported = zoo.plugins["alpha"].errors + zoo.plugins["beta"].errors
    assert len(reported) == 1 and "zoo-alpha and zoo-beta" in reported[0]


def test_disable_env_skips_a_plugin_without_uninstalling(monkeypatch):
    monkeypatch.setenv("CATDOG_ZOO_DISABLE", "catdog-zoo-dropout, baseline")
    zoo = Zoo()
    names = {s.name for s in zoo.models.list()}
    assert not names & {"dropout", "dropout_heavy", "baseline"}
    assert {"augmentation", "mobilenet_v2"} <= names
    assert zoo.plugins["baseline"].status == "disabled"


def test_register_commands_adds_a_subcommand(site):
    install_dist(site, "hello-cmd", "0.1", {"hello": "hello_mod"}, {"hello_mod": """
        import click
        from catdog_zoo import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            @click.argument("who")
            def hello(who):
                "Say hello."
                click.echo(f"hello {who}")
    """})
    group = click.Group(commands=dict(cli.commands))  # a copy: keep the real CLI unchanged for other tests
    Zoo().register_commands(group)
    result = CliRunner().invoke(group, ["hello", "zoo"])
    assert result.exit_code == 0 and result.output == "hello zoo\n"


def test_plugins_command_shows_broken_plugin_in_json(site):
    install_dist(site, "broken-import", "1.0", {"broken": "broken_mod"}, {"broken_mod": "raise ImportError('x')\n"})
    result = cli_run("plugins", "--json", ok=False)
    assert result.exit_code == 0
    infos = {p["name"]: p for p in json.loads(result.output)}
    assert infos["broken"]["status"] == "error" and infos["broken"]["version"] == "1.0"
    assert infos["mobilenet_v2"]["models"] == ["mobilenet_v2"] and infos["mobilenet_v2"]["status"] == "ok"


@pytest.mark.slow
def test_pip_installed_broken_plugin_does_not_break_the_cli(tmp_path):
    """A real distribution, built and installed by pip into a target folder, whose import fails."""
    src = tmp_path / "src"
    (src / "catdog_zoo_broken").mkdir(parents=True)
    (src / "catdog_zoo_broken" / "__init__.py").write_text("raise RuntimeError('this plugin is broken')\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "catdog-zoo-broken"\nversion = "9.9"\n'
        '[project.entry-points.catdog_zoo]\nbroken = "catdog_zoo_broken"\n')
    target = tmp_path / "target"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True)
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = [sys.executable, "-c", "from catdog_zoo.cli import main; main()"]
    listed = subprocess.run(run + ["plugins", "--json"], env=env, capture_output=True, text=True, check=True)
    broken = next(p for p in json.loads(listed.stdout) if p["name"] == "broken")
    assert broken["distribution"] == "catdog-zoo-broken" and "this plugin is broken" in broken["errors"][0]
    models = subprocess.run(run + ["models", "--json", "--no-params"], env=env, capture_output=True, text=True,
                            check=True)
    assert REFERENCE_MODELS <= {m["name"] for m in json.loads(models.stdout)}
    # Even when no model loads at all, the listing says that a plugin failed.
    with_models = [p["name"] for p in json.loads(listed.stdout) if p["models"]]  # the six, and any other installed
    only_broken = {**env, "CATDOG_ZOO_DISABLE": ",".join(sorted(with_models))}
    empty = subprocess.run(run + ["models", "--no-params"], env=only_broken, capture_output=True, text=True,
                           check=True)
    assert "No models enabled: plugin(s) augmentation, baseline" in empty.stdout
    assert "Note: plugin(s) broken failed to load; see 'catdog-zoo plugins'" in empty.stderr



def test_asking_for_a_model_whose_plugin_failed_names_the_load_error(site):
    install_dist(site, "broken-import", "1.0", {"broken_net": "broken_mod"},
                 {"broken_mod": "import no_such_module_anywhere\n"})
    result = cli_run("train", "broken_net", ok=False)
    assert result.exit_code == 1 and "plugin broken-import failed to load" in result.output
    assert "no_such_module_anywhere" in result.output
    listing = cli_run("models", "--no-params", ok=False)
    assert "plugin(s) broken_net failed to load" in listing.output

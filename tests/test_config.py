"""Config resolution: spec defaults < YAML file < flags, and one clear error per bad key."""

import pytest

from catdog_zoo import ModelSpec, TrainingDefaults
from catdog_zoo.config import KEYS, TrainConfig, config_from_run, load_config_file, resolve_config
from catdog_zoo.errors import ConfigError

SPEC = ModelSpec(name="m", summary="", builder=None,
                 defaults=TrainingDefaults(epochs=7, learning_rate=0.01, image_size=(96, 96)))


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_then_file_then_flags(tmp_path):
    cfg = resolve_config(SPEC)
    assert (cfg.epochs, cfg.learning_rate, cfg.image_size, cfg.seed) == (7, 0.01, (96, 96), 42)
    path = write(tmp_path, "epochs: 3\nlearning-rate: 1e-4\nimage_size: 64x48\nmodel: m\n")
    cfg = resolve_config(SPEC, path, epochs=5, seed=None)
    assert (cfg.epochs, cfg.learning_rate, cfg.image_size, cfg.seed) == (5, 1e-4, (64, 48), 42)


def test_written_config_round_trips(tmp_path):
    import yaml
    cfg = resolve_config(SPEC, None, epochs=2, data="somewhere", batch_size=4)
    path = write(tmp_path, yaml.safe_dump(cfg.to_dict()))
    assert resolve_config(SPEC, path) == cfg


@pytest.mark.parametrize("text, message", [
    ("epochs: [1, 2\n", "malformed YAML in .*line"),
    ("- a list\n", "must be a mapping"),
    ("epocs: 3\n", "unknown config key 'epocs'"),
    ("epochs: three\n", "epochs must be an integer, got 'three'"),
    ("epochs: 0\n", "epochs must be >= 1"),
    ("batch_size: true\n", "batch_size must be an integer"),
    ("learning_rate: -0.1\n", "learning_rate must be > 0"),
    ("learning_rate: fast\n", "learning_rate must be a number"),
    ("image_size: 16\n", "image_size must be >= 32"),
    ("image_size: [1, 2, 3]\n", "image_size must be N or"),
    ("optimizer: adamax\n", "optimizer must be one of"),
    ("test_fraction: 1.0\n", "test_fraction must be >= 0 and < 1"),
    ("image_size: 100000\n", "image_size must be >= 32 and <= 512"),
    ("learning_rate: .nan\n", "learning_rate must be a finite number"),
    ("seed: -1\n", "seed must be >= 0"),
    ("model: other\n", "model is 'other'"),
])
def test_bad_config_file_names_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(SPEC, write(tmp_path, text))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config_file(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_config_file(tmp_path)


def test_bad_flag_values_are_checked_like_file_values():
    with pytest.raises(ConfigError, match="learning_rate must be > 0"):
        resolve_config(SPEC, None, learning_rate=0.0)
    with pytest.raises(ConfigError, match="image_size must be N or HxW"):
        resolve_config(SPEC, None, image_size="big")


def test_image_size_forms():
    size = KEYS["image_size"].check
    assert size(160) == size("160") == (160, 160)
    assert size("64X32") == size([64, 32]) == (64, 32)


def test_every_key_is_a_field_of_train_config_with_its_declared_default():
    cfg = TrainConfig()
    assert [f for f in cfg.to_dict()] == list(KEYS)
    for name, key in KEYS.items():
        assert getattr(cfg, name) == key.default
        if key.default is not None and name != "model":
            assert key.check(key.default) == key.default  # every declared default passes its own check


def test_model_defaults_come_from_the_declaration_and_are_checked():
    assert TrainingDefaults().epochs == KEYS["epochs"].default
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        TrainingDefaults(batch_size=0)


def test_a_runs_own_config_repeats_the_run_into_a_new_folder(tmp_path):
    import yaml
    run = tmp_path / "runs" / "m-1"
    run.mkdir(parents=True)
    cfg = resolve_config(SPEC, None, epochs=2, run_dir=str(run))
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    again = resolve_config(SPEC, run / "config.yaml")
    assert again.run_dir is None and again.epochs == 2
    chosen = write(tmp_path, f"run_dir: {tmp_path / 'elsewhere'}\n")  # a user's own run_dir is kept
    assert resolve_config(SPEC, chosen).run_dir == str(tmp_path / "elsewhere")


def test_a_run_folders_config_is_checked_like_a_flag():
    essentials = {"data": None, "image_size": [40, 40], "seed": 1, "val_fraction": 0.2, "test_fraction": 0.2}
    assert config_from_run({"model": "m", "epochs": 3, **essentials}, "c.yaml").epochs == 3  # newer keys: defaults
    with pytest.raises(ConfigError, match="c.yaml: missing data, seed; every run writes them"):
        config_from_run({"model": "m", "image_size": [40, 40], "val_fraction": 0.2, "test_fraction": 0.2}, "c.yaml")
    with pytest.raises(ConfigError, match="c.yaml: image_size must be >= 32 and <= 512, got 100000"):
        config_from_run({"model": "m", "image_size": [100000, 100000]}, "c.yaml")
    with pytest.raises(ConfigError, match="c.yaml must be a mapping"):
        config_from_run(["model", "m"], "c.yaml")

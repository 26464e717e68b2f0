"""A run's ``(spec, config)``, resolved once: what ``catdog-zoo train`` and ``catdog_zoo.train()`` both call,
and what the run is given. Nothing here imports TensorFlow: every refusal comes before it loads.
"""

from __future__ import annotations

from ..config import KEYS, check_for_model, load_config_file, resolve_config
from ..errors import ConfigError
from ..plugins import get_zoo
from ..runs.confine import is_run_config

NO_MODEL = ("give a MODEL to train (see 'catdog-zoo models'), a --config that names one, or --resume RUN_DIR")


def resolve_run(model, config_file=None, trackers: bool = True, flags: bool = False, **options) -> tuple:
    """``(spec, cfg)``: the model's spec (``model``, else the one ``config_file`` names) and its configuration,
    the YAML file read once, every value, path and the model's own limits checked, and with ``trackers`` every
    ``track`` name (``lr-find`` tracks nothing). ``flags``: ``options`` are the command line's, checked by click
    already with the same checks (cli/options.py), so not checked again. (The run makes its paths absolute when it records them:
    runs/portable.py loads TensorFlow, which nothing here may.)"""
    check_option_names(options)
    loaded = load_config_file(config_file) if config_file else {}
    model = model or loaded.get("model")
    if not model:
        raise ConfigError(NO_MODEL)
    spec = get_zoo().model(model)
    cfg = resolve_config(spec, config_file, loaded=loaded, checked=flags, **options)
    if config_file and options.get("run_dir") is None and is_run_config(config_file, loaded):
        cfg.run_dir = None  # a run's own config.yaml (or a copy's): the repeat gets a new folder, never that run's
    check_for_model(spec, cfg, get_zoo().extensions["engines"])
    for name in cfg.track if trackers else ():  # an unknown tracker: one line listing the known ones, before any work
        get_zoo().extension("trackers", name, flag="--track")
    return spec, cfg


def check_option_names(options: dict) -> None:
    """Values are checked by ``resolve_config``; a misspelt name must not pass as None."""
    for name in options:
        if name == "model" or name not in KEYS:
            raise ConfigError(f"unknown config key '{name}' (known: {', '.join(list(KEYS)[1:])})")

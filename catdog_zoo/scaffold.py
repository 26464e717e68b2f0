"""``catdog-zoo new-plugin``: a ready-to-install plugin distribution with one small example model."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from .errors import ConfigError
from .hookspecs import PLUGIN_API_VERSION
from .util.version import __version__

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # PEP 508 distribution names

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A catdog-zoo plugin adding the '{model}' model"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["catdog-zoo>={core_version}"]

[project.optional-dependencies]
test = ["pytest"]

# One entry point per architecture: NAME = "module". catdog-zoo finds plugins through this group.
[project.entry-points.catdog_zoo]
{model} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]

[tool.pytest.ini_options]
# Keras 3 on NumPy 2 warns from inside Keras on every batch; not this plugin's concern.
filterwarnings = ["ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"]
'''

MODULE = '''\
"""catdog-zoo plugin: the '{model}' model, a small CNN to start from."""

from catdog_zoo import ModelSpec, TrainingDefaults, hookimpl

# The plugin API this module was written for; catdog-zoo skips plugins declaring another one.
CATDOG_ZOO_API_VERSION = {api}


def build_{model}(num_classes, image_size):
    """Float images in [0, 255] of ``image_size + (3,)`` in, ``num_classes`` logits out (uncompiled)."""
    import keras  # imported here so that listing plugins stays fast

    return keras.Sequential([
        keras.Input(shape=tuple(image_size) + (3,)),
        keras.layers.Rescaling(1.0 / 255),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes),
    ], name="{model}")


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="{model}",
        summary="Small example CNN: two convolutions and global pooling",
        builder=build_{model},
        defaults=TrainingDefaults(epochs=10, image_size=(128, 128)),
        tags=("scratch", "cnn"),
    ))
'''

TEST = '''\
"""Tests for the {model} plugin: it is registered, passes catdog-zoo's conformance kit, and trains on generated
images."""

import numpy as np
from PIL import Image

import catdog_zoo


def test_registered_with_its_distribution():
    spec = catdog_zoo.get_model_spec("{model}")
    assert spec.distribution == "{dist}"


def test_passes_the_conformance_kit():
    # catdog-zoo's checks (`catdog-zoo check-plugin {model}`): builds at several sizes and class counts, logits,
    # a training step, seeding, safe-mode save/load, engines and exports; the AssertionError lists every failure.
    catdog_zoo.check_plugin("{model}")


def test_trains_one_epoch(tmp_path):
    rng = np.random.default_rng(0)
    for label, colour in ((0, (200, 60, 50)), (1, (50, 80, 210))):
        for split, count in (("train", 12), ("validation", 6)):
            folder = tmp_path / "data" / split / f"class{{label}}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(np.array(colour) + rng.normal(0, 30, (40, 40, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{{i}}.png")
    run = catdog_zoo.train("{model}", data=str(tmp_path / "data"), epochs=1, image_size=40, batch_size=8,
                           run_dir=str(tmp_path / "run"), quiet=True)
    assert (run.run_dir / "model.keras").is_file() and 0.0 <= run.metrics["val_accuracy"] <= 1.0
'''

README = '''\
# {dist}

A catdog-zoo plugin adding the `{model}` model.

```bash
catdog-zoo install -e ".[test]"   # into catdog-zoo's own environment (run in this folder)
catdog-zoo models {model}          # listed, with parameter count
catdog-zoo train {model} --data path/to/class/folders --epochs 1
catdog-zoo check-plugin {model}    # the conformance kit: what every command needs of a model
pytest                            # the plugin's own tests (the kit among them)
```

`catdog-zoo install` runs the pip of the Python that runs catdog-zoo, so the plugin lands where
catdog-zoo looks for it (a bare `pip` may belong to another Python). It needs catdog-zoo itself
installed first: from its clone, `make install` (or `pip install -e .` there, into an environment of
your own).

Edit `build_{model}` in `{module}.py` to change the architecture, and `register_models` to change its
name, summary, tags and training defaults. Each hook is documented in catdog-zoo's
`catdog_zoo/hookspecs.py` and `docs/plugins.md`. Build a wheel to share with `pip wheel --no-deps -w dist .`
(`catdog-zoo install dist/*.whl` on another machine); publishing to a package index is up to you
(`python -m build`, `twine upload dist/*`).
'''


def names_for(dist: str) -> tuple:
    """``(module, model)`` names for a distribution name: catdog-zoo-my-net -> catdog_zoo_my_net, my_net."""
    if not _NAME.match(dist):
        raise ConfigError(f"invalid distribution name '{dist}' (letters, digits, '-', '_' and '.')")
    module = re.sub(r"[^A-Za-z0-9]+", "_", dist).lower()
    model = re.sub(r"^catdog_zoo_", "", module) or module
    if model[0].isdigit():
        model = f"m_{model}"
    return module, model


def install_command(target) -> str:
    """The command that installs the scaffold at ``target`` for development, as a shell line: catdog-zoo's own
    ``install`` (its Python's pip), editable, with the test extra."""
    import shlex

    path = str(target)
    if not Path(path).is_absolute() and not path.startswith("."):
        path = f"./{path}"  # pip takes a bare name for a package of an index, a path only with a slash
    return f"catdog-zoo install -e {shlex.quote(path + '[test]')}"


def scaffold(dist: str, parent=".") -> Path:
    """Write the plugin distribution ``parent/dist``; refuses to touch an existing folder."""
    module, model = names_for(dist)
    target = Path(parent) / dist
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another name or --dir")
    values = dict(dist=dist, module=module, model=model, api=PLUGIN_API_VERSION, core_version=__version__)
    files = {"pyproject.toml": PYPROJECT, f"{module}.py": MODULE, f"tests/test_{module}.py": TEST,
             "README.md": README}
    Path(parent).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dist}-", dir=parent))
    try:
        for rel, template in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(template.format(**values), encoding="utf-8")
        staging.rename(target)  # all files appear at once, or none
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target

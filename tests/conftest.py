import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

from imagefactory import make_image_folder  # noqa: E402

from catdog_zoo.plugins import reset_zoo  # noqa: E402


def cli_run(*args, ok=True, env=None):
    """``catdog-zoo ARGS`` in this process (click's runner); with ``ok``, it must exit 0 (``ok=False``: any exit,
    for a test that checks a refusal itself). ``env``: variables set for the call only."""
    from click.testing import CliRunner

    from catdog_zoo.cli import cli
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env)
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result

ROOT = Path(__file__).resolve().parents[1]  # this tree: the package under test
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data" / "cats_and_dogs_filtered"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.0_224_imagenet_no_top_legacy.h5"
needs_shared = pytest.mark.skipif(not (SHARED / "tools" / "offline-keras-home").is_file(),
                                  reason=f"real data and weights not found at {SHARED} (only in the project's CI)")


@pytest.fixture(scope="session", autouse=True)
def zoo_cache_dir(tmp_path_factory):
    """Keep decoded images and features of the test run out of the user's ~/.cache."""
    path = tmp_path_factory.mktemp("zoo-cache")
    os.environ["CATDOG_ZOO_CACHE"] = str(path)
    os.environ["CATDOG_ZOO_CACHE_KEY"] = str(tmp_path_factory.mktemp("zoo-key") / "cache.key")
    return path


@pytest.fixture(autouse=True)
def fresh_zoo():
    """Every test sees the plugins installed right now (tests add and remove some)."""
    reset_zoo()
    yield
    reset_zoo()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """train/ + validation/ with two colour-coded classes of 40x40 JPEGs."""
    return make_image_folder(tmp_path_factory.mktemp("tiny"), n_train=16, n_val=10)


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    """A finished baseline run on ``tiny_data`` (shared by the evaluate/predict tests)."""
    import catdog_zoo
    reset_zoo()
    run_dir = tmp_path_factory.mktemp("runs") / "baseline-tiny"
    catdog_zoo.train("baseline", data=str(tiny_data), epochs=4, image_size=40, batch_size=8,
                     run_dir=str(run_dir), quiet=True)
    return run_dir


@pytest.fixture(scope="session")
def keras_home(tmp_path_factory):
    """A temporary Keras cache seeded from ../shared, for KERAS_HOME of a child process."""
    if not (SHARED / "tools" / "offline-keras-home").is_file():
        pytest.skip(f"real data and weights not found at {SHARED} (only in the project's CI)")
    home = tmp_path_factory.mktemp("keras_home")
    subprocess.run([sys.executable, str(SHARED / "tools" / "offline-keras-home"), str(home)], check=True,
                   stdout=subprocess.DEVNULL)
    return home


# A plugin module registering one working model (``.format(name=..., summary=...)``), for install_dist.
GOOD_PLUGIN = """
    from catdog_zoo import ModelSpec, hookimpl

    def build(num_classes, image_size):
        import keras
        return keras.Sequential([keras.Input(tuple(image_size) + (3,)), keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(num_classes)])

    @hookimpl
    def register_models(register):
        register(ModelSpec(name="{name}", summary="{summary}", builder=build, tags=("test",)))
"""


def install_dist(site: Path, dist: str, version: str, entry_points: dict, modules: dict) -> Path:
    """Lay out a distribution in ``site`` as ``pip install --target`` would (modules + dist-info).

    ``entry_points`` maps entry point names to module names; ``modules`` maps module names to source.
    """
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[catdog_zoo]"] + [f"{ep} = {module}" for ep, module in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh directory on sys.path to install test plugin distributions into."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    yield path
    for name in [m for m, mod in sys.modules.items() if str(getattr(mod, "__file__", "") or "").startswith(str(path))]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def module_site(tmp_path_factory):
    """As ``site``, shared by a module's tests (a plugin installed once, and a run trained with it once)."""
    path = tmp_path_factory.mktemp("site")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(path))
        yield path
    for name in [m for m, mod in sys.modules.items() if str(getattr(mod, "__file__", "") or "").startswith(str(path))]:
        del sys.modules[name]


# TensorFlow's C++ start-up lines, printed before any Python code can silence them.
TF_NOISE = re.compile(r"^([IWE]\d{4} |WARNING: All log messages before absl)")


def our_lines(stderr: str) -> list:
    """stderr without TensorFlow's start-up lines: what catdog-zoo itself printed."""
    return [line for line in stderr.splitlines() if not TF_NOISE.match(line)]


def zoo_command(*args) -> list:
    """The argv of ``catdog-zoo ARGS`` run by this Python (for ``subprocess.Popen`` as for :func:`zoo_subprocess`)."""
    return [sys.executable, "-m", "catdog_zoo", *map(str, args)]


def zoo_env(env=None, site=None) -> dict:
    """The environment of a catdog-zoo child: ours, TensorFlow's C++ info lines off, ``env`` on top; ``site``: a
    folder of plugin distributions (``install_dist``) put first on its path, this tree's package after it."""
    merged = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    if site is not None:
        merged["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), str(ROOT), merged.get("PYTHONPATH", "")) if p)
    return merged


def zoo_subprocess(*args, env=None, check=True, site=None, timeout=None, **run) -> subprocess.CompletedProcess:
    """``catdog-zoo ARGS`` in a fresh process (its own Keras import, KERAS_HOME, plugin discovery); with ``check``
    it must exit 0. ``env``, ``site``: see :func:`zoo_env`; ``run``: more of ``subprocess.run``'s arguments
    (``cwd``, ``preexec_fn``)."""
    result = subprocess.run(zoo_command(*args), capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL,  # never a terminal, however the suite was started
                            env=zoo_env(env, site), **run)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def limited(kind, amount):
    """``preexec_fn`` of a child under ``setrlimit(kind, amount)``: ``limited(resource.RLIMIT_FSIZE, n)`` makes a
    write past ``n`` bytes fail with EFBIG (a real full disk for every writer the child has, as ``ulimit -f``)."""
    import resource
    import signal

    def apply():
        if kind == resource.RLIMIT_FSIZE:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal, as Python itself does
        resource.setrlimit(kind, (amount, amount))
    return apply


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder of the test's own (``CATDOG_ZOO_CACHE``): cold decoding, entries it can look at."""
    path = tmp_path / "cache"
    monkeypatch.setenv("CATDOG_ZOO_CACHE", str(path))
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a server a test starts)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def interruptible() -> None:
    """``preexec_fn`` of a child that a test sends SIGINT: a suite launched in the background (``cmd &`` in a
    script) ignores SIGINT, and a child would inherit that; the default lets Python raise KeyboardInterrupt."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupted_train(monkeypatch, model: str, at_epoch: int = 1, **options) -> None:
    """``catdog_zoo.train(model, **options)`` stopped as by Ctrl-C right after the checkpoint of ``at_epoch``."""
    import catdog_zoo
    from catdog_zoo.training import checkpoints
    real_save = checkpoints.save

    def save_then_stop(run_dir, epoch, *args, **kwargs):
        path = real_save(run_dir, epoch, *args, **kwargs)
        if epoch == at_epoch:
            raise KeyboardInterrupt
        return path
    with monkeypatch.context() as patch:
        patch.setattr(checkpoints, "save", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            catdog_zoo.train(model, **options)

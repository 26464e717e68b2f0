"""Housekeeping: what the cache folder holds and clearing it, beside a writer; what `make clean` keeps and
what `make dist` builds."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_run

from catdog_zoo.cli.cache import KIND_NAMES
from catdog_zoo.data import cache
from catdog_zoo.data.cache_contents import KINDS
from catdog_zoo.util.locks import folder_lock

REPO = Path(__file__).resolve().parents[1]


zoo = cli_run


def fill(root: Path) -> dict:
    """One entry of each kind as the zoo names them, files of format 2, a dead writer's leftover and a user's
    file: ``{kind: bytes}``."""
    for kind, rows in (("decoded", 30), ("features", 20), ("engine-tflite", 5), ("engine-openvino", 5),
                       ("engine-onnxruntime", 5), ("facts", 1)):  # a plugin engine's conversions are engines too
        cache.store(cache.key(kind, n=rows), np.ones((rows, 100), np.float32))
    cache.store(cache.key("decoded", n=0) + "-verdicts", np.zeros((0,), np.uint8), reasons=[])
    (root / f"decoded-{'a' * 32}.npy").write_bytes(b"x" * 5000)  # format 2: pixels, and the verdicts beside them
    (root / f"decoded-{'a' * 32}-reasons.npy").write_bytes(b"x" * 700)
    (root / f".features-{'b' * 32}-k1ll3d00.npy").write_bytes(b"x" * 300)  # format 2's temporary, left behind
    (root / ".features-abc.zoo-tmp-k1ll3d00.tmp").write_bytes(b"x" * 40)  # a killed writer's, of this version
    (root / "notes.txt").write_text("mine")
    sizes: dict = {}
    for path in root.iterdir():
        kind = ("old" if path.suffix == ".npy" else "unfinished" if path.suffix == ".tmp" else "other"
                if path.name == "notes.txt" else "engines" if path.name.startswith("engine-") else
                path.name.split("-")[0])
        sizes[kind] = sizes.get(kind, 0) + path.stat().st_size
    return sizes


def test_cache_shows_each_kind_and_clears_one_kind_or_all_but_the_users_files(own_cache):
    sizes = fill(own_cache)
    listed = json.loads(zoo("cache", "--json").stdout)
    assert listed["root"] == str(own_cache)
    assert {kind: v["bytes"] for kind, v in listed["kinds"].items()} == sizes
    assert listed["kinds"]["decoded"]["files"] == 2 and listed["kinds"]["engines"]["files"] == 3
    text = zoo("cache").stdout
    assert f"Cache folder: {own_cache} (from $CATDOG_ZOO_CACHE)" in text
    assert "3 file(s) of format 2 (5.9 KiB) are never read by this version" in text
    assert text.splitlines()[1].split() == ["KIND", "FILES", "SIZE", "HOLDS"]

    old = zoo("cache", "--clear", "--kind", "old").stdout
    assert "Removed from" in old and "old 3 file(s) (5.9 KiB)" in old
    assert not list(own_cache.glob("*.npy")) and not list(own_cache.glob(".*.npy"))
    assert {k for k in json.loads(zoo("cache", "--json").stdout)["kinds"]} == set(sizes) - {"old"}

    everything = zoo("cache", "--clear").stdout
    assert "Left there: other 1 file(s)" in everything and "never removed" in everything
    assert sorted(p.name for p in own_cache.iterdir()) == ["notes.txt"]
    assert zoo("cache", "--kind", "old", ok=False).exit_code == 2  # --kind only with --clear


def test_clearing_is_refused_while_an_entry_is_written_and_never_removes_it(own_cache):
    cache.store("kept-before", np.ones((2, 2), np.float32))
    with cache.writing("being-written", dtype=np.float32) as out:
        out.append(np.ones((3, 2), np.float32))
        refused = zoo("cache", "--clear", ok=False)
        assert refused.exit_code == 1
        assert f"cache folder {own_cache} is in use by process {os.getpid()}" in refused.output
        out.commit()
    assert cache.load("being-written") is not None and cache.load("kept-before") is not None
    # ... and a writer that comes while the folder is being cleared keeps its rows in memory, storing nothing.
    with folder_lock(own_cache, what="cache folder"):
        rows = cache.store("during-clear", np.full((2, 2), 7.0, np.float32))
    np.testing.assert_array_equal(rows, np.full((2, 2), 7.0, np.float32))
    assert cache.load("during-clear") is None and not (own_cache / ".lock").exists()


def test_an_empty_or_missing_cache_folder(own_cache):
    assert "Empty." in zoo("cache").stdout
    assert "nothing" in zoo("cache", "--clear").stdout and not own_cache.exists()  # not created by clearing


def test_the_kinds_offered_are_the_kinds_counted():
    assert KIND_NAMES == tuple(KINDS)


# -- make ------------------------------------------------------------------------------------------

def clone(tmp_path) -> Path:
    """The files a clone has that make reads (no .venv: the test's own environment is passed as VENV)."""
    copy = tmp_path / "clone"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "bench-runs", "tests",
                                                               "__pycache__", "*.egg-info", "build", "dist",
                                                               ".keras-home", ".pytest_cache"))
    return copy


def make(folder: Path, *args, venv, env=None) -> subprocess.CompletedProcess:
    """``make ARGS`` in ``folder`` with ``VENV=venv``: never this test's own environment where a target removes or
    installs (clean removes $(VENV)); ``dist`` only reads it (its setuptools builds the wheels)."""
    if shutil.which("make") is None:
        pytest.skip("no make here")
    # As a user's own make: not a sub-make of `make test` (its MAKEFLAGS would pass PYTEST_ARGS and friends on,
    # and a sub-make prints "Entering/Leaving directory" around what it says)
    outer = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    return subprocess.run(["make", f"VENV={venv}", *args], cwd=folder, capture_output=True, text=True,
                          env={**outer, **(env or {})})


def test_make_clean_says_what_it_keeps_and_demo_ends_with_the_report(tmp_path):
    folder = clone(tmp_path)
    (folder / "runs" / "mine").mkdir(parents=True)
    (folder / "dist").mkdir()
    (folder / ".venv").mkdir()
    cleaned = make(folder, "clean", venv=".venv", env={"CATDOG_ZOO_CACHE": str(tmp_path / "zoo-cache")})
    assert cleaned.returncode == 0, cleaned.stderr
    said = cleaned.stdout.splitlines()[-1]
    assert said.startswith("Kept: runs/") and f"the cache {tmp_path / 'zoo-cache'}" in said
    assert (folder / "runs" / "mine").is_dir() and not (folder / "dist").exists() and not (folder / ".venv").exists()
    demo = make(folder, "-n", "demo", "RUN_DIR=runs/demo-x", venv=".venv")  # -n: the commands, none run
    assert demo.returncode == 0, demo.stderr
    assert "runs/demo-x/report.html" in demo.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_make_dist_builds_installable_wheels_of_the_core_and_every_plugin(tmp_path):
    if sys.prefix == sys.base_prefix or not (Path(sys.prefix) / "bin" / "python").exists():
        pytest.skip("not run from a virtual environment, which make dist would take as its build environment")
    folder = clone(tmp_path)
    built = make(folder, "dist", venv=sys.prefix)  # $(VENV)/bin/python exists: nothing created or installed
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = {p.name.split("-")[0]: p for p in (folder / "dist").glob("*.whl")}
    plugins = {p.name.replace("-", "_") for p in (folder / "plugins").iterdir() if (p / "pyproject.toml").is_file()}
    assert set(wheels) == {"catdog_zoo"} | plugins

    def entry_points(wheel: Path) -> str:
        with zipfile.ZipFile(wheel) as z:
            return z.read(next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "catdog-zoo = catdog_zoo.cli:main" in entry_points(wheels["catdog_zoo"])
    assert "[catdog_zoo]\nmobilenet_v2 = catdog_zoo_mobilenet_v2" in entry_points(wheels["catdog_zoo_mobilenet_v2"])
    # Installable: pip takes the core and a plugin, and their entry points are found where they landed.
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    str(wheels["catdog_zoo"]), str(wheels["catdog_zoo_mobilenet_v2"])], check=True)
    found = subprocess.run([sys.executable, "-c", "import importlib.metadata as m; print(sorted((e.group, e.name, "
                            "e.value) for d in m.distributions(path=[__import__('sys').argv[1]]) for e in "
                            "d.entry_points))", str(target)], capture_output=True, text=True, check=True).stdout
    assert "('catdog_zoo', 'mobilenet_v2', 'catdog_zoo_mobilenet_v2')" in found
    assert "('console_scripts', 'catdog-zoo', 'catdog_zoo.cli:main')" in found
    assert (target / "catdog_zoo" / "cli" / "cache.py").is_file() and (target / "catdog_zoo_mobilenet_v2.py").is_file()

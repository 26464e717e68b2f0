"""Trust nothing, round 3 (issue principles 5-8), each walked through every command it concerns, with real files,
processes and limits (docs/trust-round3-limits.md is the table of cases):

5. every size is bounded before it is inflated or loaded;
6. one plugin cannot break the tool;
7. system limits and odd folders are named, never a traceback;
8. re-using work compares everything that made it;

and the misleading messages found with them.
"""

import ctypes
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import (GOOD_PLUGIN, cli_run, install_dist, interruptible, limited, our_lines, zoo_command,
                      zoo_env, zoo_subprocess)
from imagefactory import make_image_folder, write_images

import catdog_zoo

zoo = partial(zoo_subprocess, check=False, timeout=300)  # this file's children: any exit status, 5 minutes at most


def said(result) -> str:
    """What catdog-zoo said on stderr, checked to be free of tracebacks."""
    text = "\n".join(our_lines(result.stderr))
    assert "Traceback" not in text, text[-3000:]
    return text


def last_error(result) -> str:
    lines = our_lines(result.stderr)
    assert result.returncode != 0 and lines and lines[-1].startswith("Error: "), result.stderr[-3000:]
    said(result)
    return lines[-1]


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


# -- running as someone whom permissions stop ------------------------------------------------------------------

def _drop_root_reads():
    """In the child: give up root's power to read and write past permissions (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH), so mode bits stop it as they stop any user. The tests run as root here."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, dropped at exec
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _can_drop_root_reads() -> bool:
    if os.geteuid() != 0:
        return True  # permissions already apply
    probe = subprocess.run(["/bin/sh", "-c", "exit 0"], preexec_fn=_drop_root_reads, capture_output=True)
    return probe.returncode == 0


as_a_user = pytest.mark.skipif(not _can_drop_root_reads(), reason="root here and prctl(PR_CAPBSET_DROP) is not "
                               "allowed: an unreadable folder cannot be made")


def user(*args, **kwargs):
    return zoo(*args, preexec_fn=_drop_root_reads if os.geteuid() == 0 else None, **kwargs)


# == 5. every size is bounded before it is inflated or loaded ====================================================

def _history(path: Path, rows: int, cell: str = "0.5") -> None:
    with open(path, "w") as f:
        f.write("epoch,loss,accuracy,val_loss,val_accuracy,stage\n")
        line = f"1,{cell},{cell},{cell},{cell},head\n"
        f.writelines(line for _ in range(rows))


def test_run_files_are_bounded_before_they_are_parsed(tiny_run, tmp_path):
    """compare --plot, compare --runs-dir, train --config, train --resume: an 18 MB history.csv (the reported one
    had 10 million rows: 96 s and 8 GB), more rows than epochs, a 1 MB cell, JSON and YAML nested 20000 deep."""
    runs = tmp_path / "runs"
    good = copy_run(tiny_run, runs / "good")
    _history(copy_run(tiny_run, runs / "huge") / "history.csv", 800_000)  # 18 MB
    _history(copy_run(tiny_run, runs / "long") / "history.csv", 200_001)  # < 16 MiB, more epochs than a run has
    _history(copy_run(tiny_run, runs / "wide") / "history.csv", 3, cell="9" * 1_000_000)
    deep = copy_run(tiny_run, runs / "deep")
    (deep / "metrics.json").write_text("[" * 20000 + "]" * 20000)
    started = time.perf_counter()
    result = cli_run("compare", "--runs-dir", runs, "--plot", tmp_path / "curves.png")
    assert time.perf_counter() - started < 60 and (tmp_path / "curves.png").stat().st_size > 1000
    notes = result.stderr
    assert f"{runs / 'huge'} left out of the plot: run file {runs / 'huge' / 'history.csv'} is" in notes
    assert "more than the 16777216 a run file may have" in notes
    assert "has more than 200000 rows, more epochs than a run can have" in notes
    assert "is not a history CSV (field larger than field limit" in notes
    assert f"{deep} left out" in notes and "not JSON" in notes
    assert "good" in result.stdout and f"{good} left out" not in notes
    # A config nested 20000 deep: one line (PyYAML recursed into a RecursionError traceback).
    config = tmp_path / "deep.yaml"
    config.write_text("[" * 20000 + "]" * 20000)
    refused = cli_run("train", "baseline", "--config", config, ok=False)
    assert refused.exit_code == 2 and "nested deeper than a config can be" in refused.output


def _npz_bomb(path: Path, unpacked: int) -> Path:
    """An .npz whose one member declares float32 zeros of ``unpacked`` bytes: a deflate bomb of a few KB per MB."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (unpacked // 4,)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("arr_0.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            zeros = bytes(1 << 20)
            for _ in range(unpacked >> 20):
                member.write(zeros)
    return path


def test_a_deflate_bomb_in_a_checkpoint_is_refused_from_its_directory(tiny_data, tmp_path, capsys):
    """train --resume (and the zoo's resume): weights.npz, optimizer.npz and best-weights.npz are read through
    load_npz, which refuses from the zip directory; nothing is inflated (tracemalloc's peak stays small)."""
    from catdog_zoo.util.arrays import ArrayFileError, load_npz

    bomb = _npz_bomb(tmp_path / "bomb.npz", 256 << 20)
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    with pytest.raises(ArrayFileError, match="declares members that unpack to 256 MiB, more than the 1 MiB it may"):
        load_npz(bomb, max_bytes=1 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes allocated to refuse it"
    with pytest.raises(ArrayFileError, match=r"declares float32 \(67108864,\) in arr_0\.npy, not the expected"):
        load_npz(bomb, expect=[((67108864,), np.float64)])
    # Through a real resume: a run stopped by a file size limit after its checkpoints, one of them a bomb.
    run = tmp_path / "run"
    stopped = zoo("train", "baseline", "--data", tiny_data, "--epochs", 2, "--image-size", 40, "--run-dir", run, "-q",
                  preexec_fn=limited(resource.RLIMIT_FSIZE, 1_500_000))  # checkpoints fit, model.keras does not
    assert stopped.returncode == 1, stopped.stderr
    shutil.copy(bomb, run / "checkpoints" / "epoch-0002" / "weights.npz")
    resumed = catdog_zoo.resume(run, quiet=True)
    err = capsys.readouterr().err
    assert "epoch-0002 is unreadable: weights.npz declares members that unpack to 256 MiB" in err
    assert "resuming from checkpoint epoch-0001 instead" in err and resumed.metrics["epochs"] == 2


def test_a_deflate_bomb_in_a_data_source_archive_is_refused(site, tmp_path):
    """data stats (and every command taking --data NAME): a registered data source's archive is checked from its
    directory before extraction: a member that unpacks to thousands of times its size is no photo."""
    archive = tmp_path / "bombset.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("bombset/cats/a.jpg", "w") as member:
            for _ in range(64):
                member.write(bytes(1 << 20))
    install_dist(site, "bomb-source", "0.1", {"bombset": "bomb_src"}, {"bomb_src": f"""
        from catdog_zoo import DataSource, hookimpl

        def fetch():
            from catdog_zoo.data.sources import fetch_archive
            return fetch_archive("bombset.zip", {archive.as_uri()!r}, "bombset", cache_dir={str(tmp_path / 'kc')!r})

        @hookimpl
        def register_datasets(register):
            register(DataSource("bombset", "a zip bomb", fetch))
    """})
    result = cli_run("data", "stats", "--data", "bombset", ok=False)
    assert result.exit_code == 1 and "refusing to extract" in result.output
    assert "member 'bombset/cats/a.jpg' unpacks to" in result.output and "a zip bomb, not images" in result.output
    assert not (tmp_path / "kc" / "datasets" / "bombset_extracted").exists()


# == 6. one plugin cannot break the tool =========================================================================


@pytest.fixture
def rogues(tmp_path) -> Path:
    """A folder of plugin distributions that each try to break the tool in a different way."""
    site = tmp_path / "rogues"
    install_dist(site, "rogue-exit", "1.0", {"exiter": "rogue_exit"},
                 {"rogue_exit": "import sys\nsys.exit(3)\n"})
    install_dist(site, "rogue-interrupt", "1.0", {"interrupter": "rogue_interrupt"},
                 {"rogue_interrupt": "raise KeyboardInterrupt\n"})
    install_dist(site, "rogue-chatty", "1.0", {"chatty": "rogue_chatty"}, {"rogue_chatty": """
        import os
        from catdog_zoo import hookimpl
        print("hello from chatty at import")
        os.write(1, b"and from file descriptor 1\\n")

        @hookimpl
        def register_models(register):
            print("chatty registers nothing")
    """})
    install_dist(site, "rogue-thief", "1.0", {"thief": "rogue_thief"},
                 {"rogue_thief": GOOD_PLUGIN.format(name="baseline", summary="not the real baseline")})
    install_dist(site, "rogue-usurper", "1.0", {"usurper": "rogue_usurper"}, {"rogue_usurper": """
        import click
        from catdog_zoo import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def train():
                "Stolen."
                click.echo("stolen")
            cli.commands.pop("compare")
    """})
    install_dist(site, "rogue-hook-exit", "1.0", {"hook_exit": "rogue_hook_exit"}, {"rogue_hook_exit": """
        import sys
        from catdog_zoo import hookimpl

        @hookimpl
        def register_models(register):
            sys.exit("no models today")
    """})
    return site


def test_no_plugin_can_break_any_command(rogues, tiny_data):
    """--version, plugins, models, info, train, compare, data, uninstall: each works, with the rogues installed."""
    version = zoo("--version", site=rogues)
    assert version.returncode == 0 and catdog_zoo.__version__ in version.stdout
    listed = zoo("plugins", "--json", site=rogues)
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}  # valid JSON: the chatty prints went to stderr
    assert "hello from chatty at import" in listed.stderr and "and from file descriptor 1" in listed.stderr
    assert plugins["exiter"]["errors"] == ["failed to load: called sys.exit(3) while importing it; a plugin may not "
                                           "end the program"]
    assert plugins["interrupter"]["errors"] == ["failed to load: raised KeyboardInterrupt while importing it, with "
                                                "no Ctrl-C pressed"]
    assert plugins["hook_exit"]["errors"] == ["register_models failed: called sys.exit('no models today') while in "
                                              "register_models; a plugin may not end the program"]
    assert plugins["thief"]["errors"] == ["model name 'baseline' belongs to the built-in model of catdog-zoo-baseline; "
                                          "rogue-thief's 'baseline' was not registered (rename it)"]
    assert plugins["baseline"]["status"] == "ok" and plugins["chatty"]["status"] == "ok"
    assert plugins["usurper"]["errors"] == [
        "command 'train' belongs to catdog-zoo; rogue-usurper's 'train' was not added (rename it)",
        "removed the command 'compare' of catdog-zoo; it was put back"]
    text = zoo("plugins", site=rogues).stdout
    assert "thief (rogue-thief 1.0) [error]" in text and "error: model name 'baseline' belongs to" in text
    models = zoo("models", "--json", "--no-params", site=rogues)
    baseline = [m for m in json.loads(models.stdout) if m["name"] == "baseline"]
    assert len(baseline) == 1 and baseline[0]["plugin"] == "catdog-zoo-baseline"
    assert "Train MODEL" in zoo("train", "--help", site=rogues).stdout
    assert "Leaderboard of finished runs" in zoo("compare", "--help", site=rogues).stdout
    stats = zoo("data", "stats", "--data", tiny_data, "--json", site=rogues)
    assert json.loads(stats.stdout)["totals"]["train"] == 32
    info = zoo("info", "baseline", "--json", site=rogues)
    assert json.loads(info.stdout)["plugin"] == "catdog-zoo-baseline"
    for package in ("tensorflow", "catdog-zoo", "NumPy"):  # straight to pip, before: the tool removed itself
        refused = zoo("uninstall", package, "-y", site=rogues)
        assert f"Error: refusing to remove {package}" in last_error(refused) and "--force" in refused.stderr
    assert "catdog-zoo -> tensorflow" in zoo("uninstall", "tensorflow", "-y").stderr
    import tensorflow  # noqa: F401 - still here


def test_commands_that_must_always_work_do_not_load_plugins(tmp_path):
    """A plugin that ends the process from C (os._exit) cannot be caught by any Python program: --version and
    uninstall (the way out) still work, since they never load plugins."""
    site = tmp_path / "killer"
    install_dist(site, "rogue-killer", "1.0", {"killer": "rogue_killer"}, {"rogue_killer": "import os\nos._exit(7)\n"})
    assert zoo("plugins", site=site).returncode == 7  # what it does to any command that loads plugins
    assert zoo("--version", site=site).returncode == 0
    assert "refusing to remove keras" in last_error(zoo("uninstall", "keras", "-y", site=site))


def test_uninstall_force_goes_to_pip(monkeypatch):
    from catdog_zoo.cli import install
    calls = []
    # Every way pip is run is replaced: this test must never really remove TensorFlow from the environment
    monkeypatch.setattr(install, "_pip", lambda *args: calls.append(args) or 0)
    monkeypatch.setattr(install, "_pip_quietly", lambda *args: (calls.append(args), (0, ""))[1])
    monkeypatch.setattr(install.subprocess, "run", lambda *a, **k: pytest.fail(f"pip really run: {a}"))
    assert cli_run("uninstall", "tensorflow", "-y", ok=False).exit_code == 1 and not calls
    cli_run("uninstall", "tensorflow", "-y", "--force")
    assert calls == [("uninstall", "-y", "tensorflow")]
    cli_run("uninstall", "catdog-zoo-baseline", "-y")  # plugins go as before
    cli_run("uninstall", "baseline", "-y")  # by the plugin's name, as 'plugins' shows it first: its distribution
    assert calls[1:] == [("uninstall", "-y", "catdog-zoo-baseline")] * 2
    unknown = cli_run("uninstall", "no-such-thing", "-y", ok=False)  # pip would warn "Skipping" and exit 0
    assert unknown.exit_code == 1 and "no-such-thing is neither an installed package nor a plugin" in unknown.output
    assert len(calls) == 3


def test_ctrl_c_while_a_plugin_hangs_names_it(tmp_path):
    """A plugin whose import hangs: a real Ctrl-C stops the tool (it is not taken for the plugin's own
    KeyboardInterrupt) and names the plugin and how to skip it."""
    started = tmp_path / "started"
    site = tmp_path / "sleepy"
    install_dist(site, "rogue-sleeper", "1.0", {"sleeper": "rogue_sleeper"}, {"rogue_sleeper": f"""
        import pathlib, time
        pathlib.Path({str(started)!r}).touch()
        time.sleep(60)
    """})
    proc = subprocess.Popen(zoo_command("models", "--no-params"), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=zoo_env(site=site), preexec_fn=interruptible)
    deadline = time.time() + 60
    while not started.exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert ("Interrupted while importing it: plugin sleeper (rogue-sleeper); CATDOG_ZOO_DISABLE=sleeper skips it"
            in err), err
    assert "Traceback" not in err


def test_a_slow_plugin_is_named_while_it_loads(site, monkeypatch, capfd):
    from catdog_zoo import plugins
    install_dist(site, "slow-plugin", "1.0", {"slowpoke": "slow_mod"}, {"slow_mod": "import time\ntime.sleep(1.5)\n"})
    monkeypatch.setattr(plugins, "SLOW_SECONDS", 0.5)
    plugins.Zoo()
    assert ("Note: plugin slowpoke (slow-plugin) has been loading for 0 s; Ctrl-C stops it, CATDOG_ZOO_DISABLE=NAME "
            "skips a plugin") in capfd.readouterr().err


# == 7. system limits and odd folders are named, never a traceback ===============================================

def test_limits_given_in_the_environment_are_bounded_and_said(tiny_data):
    """data check (and every command that decodes): a limit too large for the decoders is said and capped (it was
    an OverflowError); a small byte limit is said in bytes ("0 MiB, larger than the 0 MiB" before)."""
    huge = zoo("data", "check", "--data", tiny_data, env={"CATDOG_ZOO_MAX_PIXELS": "1" + "0" * 30})
    assert huge.returncode == 0 and "is more than any image can use; using 1099511627776" in said(huge)
    small = zoo("data", "check", "--data", tiny_data, "--json", env={"CATDOG_ZOO_MAX_IMAGE_BYTES": "100"})
    problem = json.loads(small.stdout)["problems"][0]["problem"]
    assert problem.startswith("skipped: ") and problem.endswith("KiB, larger than the 100 bytes an image file may "
                                                                "have ($CATDOG_ZOO_MAX_IMAGE_BYTES raises it)")


@pytest.fixture
def odd(tmp_path) -> dict:
    """Data folders a user may not read whole: a class folder linked to /, a subfolder that can be listed but not
    entered, one that cannot be read at all."""
    linked = make_image_folder(tmp_path / "linked", n_train=8, n_val=6, size=32, layout="single")
    (linked / "everything").symlink_to("/")
    locked = make_image_folder(tmp_path / "locked", n_train=8, n_val=6, size=32, layout="single")
    for name, mode in (("listable", 0o644), ("closed", 0o000)):
        write_images(locked / "cats" / name, 0, 2, 32, np.random.default_rng(1))
        (locked / "cats" / name).chmod(mode)
    yield {"linked": linked, "locked": locked}
    for name in ("listable", "closed"):
        (locked / "cats" / name).chmod(0o755)


def test_a_class_folder_linked_to_the_root_is_left_out_and_named(odd, tmp_path):
    checked = zoo("data", "check", "--data", odd["linked"])
    assert checked.returncode == 1 and said(checked) == ""
    assert (f"error: {odd['linked'] / 'everything'}: left out: is a link to /, a folder holding the data folder itself"
            in checked.stdout)
    trained = zoo("train", "baseline", "--data", odd["linked"], "--epochs", 1, "--image-size", 32, "-q",
                  "--run-dir", tmp_path / "run")
    assert trained.returncode == 0 and "Warning: left out 1 folder(s) or file(s)" in said(trained)


@as_a_user
def test_folders_that_cannot_be_read_are_named_by_every_command(odd, tiny_run, tmp_path):
    locked = odd["locked"]
    checked = user("data", "check", "--data", locked)
    assert checked.returncode == 1, checked.stderr
    said(checked)
    assert f"error: {locked / 'cats' / 'closed'}: left out: cannot be read (permission denied)" in checked.stdout
    assert f"error: {locked / 'cats' / 'listable' / 'img_000.jpg'}: skipped: unreadable: Permission denied" \
        in checked.stdout
    assert "No problems" not in checked.stdout
    trained = user("train", "baseline", "--data", locked, "--epochs", 1, "--image-size", 32, "-q",
                   "--run-dir", tmp_path / "run")
    assert trained.returncode == 0 and f"{locked / 'cats' / 'closed'} cannot be read" in said(trained)
    strict = user("train", "baseline", "--data", locked, "--epochs", 1, "--image-size", 32, "--strict",
                  "--run-dir", tmp_path / "strict")
    assert "--strict: " in last_error(strict) and "closed cannot be read (permission denied)" in strict.stderr
    stats = user("data", "stats", "--data", locked)
    assert stats.returncode == 0 and "closed cannot be read (permission denied)" in said(stats)
    predicted = user("predict", tiny_run, locked / "cats")
    assert predicted.returncode == 0 and "closed cannot be read (permission denied)" in said(predicted)


@as_a_user
def test_a_read_only_current_folder_is_refused_before_any_work(tiny_data, tmp_path):
    here = tmp_path / "read-only"
    here.mkdir()
    here.chmod(0o555)
    try:
        result = user("train", "baseline", "--data", tiny_data, "--epochs", 1, "--image-size", 32, cwd=here)
        assert result.returncode == 2 and "decoding" not in result.stderr
        assert last_error(result) == (f"Error: cannot make a run folder in runs: cannot create files in {here}: "
                                      "permission denied; pass --run-dir DIR to write elsewhere")
        lr = user("lr-find", "baseline", "--data", tiny_data, "--image-size", 32, cwd=here)
        assert last_error(lr) == f"Error: cannot write lr-find.png: cannot create files in {here}: permission denied"
    finally:
        here.chmod(0o755)


def test_a_file_size_limit_is_said_as_one_not_as_a_full_disk(tiny_data, tiny_run, tmp_path):
    """train and export under ulimit -f: EFBIG is "larger than this process may write", not "no space left"."""
    trained = zoo("train", "baseline", "--data", tiny_data, "--epochs", 1, "--image-size", 40,
                  "--run-dir", tmp_path / "run", preexec_fn=limited(resource.RLIMIT_FSIZE, 1_500_000))
    error = last_error(trained)
    assert "the file would be larger than this process may write (ulimit -f: 1.4 MiB)" in error
    assert "no space left" not in trained.stderr
    exported = zoo("export", tiny_run, "--format", "saved_model", "--out", tmp_path / "serving",
                   preexec_fn=limited(resource.RLIMIT_FSIZE, 200_000))
    assert last_error(exported) == ("Error: catdog-zoo export stopped: the file would be larger than this process "
                                    "may write (ulimit -f: 195 KiB)")


def test_a_small_memory_limit_is_said(tiny_data, tmp_path):
    """train under ulimit -v: too small to load TensorFlow is one line naming the limit (it was a traceback);
    big enough to load it but not to start its threads, the limit is said before TensorFlow's C++ aborts."""
    tiny = zoo("train", "baseline", "--data", tiny_data, "--epochs", 1, "--image-size", 32, "--run-dir",
               tmp_path / "a", preexec_fn=limited(resource.RLIMIT_AS, 900 << 20))
    assert last_error(tiny) == ("Error: catdog-zoo train stopped: out of memory while loading a library (ulimit -v: "
                                "900 MiB)")
    small = zoo("train", "baseline", "--data", tiny_data, "--epochs", 1, "--image-size", 32, "--run-dir",
                tmp_path / "b", preexec_fn=limited(resource.RLIMIT_AS, 2500 << 20))
    assert our_lines(small.stderr)[0] == ("Warning: this process may use at most 2.4 GiB of memory (ulimit -v); "
                                          "TensorFlow needs about 4 GiB and may stop without a Python error (raise "
                                          "it with ulimit -v)")


def test_splits_without_a_class_or_without_images_are_said(tmp_path):
    """A class of one image (kept for training): validation scored it on the other class only, in silence."""
    one = tmp_path / "one"
    write_images(one / "cats", 0, 10, 32, np.random.default_rng(0))
    write_images(one / "dogs", 1, 1, 32, np.random.default_rng(1))
    trained = zoo("train", "baseline", "--data", one, "--epochs", 1, "--image-size", 32, "-q", "--run-dir",
                  tmp_path / "r1")
    assert trained.returncode == 0
    assert "Warning: the validation split has no image of class 'dogs': its accuracy says nothing about that class" \
        in said(trained)
    checked = cli_run("data", "check", "--data", one, ok=False)
    assert "warning: " in checked.output and "has no image of class 'dogs'" in checked.output
    two = tmp_path / "two"  # 2 images a class: 20% of 2 rounds to none (Keras: "The PyDataset has length 0")
    write_images(two / "cats", 0, 2, 32, np.random.default_rng(0))
    write_images(two / "dogs", 1, 2, 32, np.random.default_rng(1))
    result = cli_run("train", "baseline", "--data", two, "--epochs", 1, "--image-size", 32, "--run-dir",
                     tmp_path / "r2", ok=False)
    assert result.exit_code == 1 and f"the validation split of {two} has no usable images" in result.output
    zero = tmp_path / "zero"  # a class whose every file is unusable
    write_images(zero / "cats", 0, 6, 32, np.random.default_rng(0))
    (zero / "dogs").mkdir()
    for i in range(6):
        (zero / "dogs" / f"{i}.jpg").write_text("not an image")
    result = cli_run("train", "baseline", "--data", zero, "--epochs", 1, "--image-size", 32, "--run-dir",
                     tmp_path / "r3", ok=False)
    assert result.exit_code == 1 and "class 'dogs' has no usable training images" in result.output


def test_thousands_of_classes_are_refused_and_many_stay_bounded(tmp_path):
    """1,500 class folders asked the confusion-matrix figure for 26 GB of pixels; now a run takes at most 1,000
    classes, and what draws them stays bounded whatever their number."""
    many = tmp_path / "many"
    for c in range(1001):
        (many / f"c{c:04d}").mkdir(parents=True)
        (many / f"c{c:04d}" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    result = cli_run("train", "baseline", "--data", many, "--epochs", 1, "--image-size", 32, ok=False)
    assert result.exit_code == 1 and f"{many} has 1001 class folders; a run may have at most 1000" in result.output
    from catdog_zoo.reports.plots import confusion_matrix, pr_roc_curves
    from catdog_zoo.runs.calibration import curves
    names = [f"c{i}" for i in range(1000)]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 1000, 3000)
    probs = rng.dirichlet(np.ones(1000), 3000)
    found = curves(probs, labels, names)
    assert max(len(c["roc"]["fpr"]) for c in found.values()) == 20
    assert len(json.dumps(found)) < 8 << 20
    started = time.perf_counter()
    out = confusion_matrix(np.ones((1000, 1000), int), names, tmp_path / "cm.png")
    pr_roc_curves({n: found[n] for n in names[:300]}, tmp_path / "pr.png")
    assert time.perf_counter() - started < 60 and out.stat().st_size < 5 << 20


# == 8. re-using work compares everything that made it ===========================================================

def test_the_zoo_keeps_a_run_only_when_everything_that_made_it_matches(tiny_data, tmp_path, monkeypatch):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    runs = tmp_path / "A"
    first = cli_run("zoo", "baseline", "--epochs", 1, "--data", data, "--runs-dir", runs, "-q", ok=False)
    assert first.exit_code == 0 and "baseline: training into" in first.output
    monkeypatch.chdir(tmp_path)  # the same data as a relative path with a trailing /: the same data
    again = cli_run("zoo", "baseline", "--epochs", 1, "--data", "data/", "--runs-dir", "A", "-q", ok=False)
    assert again.exit_code == 0 and "already finished in A/baseline; kept" in again.output
    # Keys not given are the model's defaults, and must match too (before: skipped, the run kept and ranked).
    for flags, differs in ((["--epochs", 1], f"data={str(data)!r}, not 'cats_and_dogs_filtered'"),
                           (["--data", data], "epochs=1, not 20"),
                           (["--epochs", 1, "--data", data, "--seed", 7], "seed=42, not 7")):
        refused = cli_run("zoo", "baseline", *flags, "--runs-dir", runs, ok=False)
        assert refused.exit_code == 1 and f"holds a run made with {differs}; choose another" in refused.output
    catdog_zoo.train("baseline", data=str(data), epochs=1, learning_rate=0.01, run_dir=str(tmp_path / "B" / "baseline"),
                     quiet=True)
    other = cli_run("zoo", "baseline", "--epochs", 1, "--data", data, "--runs-dir", tmp_path / "B", ok=False)
    assert other.exit_code == 1 and "made with learning_rate=0.01, not 0.001" in other.output
    write_images(data / "train" / "cats", 0, 1, 40, np.random.default_rng(9))  # the images changed since
    (data / "train" / "cats" / "img_000.jpg").rename(data / "train" / "cats" / "img_new.jpg")
    changed = cli_run("zoo", "baseline", "--epochs", 1, "--data", data, "--runs-dir", runs, ok=False)
    assert changed.exit_code == 1 and f"made with other images (the files under {data} changed since)" in changed.output


# == the misleading messages =====================================================================================

def test_a_replaced_cache_key_is_not_called_damage(own_cache, tmp_path, monkeypatch, capsys):
    from catdog_zoo.data import cache, cache_secret
    monkeypatch.setenv("CATDOG_ZOO_CACHE_KEY", str(tmp_path / "key" / "cache.key"))
    cache.store("entry", np.ones((3, 2), np.float32))
    (tmp_path / "key" / "cache.key").unlink()  # a new home, a cleaned config folder: a new key is made
    cache_secret._secret_at.cache_clear()
    assert cache.load("entry") is None
    err = capsys.readouterr().err
    assert "was signed with another cache key than" in err and "checksum" not in err


def test_a_keras_cache_that_cannot_be_written_is_not_a_network_problem(tiny_data, tmp_path):
    home = tmp_path / "a-file"
    home.write_text("KERAS_HOME must be a folder")
    stats = zoo("data", "stats", env={"KERAS_HOME": str(home)})
    error = last_error(stats)
    assert f"the Keras cache {home} cannot be used ({home / 'datasets'}: Not a directory)" in error
    assert "internet" not in error
    weights = zoo("train", "mobilenet_v2", "--data", tiny_data, "--epochs", 1, "--run-dir", tmp_path / "r",
                  env={"KERAS_HOME": str(home)})
    error = last_error(weights)
    assert "model 'mobilenet_v2' could not save its imagenet weights: the Keras cache" in error
    assert "internet" not in error


def test_a_custom_class_missing_from_a_shared_model_is_one_line(tiny_run, tmp_path):
    """evaluate (and predict, export, every reader of model.keras): the class and the file, in one line."""
    run = tmp_path / "shared"
    run.mkdir()
    for name in ("config.yaml", "metrics.json"):
        shutil.copy(tiny_run / name, run / name)
    maker = ("import keras, sys\n"
             "@keras.saving.register_keras_serializable(package='their_plugin')\n"
             "class Doubler(keras.layers.Layer):\n"
             "    def call(self, x): return x * 2\n"
             "inputs = keras.Input((40, 40, 3))\n"
             "x = keras.layers.GlobalAveragePooling2D()(Doubler()(inputs))\n"
             "keras.Model(inputs, keras.layers.Dense(2)(x)).save(sys.argv[1])\n")
    subprocess.run([sys.executable, "-c", maker, str(run / "model.keras")], check=True, capture_output=True)
    result = zoo("evaluate", run)
    assert last_error(result) == (f"Error: {run / 'model.keras'} uses the custom class 'Doubler' (registered as "
                                  "'their_plugin>Doubler'), which is not defined here: install the plugin that "
                                  "defines it (a model loads where the code of its custom layers is installed)")

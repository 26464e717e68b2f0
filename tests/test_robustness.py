"""Never lose work, never trust input: messy images, bad configs, killed runs, unsafe files, full disks."""

import io
import json
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import cli_run, limited, our_lines, zoo_command, zoo_env
from imagefactory import make_image_folder
from PIL import Image

import catdog_zoo
from catdog_zoo.data.limits import ImageError
from catdog_zoo.data.pixels import decode_file
from catdog_zoo.data.sources import fetch_archive, safe_extract
from catdog_zoo.errors import ZooError
from catdog_zoo.training import checkpoints
from catdog_zoo.util.owned import TEMP_MARK


def save(img: Image.Image, path: Path, fmt: str, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)
    return path


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """Colour-coded cats/dogs plus every kind of awkward file the loader must survive."""
    root = make_image_folder(tmp_path_factory.mktemp("messy"), n_train=12, n_val=6, size=40)
    cats = root / "train" / "cats"
    rgb = Image.fromarray(np.full((40, 40, 3), (200, 60, 50), np.uint8))
    good_jpeg = io.BytesIO()
    rgb.save(good_jpeg, "JPEG")
    (cats / "truncated.jpg").write_bytes(good_jpeg.getvalue()[:300])
    (cats / "empty.jpg").write_bytes(b"")
    (cats / "text.jpg").write_text("this is not a picture")
    (cats / "notes.txt").write_text("ignored by extension")
    save(rgb, cats / "really_a_gif.jpg", "GIF")
    save(rgb, cats / "really_a_png.jpg", "PNG")
    save(rgb.convert("L"), cats / "grey.png", "PNG")
    save(rgb.convert("RGBA"), cats / "alpha.png", "PNG")
    save(rgb.convert("CMYK"), cats / "cmyk.jpg", "JPEG")
    save(rgb.convert("P"), cats / "palette.png", "PNG")
    save(Image.fromarray(np.full((40, 40), 51400, np.uint16)), cats / "sixteen_bit.png", "PNG")
    save(rgb, cats / "deeper" / "nested" / "chat_été_猫.jpg", "JPEG")
    (root / "train" / "zebras").mkdir()  # an empty class folder
    return root


def test_every_odd_image_kind_decodes_as_rgb(messy):
    cats = messy / "train" / "cats"
    grey_rgb = decode_file(str(cats / "grey.png"), (20, 20))
    assert grey_rgb.shape == (20, 20, 3) and (grey_rgb[..., 0] == grey_rgb[..., 2]).all()
    for name in ("really_a_gif.jpg", "really_a_png.jpg", "alpha.png", "cmyk.jpg", "palette.png",
                 "deeper/nested/chat_été_猫.jpg"):
        pixels = decode_file(str(cats / name), (20, 20))
        assert pixels.shape == (20, 20, 3) and pixels.dtype == np.uint8, name
        assert pixels[..., 0].mean() > pixels[..., 2].mean(), name  # still red
    grey = decode_file(str(cats / "sixteen_bit.png"), (8, 8))
    assert abs(int(grey[0, 0, 0]) - 200) <= 1 and grey[0, 0, 0] == grey[0, 0, 2]  # 51400/257 = 200
    for name, reason in (("truncated.jpg", "truncated or corrupt JPEG data: the file ends early or its content "
                                           "is damaged"), ("empty.jpg", r"empty file \(0 bytes\)"),
                         ("text.jpg", "not an image: its content is none of JPEG, PNG, GIF, BMP or WebP")):
        with pytest.raises(ImageError, match=f"^{reason}$"):
            decode_file(str(cats / name), (20, 20))


def test_whole_split_pipeline_and_one_by_one_decoding_agree(messy, tmp_path):
    """Splits are decoded by one tf.data pipeline; what it leaves out (other formats, damaged files, pixel
    bombs) by hand. Either way every file gets the same pixels and the same verdict."""
    from test_trust import png_bomb

    from catdog_zoo.data.bulk_decode import _graph_decoded, decoded_in_order
    paths = sorted(str(p) for p in (messy / "train").rglob("*") if p.is_file() and p.suffix != ".txt")
    paths.insert(3, str(png_bomb(tmp_path / "bomb.png", 23000, 23000)))
    paths.insert(5, str(tmp_path / "gone.jpg"))  # missing

    def one(path):
        try:
            return decode_file(path, (20, 20)), ""
        except ImageError as exc:
            return None, str(exc)
    by_hand = [one(p) for p in paths]
    piped = list(decoded_in_order(paths, (20, 20), one, chunk=2))
    assert [r for _, r in piped] == [r for _, r in by_hand]
    for path, (a, _), (b, _) in zip(paths, piped, by_hand):
        assert (a is None and b is None) or np.array_equal(a, b), path
    in_graph = {paths[i] for indices, _ in _graph_decoded(paths, (20, 20), batch=4) for i in indices}
    names = {Path(p).name for p in in_graph}
    assert {"img_000.jpg", "grey.png", "really_a_png.jpg", "cmyk.jpg", "chat_été_猫.jpg"} <= names
    assert not names & {"bomb.png", "really_a_gif.jpg", "truncated.jpg", "empty.jpg", "text.jpg", "gone.jpg"}


@pytest.mark.slow
def test_very_large_image(tmp_path, monkeypatch):
    big = np.linspace(0, 255, 12000, dtype=np.uint8)[None, :, None].repeat(3, axis=2)
    path = save(Image.fromarray(np.broadcast_to(big, (12000, 12000, 3)).copy()), tmp_path / "big.jpg", "JPEG")
    with pytest.raises(ImageError, match="declares 12000x12000 pixels, more than the 50 million"):
        decode_file(str(path), (64, 64))
    monkeypatch.setattr("catdog_zoo.data.limits.MAX_PIXELS", 150_000_000)  # as CATDOG_ZOO_MAX_PIXELS does
    pixels = decode_file(str(path), (64, 64))
    assert pixels.shape == (64, 64, 3) and pixels[0, 0, 0] < 20 and pixels[0, -1, 0] > 235


def test_data_check_reports_every_problem(messy):
    result = cli_run("data", "check", "--data", messy, "--json", ok=False)
    assert result.exit_code == 1
    report = json.loads(result.output)
    by_name = {Path(p["path"]).name: p for p in report["problems"]}
    for name in ("truncated.jpg", "empty.jpg", "text.jpg", "zebras"):
        assert by_name[name]["severity"] == "error", name
    assert by_name["notes.txt"]["severity"] == "warning"
    assert by_name["really_a_gif.jpg"]["problem"] == "a GIF file named .jpg"
    assert by_name["really_a_png.jpg"]["severity"] == "note"
    assert report["files"] - report["usable"] == 3 and report["class_names"] == ["cats", "dogs"]
    clean = cli_run("data", "check", "--data", make_image_folder(messy.parent / "clean", n_train=2, n_val=2), ok=False)
    assert clean.exit_code == 0 and "No problems found." in clean.output


def test_training_skips_bad_files_with_a_warning_and_strict_refuses(messy, tmp_path, capfd):
    run = catdog_zoo.train("baseline", data=str(messy), epochs=1, image_size=40, batch_size=8,
                           run_dir=str(tmp_path / "run"), quiet=True)
    warning = capfd.readouterr().err
    assert "skipped 3 file(s) that are not usable images" in warning and "truncated.jpg" in warning
    assert "left out 1 class folder(s) without images" in warning
    assert run.metrics["skipped_files"] == 3 and run.metrics["class_names"] == ["cats", "dogs"]
    assert run.metrics["split_sizes"]["train"] == 12 + 12 + 8  # 8 odd-but-usable cats
    result = cli_run("train", "baseline", "--data", messy, "--strict", "--run-dir", tmp_path / "strict", ok=False)
    # the last line (decoding progress comes before it when these files were not decoded at this size yet)
    last = result.output.strip().splitlines()[-1]
    assert result.exit_code == 1 and last.startswith("Error: --strict: skipped 3 file(s)")
    assert not (tmp_path / "strict").exists()


@pytest.mark.parametrize("config, flags, message", [
    ("epochs: [1\n", [], "malformed YAML"),
    ("epochz: 3\n", [], "unknown config key 'epochz'"),
    ("batch_size: many\n", [], "batch_size must be an integer"),
    ("", ["--epochs", "0"], "epochs must be >= 1"),
    ("", ["--learning-rate", "0"], "learning_rate must be > 0"),
    ("", ["--batch-size", "0"], "batch_size must be >= 1"),
    ("", ["--image-size", "16"], "image_size must be >= 32"),
    ("", ["--data", "/no/such/folder"], "data folder not found"),
])
def test_bad_configs_fail_before_any_work(tiny_data, tmp_path, config, flags, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config or "seed: 1\n")
    args = ["train", "baseline", "--config", cfg, "--run-dir", tmp_path / "run"]
    if "--data" not in flags:
        args += ["--data", tiny_data]
    result = cli_run(*args, *flags, ok=False)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    unknown = cli_run("train", "resnet9000", "--data", tiny_data, "--run-dir", tmp_path / "run", ok=False)
    assert unknown.exit_code == 2 and "unknown model 'resnet9000'" in unknown.output


def fake_run_with_model(tiny_run, tmp_path, model_bytes=None, model=None) -> Path:
    run_dir = tmp_path / "suspicious"
    run_dir.mkdir()
    for name in ("config.yaml", "metrics.json"):
        (run_dir / name).write_bytes((tiny_run / name).read_bytes())
    if model is not None:
        model.save(run_dir / "model.keras")
    else:
        (run_dir / "model.keras").write_bytes(model_bytes)
    return run_dir


def test_model_with_code_is_refused_in_safe_mode(tiny_run, tmp_path, tiny_data):
    import keras
    inputs = keras.Input((40, 40, 3))
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2)(inputs)))
    run_dir = fake_run_with_model(tiny_run, tmp_path, model=keras.Model(inputs, outputs))
    for args in (["evaluate", run_dir], ["predict", run_dir, tiny_data / "validation"]):
        result = cli_run(*args, ok=False)
        assert result.exit_code == 1 and "refusing to load" in result.output and "safe mode" in result.output


def test_file_that_is_not_a_model_gives_a_clear_error(tiny_run, tmp_path):
    run_dir = fake_run_with_model(tiny_run, tmp_path, model_bytes=b"definitely not a zip")
    result = cli_run("evaluate", run_dir, ok=False)
    assert result.exit_code == 1 and "is not a loadable Keras model" in result.output


def test_archive_members_outside_the_target_are_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("data/cats/ok.txt", "fine")
        zf.writestr("../../escaped.txt", "should never be written")
    with pytest.raises(ZooError, match="member '../../escaped.txt' would land outside"):
        safe_extract(evil, tmp_path / "out" / "target")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out").exists()  # nothing written
    # Through the download path too (a file:// origin stands in for the web).
    with pytest.raises(ZooError, match="refusing to extract"):
        fetch_archive("evil.zip", evil.as_uri(), "data", cache_dir=str(tmp_path / "keras"))


def test_archive_is_downloaded_and_extracted_once(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("pets/cats/a.txt", "a")
    folder = fetch_archive("good.zip", good.as_uri(), "pets", cache_dir=str(tmp_path / "keras"))
    assert folder == tmp_path / "keras" / "datasets" / "good_extracted" / "pets" and (folder / "cats").is_dir()


def test_finished_runs_are_not_overwritten_without_overwrite(tiny_data, tmp_path):
    args = ["train", "baseline", "--data", tiny_data, "--epochs", 1, "--image-size", 32, "--run-dir", tmp_path / "r"]
    cli_run(*args)
    before = (tmp_path / "r" / "metrics.json").read_text()
    again = cli_run(*args, ok=False)
    assert again.exit_code == 2 and "holds a finished run; pass --overwrite" in again.output
    assert (tmp_path / "r" / "metrics.json").read_text() == before
    (tmp_path / "r" / "my_notes.md").write_text("mine")
    refused = cli_run(*args, "--overwrite", ok=False)
    assert refused.exit_code == 2 and "holds files catdog-zoo did not write (my_notes.md)" in refused.output
    (tmp_path / "r" / "my_notes.md").unlink()
    cli_run(*args, "--overwrite", "--seed", 9)
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["seed"] == 9


def test_unwritable_run_dir_fails_before_training(tiny_data, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    result = cli_run("train", "baseline", "--data", tiny_data, "--run-dir", blocker / "run", ok=False)
    assert result.exit_code == 2 and "cannot write to run directory" in result.output


def zoo_process(*args, limit_bytes=None):
    """``catdog-zoo ARGS`` started in a child (the test waits for it or kills it); ``limit_bytes``: ``ulimit -f``."""
    return subprocess.Popen(zoo_command(*args), env=zoo_env(), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            preexec_fn=limited(resource.RLIMIT_FSIZE, limit_bytes) if limit_bytes else None)


# Decodes the train split of the folder argv[1] at 64x64 through the package's cache and prints what it got.
DECODE_A_SPLIT = """
import hashlib, sys
import numpy as np
from catdog_zoo.data.decode import decode_split
from catdog_zoo.data.splits import make_splits
images = np.asarray(decode_split(make_splits(sys.argv[1]).train, (64, 64)).images)
print(images.shape, hashlib.sha256(images.tobytes()).hexdigest())
"""


def test_a_disk_that_fills_up_while_caching_costs_the_entry_not_the_run(tmp_path):
    """The cache's own writer (``data/entries.EntryWriter``: unbuffered writes of decoded chunks into a temporary
    file) meets a real limit: under ``ulimit -f`` of 3.4 MB the first chunk of 256 images (3.1 MB) is written, the
    second is cut short and refused (EFBIG, what a full disk is to a writer). Decoding goes on in memory with the
    rows already written read back: the same pixels as with room to spare, exit 0, and no entry nor temporary file
    left in the cache (a half entry would be found by the next run)."""
    data = make_image_folder(tmp_path / "data", n_train=150, n_val=2, size=64)  # 300 training images: 3.7 MB
    printed = {}
    for name, limit in (("roomy", None), ("full", 3_400_000)):
        cache = tmp_path / f"cache-{name}"
        child = subprocess.run([sys.executable, "-c", DECODE_A_SPLIT, str(data)], capture_output=True, text=True,
                               timeout=300, env=zoo_env({"CATDOG_ZOO_CACHE": str(cache)}),
                               preexec_fn=limited(resource.RLIMIT_FSIZE, limit) if limit else None)
        assert child.returncode == 0 and "Traceback" not in child.stderr, our_lines(child.stderr)[-5:]
        printed[name] = child.stdout
        kept = sorted(p.name for p in cache.iterdir() if p.suffix == ".entry" or TEMP_MARK in p.name)
        assert [n.startswith("decoded-") for n in kept] == ([True] if name == "roomy" else []), kept
    assert printed["full"] == printed["roomy"] and printed["full"].startswith("(300, 64, 64, 3) ")


@pytest.mark.slow
def test_full_disk_stops_cleanly_and_the_run_resumes(tiny_data, tmp_path):
    run_dir = tmp_path / "run"
    # Checkpoints (~0.7 MB) fit under the limit, the final model.keras (weights + optimizer) does not.
    proc = zoo_process("train", "baseline", "--data", tiny_data, "--epochs", 2, "--image-size", 40,
                       "--run-dir", run_dir, limit_bytes=1_500_000)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert our_lines(err)[-1].startswith(f"Error: cannot write {run_dir / 'model.keras'}: the file would be larger "
                                         "than this process may write (ulimit -f: 1.4 MiB)")
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "model.keras").exists()
    assert checkpoints.latest(run_dir).name == "epoch-0002"
    resumed = catdog_zoo.resume(run_dir, quiet=True)
    assert resumed.metrics["epochs"] == 2 and (run_dir / "model.keras").is_file()


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_matches_an_uninterrupted_run(tmp_path):
    data = make_image_folder(tmp_path / "data", n_train=48, n_val=16, size=64)
    common = ["--data", data, "--epochs", 8, "--image-size", 64, "--batch-size", 8, "--seed", 3]
    killed = tmp_path / "killed"
    proc = zoo_process("train", "dropout_heavy", *common, "--run-dir", killed)
    deadline = time.time() + 240
    while time.time() < deadline and not (checkpoints.latest(killed) and
                                          checkpoints.latest(killed).name >= "epoch-0003"):
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside a later epoch (or its checkpoint)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # What a killed run leaves: its config, a complete checkpoint, no finished-run files.
    assert yaml.safe_load((killed / "config.yaml").read_text())["epochs"] == 8
    assert not (killed / "metrics.json").exists() and not (killed / "model.keras").exists()
    last = checkpoints.latest(killed)
    assert {p.name for p in last.iterdir()} == {"weights.npz", "optimizer.npz", "state.json"}
    assert "train --resume" in cli_run("evaluate", killed, ok=False).output
    epochs_done = json.loads((last / "state.json").read_text())["epoch"]
    assert 3 <= epochs_done < 8

    cli_run("train", "--resume", killed, "-q")
    straight = tmp_path / "straight"
    cli_run("train", "dropout_heavy", *common, "--run-dir", straight, "-q")
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (killed, straight))
    assert a["val_accuracy"] == pytest.approx(b["val_accuracy"]) and a["val_loss"] == pytest.approx(b["val_loss"],
                                                                                                     rel=1e-4)
    hist_a, hist_b = ((d / "history.csv").read_text().splitlines() for d in (killed, straight))
    assert len(hist_a) == len(hist_b) == 9
    for row_a, row_b in zip(hist_a[1:], hist_b[1:]):
        np.testing.assert_allclose([float(v) for v in row_a.split(",")[2:]],
                                   [float(v) for v in row_b.split(",")[2:]], rtol=1e-3, atol=1e-5)
    assert not (killed / "checkpoints").exists()  # a finished run keeps only its results


BROKEN_BUILDER = """
    from catdog_zoo import ModelSpec, hookimpl

    def build(num_classes, image_size, weights=None):
        raise RuntimeError("this builder is broken")

    @hookimpl
    def register_models(register):
        register(ModelSpec(name="breaks_when_built", summary="raises in its builder", builder=build))
"""


def test_a_model_that_fails_to_build_stops_the_decoding_beside_it(site, tmp_path, own_cache, capfd):
    """Images are decoded in a thread while the model is built: when the build fails, decoding stops too, and
    says nothing after the error (a bar left running would draw over the shell prompt)."""
    import threading

    from conftest import install_dist
    install_dist(site, "broken-builder", "0.1", {"broken": "broken_builder_mod"},
                 {"broken_builder_mod": BROKEN_BUILDER})
    data = make_image_folder(tmp_path / "data", n_train=400, n_val=40, size=320)
    with pytest.raises(RuntimeError, match="this builder is broken"):
        catdog_zoo.train("breaks_when_built", data=str(data), run_dir=str(tmp_path / "run"), epochs=1,
                         image_size=128)
    assert not [t for t in threading.enumerate() if t.name == "catdog-zoo-decode" and t.is_alive()]
    assert "decoding" not in capfd.readouterr().err

"""The on-disk cache trusts nothing it finds: every entry is checked before use, written whole or not at all,
and read a batch at a time."""

import errno
import os
import time

import numpy as np
import pytest

from catdog_zoo.data import cache
from catdog_zoo.data.decode import decode_split
from catdog_zoo.data.decoded_cache import decoded_key
from catdog_zoo.data.splits import make_splits
from catdog_zoo.util.digest import files_digest
from catdog_zoo.util.rows import FileRows, take


def entry(root, name):
    return root / f"{name}{cache.SUFFIX}"


def test_entries_round_trip_and_are_read_a_batch_at_a_time(own_cache):
    data = np.arange(7 * 3 * 2, dtype=np.float32).reshape(7, 3, 2)
    with cache.writing("rt", dtype=np.float32) as out:
        out.append(data[:4])
        out.append(data[4:])
        rows = out.commit(note="hi")
    loaded = cache.load("rt")
    assert isinstance(loaded, FileRows) and loaded.shape == (7, 3, 2) and loaded.meta["note"] == "hi"
    np.testing.assert_array_equal(np.asarray(loaded), data)
    np.testing.assert_array_equal(loaded[2:5], data[2:5])
    np.testing.assert_array_equal(loaded[-1], data[-1])
    shuffled = np.array([6, 0, 3, 4, 1])
    np.testing.assert_array_equal(loaded[shuffled], data[shuffled])
    np.testing.assert_array_equal(rows[::2], data[::2])
    other = data + 100
    which = np.array([1, 0, 1, 0, 0])
    np.testing.assert_array_equal(take([loaded, other], which, shuffled),
                                  np.where(which[:, None, None] == 1, other[shuffled], data[shuffled]))
    with pytest.raises(IndexError):
        loaded[7]


@pytest.mark.parametrize("tamper, why", [
    (lambda p: p.write_bytes(p.read_bytes()[:-40]), "trailer"),
    (lambda p: p.write_bytes(b"\x01" + p.read_bytes()[1:]), "checksum"),
    (lambda p: p.write_bytes(b""), "too short"),
    (lambda p: p.write_bytes(np.zeros(1000, np.uint8).tobytes()), "trailer"),
])
def test_a_damaged_entry_is_recomputed_with_one_warning(own_cache, capsys, tamper, why):
    cache.store("victim", np.ones((4, 5), np.float32))
    tamper(entry(own_cache, "victim"))
    calls = []
    again = cache.cached("victim", lambda: calls.append(1) or np.ones((4, 5), np.float32))
    assert calls == [1] and again.shape == (4, 5)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "victim" in err and why in err and "recomputing" in err
    assert cache.load("victim") is not None  # replaced by a good entry


def test_an_entry_copied_over_another_key_is_refused(own_cache, capsys):
    cache.store("train-features", np.full((6, 3), 1.0, np.float32))
    cache.store("validation-features", np.full((2, 3), 2.0, np.float32))
    entry(own_cache, "validation-features").write_bytes(entry(own_cache, "train-features").read_bytes())
    assert cache.load("validation-features") is None
    assert "not of its file name" in capsys.readouterr().err


def test_an_entry_forged_without_the_secret_is_refused(own_cache, tmp_path, monkeypatch, capsys):
    cache.store("x", np.zeros((3, 2), np.float32))
    # Someone else (another secret) writes the entry the zoo will ask for, well formed in every other way.
    monkeypatch.setenv("CATDOG_ZOO_CACHE_KEY", str(tmp_path / "attacker.key"))
    cache.store("x", np.full((3, 2), 9.0, np.float32))
    monkeypatch.undo()
    monkeypatch.setenv("CATDOG_ZOO_CACHE", str(own_cache))
    assert cache.load("x") is None and "signed with another cache key" in capsys.readouterr().err


def test_the_secret_is_private_and_a_shared_one_is_not_used(tmp_path, monkeypatch):
    from catdog_zoo.data import cache_secret
    key = tmp_path / "k" / "cache.key"
    monkeypatch.setenv("CATDOG_ZOO_CACHE_KEY", str(key))
    assert len(cache_secret.secret()) == 32 and (key.stat().st_mode & 0o777) == 0o600
    other = tmp_path / "shared.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o644)  # readable by others: anyone could sign with it
    monkeypatch.setenv("CATDOG_ZOO_CACHE_KEY", str(other))
    assert cache_secret.secret() == b""


def test_a_symlink_or_folder_is_never_read_as_an_entry(own_cache, tmp_path, capsys):
    own_cache.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"x" * 100)
    entry(own_cache, "link").symlink_to(target)
    entry(own_cache, "dir").mkdir()
    assert cache.load("link") is None and cache.load("dir") is None
    assert capsys.readouterr().err.count("not a regular file") == 2


def test_an_interrupted_write_leaves_nothing_and_its_leftovers_go(own_cache):
    with pytest.raises(RuntimeError):
        with cache.writing("half") as out:
            out.append(np.ones((2, 2), np.float32))
            raise RuntimeError("killed")
    assert list(own_cache.iterdir()) == []
    orphan = own_cache / ".features-abc-123.zoo-tmp-k1ll3d00.tmp"  # what a SIGKILLed writer leaves
    orphan.write_bytes(b"partial")
    notes = own_cache / ".notes.tmp"  # a user's file that only looks temporary: not the zoo's to delete
    notes.write_text("mine")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    os.utime(notes, (old, old))
    cache.store("next", np.ones((1, 1), np.float32))
    assert not orphan.exists() and entry(own_cache, "next").is_file() and notes.read_text() == "mine"


def test_an_unwritable_cache_still_gives_the_rows(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CATDOG_ZOO_CACHE", str(blocker / "cache"))
    got = cache.store("y", np.arange(6, dtype=np.float32).reshape(3, 2))
    np.testing.assert_array_equal(got, np.arange(6, dtype=np.float32).reshape(3, 2))
    assert cache.load("y") is None


def test_decoding_verdicts_are_checked_against_the_files(tiny_data, own_cache, capsys):
    split = make_splits(tiny_data).validation
    first = decode_split(split, (12, 12))
    (path,) = own_cache.glob("decoded-*")
    fewer = split.__class__(split.paths[:-1], split.labels[:-1])
    # The entry of all files, renamed to the key of one file fewer: its verdicts cannot pair up.
    name = decoded_key(files_digest(fewer.paths), (12, 12))
    entry(own_cache, name).write_bytes(path.read_bytes())
    again = decode_split(fewer, (12, 12))
    assert len(again.split) == len(fewer.paths) and "failed its check" in capsys.readouterr().err
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(first.images)[:-1])


def test_a_transient_read_error_is_never_cached(tiny_data, own_cache, monkeypatch, capsys):
    import builtins
    split = make_splits(tiny_data).train
    victim = split.paths[0]
    real_open = builtins.open

    def flaky(path, *args, **kwargs):
        if str(path) == str(victim):
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, *args, **kwargs)
    real_stat = os.stat

    def flaky_stat(path, *args, **kwargs):  # so the whole-split pipeline leaves it to be read one by one
        if str(path) == str(victim):
            raise OSError(errno.EMFILE, "Too many open files")
        return real_stat(path, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", flaky)
    monkeypatch.setattr(os, "stat", flaky_stat)
    first = decode_split(split, (12, 12))
    assert [p for p, _ in first.skipped] == [victim] and "tried again" in capsys.readouterr().err
    assert not list(own_cache.glob("decoded-*"))  # nothing kept from a run that saw it
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(os, "stat", real_stat)
    healthy = decode_split(split, (12, 12))
    assert not healthy.skipped and len(healthy.split) == len(split.paths)


def test_a_large_entry_damaged_on_disk_stops_at_first_read_and_is_removed(own_cache, monkeypatch):
    from catdog_zoo.errors import ZooError
    monkeypatch.setattr(cache, "EAGER_CHECK_BYTES", 0)  # as for gigabytes of decoded images
    monkeypatch.setattr("catdog_zoo.data.entries.BLOCK_BYTES", 64)  # 4 rows of 16 bytes per block
    cache.store("big", np.arange(40, dtype=np.float32).reshape(10, 4))
    path = entry(own_cache, "big")
    raw = bytearray(path.read_bytes())
    raw[9 * 16] ^= 1  # a bit of row 9, in the last block
    path.write_bytes(bytes(raw))
    rows = cache.load("big")  # opens: the trailer and its MAC are intact
    np.testing.assert_array_equal(rows[:8], np.arange(32, dtype=np.float32).reshape(8, 4))  # good blocks read
    with pytest.raises(ZooError, match=r"big\.entry changed on disk.*rows 8\.\.11.*removed"):
        rows[[1, 9]]
    assert not path.exists()


def test_dropped_pixels_keep_their_verdicts_and_decode_again_on_demand(tiny_data, own_cache):
    from catdog_zoo.data.decoded_cache import keeps_pixels
    from catdog_zoo.data.on_the_fly import DecodedOnTheFly
    assert keeps_pixels("auto", 14_000, (224, 224)) and not keeps_pixels("auto", 15_000, (224, 224))
    assert keeps_pixels("keep", 10**6, (224, 224)) and not keeps_pixels("drop", 1, (224, 224))
    split = make_splits(tiny_data).train
    kept = np.asarray(decode_split(split, (20, 20), keep="keep").images)
    first = decode_split(split, (20, 20), keep="drop")  # cold: decoded once, only the verdicts stay
    assert sorted(p.name for p in own_cache.glob("decoded-*")) == sorted(
        [f"{decoded_key(files_digest(split.paths), (20, 20))}.entry",
         f"{decoded_key(files_digest(split.paths), (20, 20))}-verdicts.entry"])
    np.testing.assert_array_equal(np.asarray(first.images), kept)
    again = decode_split(split, (20, 20), keep="drop")  # warm: nothing decoded until asked for
    assert isinstance(again.images, DecodedOnTheFly) and again.split == first.split
    np.testing.assert_array_equal(again.images[[3, 0, 5]], kept[[3, 0, 5]])
    np.testing.assert_array_equal(again.images[2:6], kept[2:6])
    np.testing.assert_array_equal(np.asarray(again.images), kept)

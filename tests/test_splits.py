"""Train/validation/test splits: deterministic per seed, disjoint, stratified; clear errors on bad folders."""

import pytest
from imagefactory import make_image_folder

from catdog_zoo.data.splits import make_splits
from catdog_zoo.errors import ConfigError


def all_sets(s):
    return set(s.train.paths), set(s.validation.paths), set(s.test.paths)


def test_train_validation_layout_holds_out_a_disjoint_test_subset(tiny_data):
    s = make_splits(tiny_data, seed=1)
    train, val, test = all_sets(s)
    assert s.layout == "train/validation" and s.class_names == ("cats", "dogs")
    assert len(train) == 32 and len(val) + len(test) == 20 and len(test) == 4
    assert not (val & test) and not (train & (val | test))
    assert all("/validation/" in p for p in test)
    assert s.test.counts(s.class_names) == {"cats": 2, "dogs": 2}  # stratified


def test_same_seed_same_split_other_seed_other_split(tiny_data):
    a, b, c = make_splits(tiny_data, seed=7), make_splits(tiny_data, seed=7), make_splits(tiny_data, seed=8)
    assert a == b
    assert set(a.test.paths) != set(c.test.paths)


def test_single_folder_is_split_by_val_fraction(tmp_path):
    root = make_image_folder(tmp_path, classes=("a", "b", "c"), n_train=15, n_val=5, size=16, layout="single")
    s = make_splits(root, seed=3, val_fraction=0.25, test_fraction=0.4)
    train, val, test = all_sets(s)
    assert s.layout == "single folder" and s.class_names == ("a", "b", "c")
    assert len(train) + len(val) + len(test) == 60
    assert len(val) + len(test) == 15 and len(test) == 6
    assert not (train & val) and not (train & test) and not (val & test)
    assert set(s.train.labels) == {0, 1, 2}


def test_zero_test_fraction_gives_empty_test(tiny_data):
    s = make_splits(tiny_data, test_fraction=0.0)
    assert len(s.test) == 0 and len(s.validation) == 20


def test_majority_baseline_is_fraction_of_most_common_training_class(tmp_path):
    root = tmp_path / "d"
    make_image_folder(root, classes=("x", "y"), n_train=6, n_val=4, size=16)
    make_image_folder(root / "extra", classes=("x",), n_train=6, n_val=4, size=16)  # more "x" images
    for split in ("train", "validation"):
        for f in (root / "extra" / split / "x").iterdir():
            f.rename(root / split / "x" / f"extra_{f.name}")
    s = make_splits(root, test_fraction=0.0)
    assert s.majority_baseline("validation") == pytest.approx(8 / 12)


def test_nested_folders_are_searched_and_hidden_files_skipped(tmp_path):
    root = make_image_folder(tmp_path, n_train=4, n_val=2, size=16, layout="single")
    (root / "cats" / "deeper").mkdir()
    (root / "cats" / "img_000.jpg").rename(root / "cats" / "deeper" / "moved.jpg")
    (root / "cats" / ".hidden.jpg").write_bytes(b"x")
    (root / "cats" / "notes.txt").write_text("not an image")
    s = make_splits(root, test_fraction=0.0)
    everything = s.train.paths + s.validation.paths
    assert len(everything) == 12 and any(p.endswith("deeper/moved.jpg") for p in everything)


def test_empty_class_folder_is_left_out_and_noted(tmp_path):
    root = make_image_folder(tmp_path, classes=("a", "b"), n_train=3, n_val=2, size=16, layout="single")
    (root / "zebras").mkdir()
    s = make_splits(root)
    assert s.class_names == ("a", "b") and s.empty_classes == (str(root / "zebras"),)


@pytest.mark.parametrize("problem, message", [
    ("empty", "only one class with images"),
    ("one_class", "only one class with images"),
    ("no_classes", "no class folders with images"),
    ("extra_val_class", "is in"),
    ("train_only", "has train/ but no validation/: use --data .*/d/train to split"),
])
def test_bad_folders_give_clear_errors(tmp_path, problem, message):
    root = tmp_path / "d"
    if problem == "empty":
        make_image_folder(root, classes=("cats",), n_train=2, n_val=2, size=16, layout="single")
        (root / "birds").mkdir()
    elif problem == "one_class":
        make_image_folder(root, classes=("cats",), n_train=2, n_val=2, size=16, layout="single")
    elif problem == "no_classes":
        root.mkdir()
    elif problem == "train_only":  # Kaggle's layout: not one class called "train"
        make_image_folder(root / "train", n_train=4, n_val=0, size=16, layout="single")
    else:
        make_image_folder(root, n_train=2, n_val=2, size=16)
        make_image_folder(root / "x", classes=("birds",), n_train=2, n_val=2, size=16)
        (root / "x" / "validation" / "birds").rename(root / "validation" / "birds")
    with pytest.raises(ConfigError, match=message):
        make_splits(root)

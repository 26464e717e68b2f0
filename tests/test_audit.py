"""The dataset audit and its parts: similarity search, near-duplicates, label issues, off-topic photos, the
notes, ``catdog-zoo audit`` end to end, and train's leakage hint. No real weights: a tiny plugin model with a
random frozen conv "backbone" stands in for the pretrained one."""

import hashlib
import io
import json

import numpy as np
import pytest
from conftest import cli_run
from frozen_plugin import install_frozen
from imagefactory import COLOURS, write_images
from PIL import Image

import catdog_zoo
from catdog_zoo.audit import label_issues, off_topic
from catdog_zoo.audit.dataset_audit import notes
from catdog_zoo.models import similarity
from catdog_zoo.models.duplicates import groups, near_duplicate_pairs, thumbnails
from catdog_zoo.models.similarity import nearest, pairs_above, unit_rows

# The tiny frozen-backbone plugin (tests/frozen_plugin.py), at 48 px so that every test here stays fast.
@pytest.fixture
def frozen_plugin(site):
    install_frozen(site, "frozen_plain")


# --- similarity -------------------------------------------------------------------------------------------------

def _brute_nearest(queries, bank, k, exclude_self):
    sims = queries @ bank.T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


@pytest.mark.parametrize("block", [7, 2048])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_nearest_is_brute_force(monkeypatch, block, k, exclude_self):
    monkeypatch.setattr(similarity, "BLOCK", block)
    rng = np.random.default_rng(k + 10 * exclude_self)
    bank = unit_rows(rng.normal(size=(40, 6)))  # 40 rows: several blocks of 7, the last one short
    queries = bank if exclude_self else unit_rows(rng.normal(size=(23, 6)))
    sims, index = nearest(queries, bank, k=k, exclude_self=exclude_self)
    want_sims, want_index = _brute_nearest(queries, bank, k, exclude_self)
    assert sims.shape == index.shape == (len(queries), k)
    np.testing.assert_array_equal(index, want_index)  # random rows: no ties
    np.testing.assert_allclose(sims, want_sims, rtol=1e-5, atol=1e-6)
    if exclude_self:
        assert not (index == np.arange(len(queries))[:, None]).any()
        assert (np.diff(sims, axis=1) <= 0).all()


def test_nearest_with_fewer_rows_than_k():
    rows = unit_rows(np.eye(3))
    sims, index = nearest(rows, rows, k=5, exclude_self=True)
    assert index.shape == (3, 2) and not (index == np.arange(3)[:, None]).any()


@pytest.mark.parametrize("block", [5, 2048])
def test_pairs_above_is_brute_force(monkeypatch, block):
    monkeypatch.setattr(similarity, "BLOCK", block)
    rng = np.random.default_rng(3)
    rows = unit_rows(rng.normal(size=(37, 4)))  # 4 dimensions: many pairs above 0.5
    others = unit_rows(rng.normal(size=(19, 4)))

    within = pairs_above(rows, 0.5)
    sims = rows @ rows.T
    want = {(i, j) for i in range(37) for j in range(i + 1, 37) if sims[i, j] >= 0.5}
    got = [(i, j) for i, j, _ in within]
    assert len(want) > 20
    assert len(got) == len(set(got)) and set(got) == want  # each pair once, i < j, never (i, i)
    for i, j, s in within:
        assert s == pytest.approx(sims[i, j], abs=1e-6)

    between = pairs_above(rows, 0.5, others)
    cross = rows @ others.T
    want = {(i, j) for i in range(37) for j in range(19) if cross[i, j] >= 0.5}
    got = [(i, j) for i, j, _ in between]
    assert len(want) > 20
    assert len(got) == len(set(got)) and set(got) == want  # (i, i) included: row i and other i are different


def test_unit_rows_centres_and_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]])
    out = unit_rows(x)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0, 0], [2 ** -0.5, 2 ** -0.5]], atol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(unit_rows(x, [1.0, 1.0])[2], [0, 0])


# --- near-duplicates --------------------------------------------------------------------------------------------

SIZE = 64


def _scene(rng) -> np.ndarray:
    """A natural-ish 64x64 picture: a smooth random colour field, a gradient and a few filled shapes."""
    coarse = rng.uniform(0, 255, size=(6, 6, 3)).astype(np.float32)
    field = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((SIZE, SIZE), Image.BICUBIC), np.float32)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    angle = rng.uniform(0, 2 * np.pi)
    field += 60 * (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    for _ in range(3):
        cy, cx, r = rng.uniform(8, 56), rng.uniform(8, 56), rng.uniform(5, 14)
        colour = rng.uniform(0, 255, size=3)
        if rng.random() < 0.5:
            field[(yy * SIZE - cy) ** 2 + (xx * SIZE - cx) ** 2 < r ** 2] = colour
        else:
            field[int(cy - r):int(cy + r), int(cx - r / 2):int(cx + r)] = colour
    return np.clip(field, 0, 255).astype(np.uint8)


def _decoded(image: Image.Image) -> np.ndarray:
    """As the pipeline sees a file: decoded and resized to the model's size."""
    return np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), np.uint8)


def _copies(pixels) -> dict:
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=60)
    small = int(SIZE * 0.8)
    cut = int(SIZE * 0.05)
    return {"jpeg60": _decoded(Image.open(io.BytesIO(buffer.getvalue()))),
            "resized": _decoded(image.resize((small, small), Image.BILINEAR)),
            "cropped": _decoded(image.crop((cut, cut, SIZE - cut, SIZE - cut))),
            "mirrored": pixels[:, ::-1].copy()}


def _projection_features(images) -> np.ndarray:
    """A stand-in backbone: a fixed random projection of mirror-symmetrised 8x8 thumbnails (centred per image),
    so that, as pooled backbone features are, it barely moves under re-encoding, resizing or mirroring."""
    x = np.asarray(images, np.float32)
    small = x.reshape(len(x), 8, SIZE // 8, 8, SIZE // 8, 3).mean(axis=(2, 4))
    small = small + small[:, :, ::-1]
    small = small.reshape(len(x), -1)
    small -= small.mean(axis=1, keepdims=True)
    return small @ np.random.default_rng(99).normal(size=(small.shape[1], 64))


@pytest.fixture(scope="module")
def scenes():
    rng = np.random.default_rng(7)
    originals = [_scene(rng) for _ in range(12)]
    kinds = ["jpeg60", "resized", "cropped", "mirrored"]
    images, copy_of = list(originals), {}
    for n, source in enumerate(originals[:4]):  # originals 0-3 each get one kind of copy
        copy_of[len(images)] = (n, kinds[n])
        images.append(_copies(source)[kinds[n]])
    return np.stack(images), copy_of


@pytest.mark.parametrize("features", ["projection", "all alike"])
def test_copies_are_near_duplicates_and_distinct_photos_are_not(scenes, features):
    """'all alike': features that cannot tell any two photos apart (every pair is a candidate), so the
    thumbnails alone must keep the distinct photos apart and find the mirrored copy."""
    images, copy_of = scenes
    if features == "projection":
        feats = _projection_features(images)
    else:
        feats = np.ones((len(images), 16)) + np.random.default_rng(0).normal(0, 1e-3, (len(images), 16))
    pairs = near_duplicate_pairs(feats, lambda idx: images[list(idx)])
    found = {(i, j) for i, j, _ in pairs}
    want = {(n, c) for c, (n, _) in copy_of.items()}
    assert found == want, {copy_of[j][1] if j in copy_of else (i, j) for i, j in found ^ want}
    assert all(0.8 <= s <= 1.0001 and i < j for i, j, s in pairs)


def test_near_duplicates_between_two_sets(scenes):
    images, copy_of = scenes
    train, held = images[:12], images[12:]  # the copies are the held-out photos
    feats = _projection_features(images)
    pairs = near_duplicate_pairs(feats[:12], lambda idx: train[list(idx)], feats[12:], lambda idx: held[list(idx)])
    assert {(i, j) for i, j, _ in pairs} == {(n, c - 12) for c, (n, _) in copy_of.items()}


def test_thumbnails_are_zero_mean_unit_rows_with_the_mirror():
    images = np.random.default_rng(1).integers(0, 255, size=(3, 40, 40, 3), dtype=np.uint8)
    thumbs = thumbnails(images)
    assert thumbs.shape == (3, 2, 28 * 28)
    np.testing.assert_allclose(np.linalg.norm(thumbs, axis=2), 1, atol=1e-5)
    np.testing.assert_allclose(thumbs.mean(axis=2), 0, atol=1e-6)
    mirrored = thumbnails(images[:, :, ::-1])
    np.testing.assert_allclose(mirrored[:, 0], thumbs[:, 1], atol=1e-5)


def test_groups_join_chains_largest_first():
    pairs = [(0, 1, 0.9), (1, 2, 0.85), (5, 6, 0.99), (3, 4, 0.82), (7, 8, 0.95), (8, 9, 0.81), (10, 9, 0.83)]
    assert groups(pairs, 12) == [([7, 8, 9, 10], 0.95), ([0, 1, 2], 0.9), ([5, 6], 0.99), ([3, 4], 0.82)]
    assert groups([], 4) == []


# --- label issues -----------------------------------------------------------------------------------------------

def test_flipped_labels_rank_first_with_their_true_class():
    rng = np.random.default_rng(5)
    centres = np.zeros((2, 16))
    centres[0, 0], centres[1, 1] = 4, 4
    truth = np.repeat([0, 1], 100)
    features = centres[truth] + rng.normal(0, 1, size=(200, 16))
    labels = truth.copy()
    flipped = rng.choice(200, 8, replace=False)
    labels[flipped] = 1 - labels[flipped]

    probs = label_issues.out_of_fold(features, labels, 2, seed=0)
    assert probs.shape == (200, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    issues = label_issues.rank(probs, labels)
    first = [i for i, _, _ in issues[:8]]
    assert set(first) == set(flipped.tolist())
    assert all(c == truth[i] for i, c, _ in issues[:8])
    scores = [s for _, _, s in issues]
    assert scores == sorted(scores, reverse=True) and all(s > 0.5 for s in scores)

    demoted = [first[0], first[3]]
    moved = [i for i, _, _ in label_issues.rank(probs, labels, demoted=demoted)]
    assert moved[-2:] == demoted and moved[:6] == [i for i in first if i not in demoted]


def test_out_of_fold_never_sees_the_photo():
    """Fewer photos than feature dimensions: a softmax regression fitted on a photo memorises its (wrong) label,
    so only predictions from models that never saw it can contradict the folder."""
    rng = np.random.default_rng(2)
    centre = np.zeros(400)
    centre[:20] = 0.8
    truth = np.repeat([0, 1], 30)
    features = np.where(truth[:, None] == 0, centre, -centre) + rng.normal(0, 1, (60, 400))
    labels = truth.copy()
    labels[3] = 1
    probs = label_issues.out_of_fold(features, labels, 2, seed=1)
    assert probs[3, 0] > 0.75
    assert label_issues.rank(probs, labels)[0][:2] == (3, 0)


def test_a_small_class_is_not_called_the_big_ones_and_a_flip_in_it_is_still_found():
    """5 photos of one class beside 150 of the other, more feature dimensions than photos (like 123 pets with
    5 cats): neither the small class's photos nor the big class's are listed wholesale, yet a wrong label is."""
    rng = np.random.default_rng(7)
    centre = np.zeros(300)
    centre[:30] = 0.7
    truth = np.repeat([0, 1], [5, 150])
    features = np.where(truth[:, None] == 0, centre, -centre) + rng.normal(0, 1, (155, 300))
    labels = truth.copy()
    labels[40] = 0  # a photo of the big class filed in the small one
    probs = label_issues.out_of_fold(features, labels, 2, seed=0)
    issues = label_issues.rank(probs, labels)
    assert issues and issues[0][:2] == (40, 1)
    assert len(issues) <= 3, issues  # plain argmax listed every photo of the small class


# --- off-topic --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("twins", [False, True])
def test_far_points_score_highest(twins):
    """``twins``: two of the far points are the same photo, with the same label; each still counts as off-topic
    (it is judged by its 3 nearest photos of a class, not by its one look-alike)."""
    rng = np.random.default_rng(4)
    dims = 12
    a, b = np.zeros(dims), np.zeros(dims)
    a[0], b[1] = 10, 10
    blobs = np.concatenate([a + rng.normal(0, 0.5, (60, dims)), b + rng.normal(0, 0.5, (60, dims))])
    far = np.zeros((3, dims))
    far[0, 5], far[1, 8], far[2, 10] = 10, 10, 10
    if twins:
        far[1] = far[0]
    features = np.concatenate([blobs, far])
    labels = np.array([0] * 60 + [1] * 60 + [0, 0, 1])
    strange = off_topic.scores(features, labels, 2)
    z = off_topic.robust_z(strange)
    top = set(np.argsort(-strange)[:3].tolist())
    assert top == {120, 121, 122}
    assert (z[120:] > off_topic.FLAG_AT).all()


def test_off_topic_scores_are_brute_force():
    """1 - the best class's mean cosine (centred) to the photo's 3 most similar *other* photos of that class;
    a class of two offers each of its photos one neighbour."""
    rng = np.random.default_rng(8)
    features = rng.normal(size=(27, 5)) + 3
    labels = np.array([0] * 15 + [1] * 10 + [2] * 2)
    rows = unit_rows(features, features.mean(axis=0))
    want = []
    for i in range(len(rows)):
        best = -np.inf
        for c in range(3):
            others = [j for j in np.flatnonzero(labels == c) if j != i]
            sims = np.sort(rows[others] @ rows[i])[::-1][:3]
            best = max(best, sims.mean())
        want.append(1 - best)
    np.testing.assert_allclose(off_topic.scores(features, labels, 3), want, atol=1e-5)


def test_robust_z():
    values = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    z = off_topic.robust_z(values)
    assert z[2] == 0 and z[4] == pytest.approx(97 / 1.4826)
    assert (off_topic.robust_z(np.ones(5)) == 0).all()  # no spread: no division by zero


# --- notes ------------------------------------------------------------------------------------------------------

def test_notes_on_small_splits_and_imbalance():
    balanced = {"train": {"cats": 100, "dogs": 100}, "validation": {"cats": 20, "dogs": 20},
                "test": {"cats": 5, "dogs": 5}}
    said = notes(balanced, ["cats", "dogs"])
    assert not any("imbalanced" in n for n in said)
    test = [n for n in said if n.startswith("The test split")]
    assert test == ["The test split has 10 images, too few for its accuracy to mean much (one image moves it by 10.0 "
                    "points; its 95% interval is up to 53 points wide): add images or use a larger --test-fraction."]
    train = [n for n in said if n.startswith("The train split")][0]
    assert "200 images" in train and "too few" not in train

    skewed = {"train": {"cats": 240, "dogs": 80}, "validation": {"cats": 50, "dogs": 15},
              "test": {"cats": 10, "dogs": 5}}
    imbalance = [n for n in notes(skewed, ["cats", "dogs"]) if "imbalanced" in n]
    assert imbalance == ["Classes are imbalanced: 'cats' has 3.0x the images of 'dogs' (300 against 100); accuracy "
                         "flatters a model that favours 'cats': read per-class recall."]
    assert any("empty" in n for n in notes({**balanced, "test": {"cats": 0, "dogs": 0}}, ["cats", "dogs"]))


# --- audit end to end -------------------------------------------------------------------------------------------

def _noise_image(path, colour, rng, size=48):
    pixels = np.clip(np.array(colour, np.float32) + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


def _reencode(source, target, quality=60):
    Image.open(source).convert("RGB").save(target, format="JPEG", quality=quality)


def _hashes(root) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def defective_data(tmp_path_factory):
    """Two colour classes, 24 photos each per split, and four planted defects."""
    root = tmp_path_factory.mktemp("defective")
    rng = np.random.default_rng(11)
    for split in ("train", "validation"):
        for label, name in enumerate(("cats", "dogs")):
            write_images(root / split / name, label, 24, 48, rng)
    _noise_image(root / "train" / "dogs" / "flipped_cat.jpg", COLOURS[0], rng)  # a cat in the dogs' folder
    _reencode(root / "train" / "cats" / "img_005.jpg", root / "validation" / "cats" / "leaked.jpg")
    _noise_image(root / "train" / "cats" / "green.jpg", COLOURS[2], rng)  # neither cat nor dog
    _noise_image(root / "train" / "dogs" / "yellow.jpg", COLOURS[3], rng)
    return root


def test_audit_finds_every_planted_defect_and_only_reads_the_data(frozen_plugin, defective_data, tmp_path):
    import keras
    keras.utils.set_random_seed(0)  # the plugin's random "backbone": the same features every run
    before = _hashes(defective_data)
    out = tmp_path / "report"
    result = cli_run("audit", "--data", defective_data, "--out", out, "--json", "--model", "frozen_plain", "-q")
    printed = json.loads(result.stdout)

    assert sorted(p.name for p in out.iterdir()) == ["audit.html", "audit.json"]
    assert json.loads((out / "audit.json").read_text()) == printed
    assert "<html" in (out / "audit.html").read_text()
    assert _hashes(defective_data) == before

    assert printed["class_names"] == ["cats", "dogs"] and printed["num_images"] == 24 * 4 + 4
    flip = "train/dogs/flipped_cat.jpg"
    first = printed["label_issues"][:3]
    assert flip in [i["path"] for i in first], printed["label_issues"][:5]
    issue = next(i for i in first if i["path"] == flip)
    assert (issue["given"], issue["suggested"], issue["split"]) == ("dogs", "cats", "train")

    leaks = [d for d in printed["duplicates"] if d["across_splits"]]
    assert [sorted(d["paths"]) for d in leaks] == [["train/cats/img_005.jpg", "validation/cats/leaked.jpg"]], \
        printed["duplicates"]
    assert leaks[0]["splits"][0] == "train" and leaks[0]["similarity"] >= 0.8
    assert printed["duplicates"][0] == leaks[0]  # groups across splits come first

    odd = [o["path"] for o in printed["off_topic"][:4]]
    assert {"train/cats/green.jpg", "train/dogs/yellow.jpg"} <= set(odd), printed["off_topic"][:6]
    assert all(o["flagged"] for o in printed["off_topic"] if o["path"] in ("train/cats/green.jpg",
                                                                          "train/dogs/yellow.jpg"))
    assert printed["features"]["model"] == "frozen_plain" and printed["features"]["image_size"] == [48, 48]


def test_audit_refuses_an_out_folder_inside_the_data_or_holding_other_files(frozen_plugin, defective_data, tmp_path):
    before = _hashes(defective_data)
    for inside in (defective_data, defective_data / "report", defective_data / "train" / "cats" / "report"):
        result = cli_run("audit", "--data", defective_data, "--out", inside, "--model", "frozen_plain", "-q", ok=False)
        assert result.exit_code != 0 and "inside the dataset" in result.output
    assert _hashes(defective_data) == before and not (defective_data / "report").exists()

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = cli_run("audit", "--data", defective_data, "--out", taken, "--model", "frozen_plain", "-q", ok=False)
    assert result.exit_code != 0 and "notes.txt" in result.output
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]


# --- train's leakage hint ---------------------------------------------------------------------------------------

def _hint_lines(text):
    return [line for line in text.splitlines() if line.startswith("Hint: ") and "near-copies" in line]


@pytest.mark.parametrize("leak", [False, True])
def test_train_hints_at_validation_photos_copied_from_train(frozen_plugin, tmp_path, capsys, leak):
    data = tmp_path / "data"
    rng = np.random.default_rng(21)
    for split, count in (("train", 12), ("validation", 10)):
        for label, name in enumerate(("cats", "dogs")):
            write_images(data / split / name, label, count, 48, rng)
    if leak:
        _reencode(data / "train" / "dogs" / "img_004.jpg", data / "validation" / "dogs" / "copy.jpg")
    catdog_zoo.train("frozen_plain", data=str(data), epochs=1, batch_size=8, run_dir=str(tmp_path / "run"),
                     quiet=False)
    hints = _hint_lines(capsys.readouterr().out)
    if not leak:
        assert hints == []
        return
    assert len(hints) == 1, hints
    assert hints[0].startswith("Hint: 1 validation/test images look like near-copies")
    assert "train/dogs/img_004.jpg ~ " in hints[0] and "validation/dogs/copy.jpg" in hints[0]

"""Open-set answers: telling "one of my classes" from "neither", with the run's own photos as the measure.

A photo's **ood_score** is one minus its cosine similarity to the most similar training photo, both as the
run's pretrained backbone sees them (pooled features, centred on the training photos' mean:
:mod:`catdog_zoo.models.similarity`). A photo whose score is above the run's **threshold** is rejected: its
label is ``unknown``. The threshold is set once, at the end of training, from the run's own data only:
the :data:`QUANTILE` of the validation photos' scores, so that about 0.5% of photos like the validation
split are rejected by mistake. The classifier's own probability is not used: it is confident on anything
(a car is "cats 0.97"), while distance to the training photos is not fooled that way.

The training photos' features (at most :data:`MAX_BANK` of them, a seeded sample beyond that) are kept in
the run folder as ``novelty.npy``: float16, row 0 the centre, then one unit row per photo. It is read
with care like every run file: a regular file of bounded size, a plain array (no pickle), its shape
checked against the model's features.

Rejection needs a pretrained backbone (a spec's ``frozen_backbone``): features learnt from scratch on two
classes know nothing of what else exists.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ZooError
from ..models.similarity import nearest, unit_rows
from ..util.arrays import ArrayFileError, npy_header, read_npy_data
from .layout import NOVELTY_FILE

QUANTILE = 0.995  # of the validation photos' scores: the operating point
MAX_BANK = 20_000  # training photos kept (20,000 x 1,280 float16 = 49 MiB)
MAX_FILE_BYTES = (MAX_BANK + 1) * 4096 * 2 + 4096  # features up to 4,096 wide, plus the .npy header
REJECTED = "unknown"


@dataclass
class Novelty:
    """The training photos' features as one measure of "like them", and the run's threshold."""

    centre: np.ndarray  # (D,)
    bank: np.ndarray  # (N, D) unit rows, centred
    threshold: float

    def scores(self, features) -> np.ndarray:
        """``ood_score`` of each feature row: 1 - cosine similarity to the nearest training photo."""
        sims, _ = nearest(unit_rows(features, self.centre), self.bank, k=1)
        return 1.0 - sims[:, 0]

    def rejected(self, features) -> tuple:
        """``(scores, rejected)`` of feature rows."""
        scores = self.scores(features)
        return scores, scores > self.threshold


def fit(train_features, val_features, seed: int = 0, quantile: float = QUANTILE) -> tuple:
    """``(Novelty, facts)``: the bank from the training features, the threshold from the validation ones.

    ``facts`` is what ``metrics.json`` records under ``rejection``.
    """
    train = np.asarray(train_features, np.float32)
    if len(train) > MAX_BANK:  # a seeded sample: memory and the file stay bounded on large datasets
        train = train[np.sort(np.random.default_rng(seed).choice(len(train), MAX_BANK, replace=False))]
    centre = train.mean(axis=0)
    bank = unit_rows(train, centre).astype(np.float16)
    probe = Novelty(centre.astype(np.float16).astype(np.float32), bank, np.inf)
    val_scores = probe.scores(val_features) if len(val_features) else np.zeros(0, np.float32)
    if len(val_scores):
        threshold = float(np.quantile(val_scores, quantile, method="higher"))
    else:  # no validation photos: the training photos' distances to each other, as a last resort
        sims, _ = nearest(bank, bank, k=1, exclude_self=True)
        threshold = float(np.quantile(1.0 - sims[:, 0], quantile, method="higher")) if sims.size else 1.0
    # Recorded to 6 decimals, rounded up past the photo that set it: that photo, scored again later (other batch
    # shapes round the last bit otherwise), must not land above the recorded threshold
    threshold = float(np.ceil(threshold * 1e6) + 1) / 1e6
    novelty = Novelty(probe.centre, bank, threshold)
    facts = {"available": True, "method": "nearest training photo, cosine on centred backbone features",
             "threshold": threshold, "quantile": quantile, "bank_size": int(len(bank)),
             "validation_images": int(len(val_scores)),
             "feature_dim": int(bank.shape[1]), "file": NOVELTY_FILE,
             "calibrated_on": "validation" if len(val_scores) else "train (no validation photos)",
             "validation_rejected": round(float((val_scores > threshold).mean()), 4) if len(val_scores) else None}
    return novelty, facts


def unavailable(why: str) -> dict:
    """What ``metrics.json`` records when a run cannot reject."""
    return {"available": False, "why": why}


def save(run_dir, novelty: Novelty) -> Path:
    """``novelty.npy`` in ``run_dir``, written whole (temporary name, then rename)."""
    from ..util.files import atomic_write

    path = Path(run_dir) / NOVELTY_FILE
    rows = np.concatenate([novelty.centre[None].astype(np.float16), novelty.bank.astype(np.float16)])
    atomic_write(path, lambda tmp: np.save(tmp, rows, allow_pickle=False))
    return path


def load(run_dir, facts: dict, feature_dim: int) -> Novelty:
    """The run's :class:`Novelty`, from ``novelty.npy`` and the threshold ``metrics.json`` recorded; any
    doubt about the file is one error line naming it."""
    path = Path(run_dir) / NOVELTY_FILE
    threshold = facts.get("threshold")
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not np.isfinite(threshold):
        raise ZooError(f"{Path(run_dir) / 'metrics.json'}: rejection threshold missing or not a number")
    try:
        info = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        raise ZooError(f"{path} is missing: this run cannot reject what is neither class (use --no-reject)") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        raise ZooError(f"{path} is not a regular file of at most {MAX_FILE_BYTES >> 20} MiB; refusing to read it")
    with open(path, "rb") as f:
        try:
            shape, fortran, dtype = npy_header(f)  # checked before any data is read
            if dtype != np.float16 or len(shape) != 2 or shape[0] < 2 or shape[1] != feature_dim:
                raise ZooError(f"{path} holds {dtype} {shape}, not the float16 features (width {feature_dim}) of "
                               "this run's model")
            rows = read_npy_data(f, shape, fortran, dtype)
        except (ArrayFileError, OSError) as exc:
            raise ZooError(f"{path} {exc}") from None
    if not np.isfinite(rows).all():
        raise ZooError(f"{path} is truncated or holds values that are not numbers")
    rows = rows.astype(np.float32)
    return Novelty(rows[0], rows[1:], float(threshold))

"""``audit``: likely label errors, near-duplicates (leakage across splits), off-topic photos, tiny splits."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..config import KEYS
from ..errors import ZooError
from ..runs.confine import check_output
from ..util.names import terminal
from ..util.progress import progress_factory, terminal_progress
from .output import echo, echo_json

SHOWN = 5  # of each finding, on the terminal (all of them are in audit.json and audit.html)
OWN_FILES = {"audit.json", "audit.html"}


@click.command()
@click.option("--data", "data_arg", metavar="DIR|NAME", help=KEYS["data"].help)
@click.option("--out", type=click.Path(file_okay=False), help="Folder for audit.json and audit.html "
              "[default: audits/DATA-TIME, beside runs/].")
@click.option("--seed", type=click.IntRange(0, KEYS["seed"].maximum), default=KEYS["seed"].default,
              show_default=True, help="Seed of the validation/test split (as train's --seed).")
@click.option("--model", default="mobilenet_v2", show_default=True,
              help="Whose pretrained backbone's features to use.")
@click.option("--weights", type=click.Path(dir_okay=False), help=KEYS["weights"].help)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON object.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@click.option("--overwrite", is_flag=True, help="Replace the audit.json and audit.html of an earlier audit in --out.")
def audit(data_arg, out, seed, model, weights, as_json, quiet, overwrite):
    """Find what is wrong with a dataset before training on it or trusting its scores.

    Lists, most suspicious first: likely label errors (a photo whose out-of-fold prediction
    disagrees with its folder, with the suggested class), near-duplicates (re-encoded, resized,
    cropped or mirrored copies; LEAKAGE when a group spans train and validation/test), off-topic
    photos (unlike every class), class imbalance and splits too small to trust. Uses the pretrained
    backbone's cached features; the dataset is only read, never changed.

    \b
    Examples:
      catdog-zoo audit                              # cats_and_dogs_filtered
      catdog-zoo audit --data ~/pets --out pets-audit
      catdog-zoo audit --data ~/pets --json | jq '.duplicates[] | select(.across_splits)'
    """
    from ..audit.dataset_audit import audit as run_audit
    from ..audit.dataset_audit import public, write_audit
    from ..data.sources import resolve_data

    root = resolve_data(data_arg)
    target = Path(out) if out else Path("audits") / f"{_safe(root.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    _check_out(target, root, overwrite)
    say = (lambda text: None) if quiet else (lambda text: echo(text, err=True))
    result = run_audit(str(root), model=model, seed=seed, weights=weights,
                       progress=progress_factory(True) if quiet else terminal_progress(), say=say)
    page = write_audit(result, target)
    if as_json:
        echo_json(public(result))
        return
    _summary(result, page)


def _safe(name: str) -> str:
    """A folder name made of the dataset's name: letters, digits, dot, dash and underscore only."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:60] or "data"


def _check_out(target: Path, root: Path, overwrite: bool = False) -> None:
    resolved = target.resolve()
    if resolved == root.resolve() or root.resolve() in resolved.parents:
        raise ZooError(f"--out {terminal(target)} is inside the dataset {terminal(root)}; the audit never writes "
                       "there: choose another")
    check_output(target, folder=True, reads=[root])  # never a run folder, nor inside one
    if target.is_dir():
        others = sorted(p.name for p in target.iterdir() if p.name not in OWN_FILES)
        if others:
            raise ZooError(f"--out {terminal(target)} holds files the audit did not write ({terminal(others[0])}, "
                           "...): "
                           "choose an empty or new folder")
        for name in sorted(OWN_FILES):
            check_output(target / name, overwrite=overwrite, reads=[root])  # an earlier audit's: --overwrite
    try:  # made before any work: a folder that cannot be written fails now, not after the features
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot write --out {terminal(target)}: {exc.strerror or exc}") from None


def _summary(result: dict, page: Path) -> None:
    line = echo  # names in each line through terminal: none of them can start a line of its own
    across = [d for d in result["duplicates"] if d["across_splits"]]
    flagged = [o for o in result["off_topic"] if o["flagged"]]
    line(f"Audited {result['num_images']} images of {terminal(result['data'])} "
         f"({', '.join(map(terminal, result['class_names']))}) "
         f"in {result['seconds']:.1f}s")
    line(f"{len(result['label_issues'])} likely label errors, {len(result['duplicates'])} near-duplicate groups "
         f"({len(across)} across splits), {len(flagged)} off-topic photos")
    if across:
        line(f"LEAKAGE: {len(across)} groups of near-duplicates span splits: the validation/test scores of a run "
             "on this data are inflated")
    for title, items, text in (
            ("Likely label errors", result["label_issues"],
             lambda i: f"{i['score']:.3f}  {terminal(i['path'])}  ({terminal(i['given'])} -> looks like "
                       f"{terminal(i['suggested'])})"),
            ("Near-duplicates", result["duplicates"],
             lambda d: f"{d['similarity']:.3f}  {'  ~  '.join(map(terminal, d['paths']))}"
                       + ("  [LEAKAGE]" if d["across_splits"] else "")),
            ("Off-topic", flagged, lambda o: f"{o['score']:.3f}  {terminal(o['path'])}")):
        if items:
            line(f"\n{title} (first {min(SHOWN, len(items))} of {len(items)}):")
            for item in items[:SHOWN]:
                line("  " + text(item))
    if result["notes"]:
        line("")
        for note in result["notes"]:
            line(terminal(note))
    line(f"\nReport: {terminal(page)} (every finding, with thumbnails; JSON beside it)")

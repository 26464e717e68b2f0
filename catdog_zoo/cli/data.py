"""Looking at the data before training: ``data stats``, ``data check``, ``data show``, ``augment-preview``."""

from __future__ import annotations

from dataclasses import replace

import click

from ..config import KEYS, SPLITS
from ..data.sources import resolve_data
from ..data.splits import describe_left_out, make_splits, unlabelable
from ..plugins import get_zoo
from ..runs.confine import check_output
from ..util.names import terminal
from .output import echo, echo_json, table

data_option = click.option("--data", "data_arg", metavar="DIR|NAME", help=KEYS["data"].help)
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace an existing --out file (never one "
                                "in the data or in a run folder).")
split_seed_option = click.option("--seed", type=click.IntRange(0, KEYS["seed"].maximum),
                                 default=KEYS["seed"].default, show_default=True,
                                 help="Seed of the validation/test split (as train's --seed).")


def _splits(data_arg, seed):
    splits = make_splits(resolve_data(data_arg), seed=seed, val_fraction=KEYS["val_fraction"].default,
                         test_fraction=KEYS["test_fraction"].default)
    if splits.left_out:
        echo(f"Warning: {describe_left_out(splits.left_out)}", err=True)
    return splits


@click.group()
def data():
    """Inspect a dataset: counts per class and split, problems, and sample images."""


@data.command()
@data_option
@split_seed_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(data_arg, seed, as_json):
    """Usable images per class and split, and the majority-class baseline accuracy to beat.

    Images are counted as training counts them: a file that does not decode (empty, truncated, not an
    image) is not one, and is said in one warning ('data check' lists every problem). They are decoded
    once: later runs of stats, check and train read the result from the cache.

    \b
    Examples:
      catdog-zoo data stats
      catdog-zoo data stats --data ~/pets --json
    """
    from ..data.check import decode_as_training
    from ..data.decode import describe_skipped
    from ..util.progress import terminal_progress
    splits = _splits(data_arg, seed)
    decoded = decode_as_training(splits, terminal_progress())
    usable = replace(splits, **{name: decoded[name].split for name in SPLITS})
    skipped = [item for name in SPLITS for item in decoded[name].skipped]
    per_split = {name: usable.get(name).counts(splits.class_names) for name in SPLITS}
    result = {"root": splits.root, "layout": splits.layout, "class_names": list(splits.class_names),
              "counts": per_split, "totals": {k: sum(v.values()) for k, v in per_split.items()},
              "unusable_files": len(skipped),
              "majority_baseline": round(usable.majority_baseline("validation"), 4),
              "refused_by_train": [{"folder": folder, "problem": why} for folder, why in unlabelable(splits)]}
    if skipped:
        echo(f"Warning: {describe_skipped(skipped)}", err=True)  # the words train warns with
    if as_json:
        echo_json(result)
        return
    echo(f"{terminal(splits.root)} ({splits.layout}, seed {seed})")
    rows = [{"class": c, **{s: per_split[s][c] for s in per_split}} for c in splits.class_names]
    rows.append({"class": "total", **result["totals"]})
    table(rows, ["class", *SPLITS])
    echo(f"majority-class baseline (validation accuracy to beat): {result['majority_baseline']:.1%}")
    for refused in result["refused_by_train"]:
        echo(f"Warning: train refuses class folder {terminal(refused['folder'])}: {refused['problem']} "
             "(labels.txt has one class name per line); rename it", err=True)


@data.command()
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def check(data_arg, as_json):
    """Report every problem in the images without training; exit 1 if any file would be left out.

    Errors are files or folders training leaves out (corrupt, truncated, empty, not images;
    class folders without images) and that --strict refuses; warnings are files ignored for
    their extension; notes are usable files whose content differs from their extension.

    \b
    Examples:
      catdog-zoo data check --data ~/pets
      catdog-zoo data check --data ~/pets --json > problems.json
    """
    from ..data.check import check_folder
    from ..util.progress import terminal_progress
    report = check_folder(resolve_data(data_arg), terminal_progress())
    errors = sum(1 for p in report["problems"] if p["severity"] == "error")
    if as_json:
        echo_json(report)
    else:
        echo(f"{terminal(report['root'])}: {report['usable']} of {report['files']} image files usable, "
             f"classes {', '.join(map(terminal, report['class_names'])) or '-'}")
        for p in report["problems"]:
            echo(terminal(f"{p['severity']}: {p['path']}: {p['problem']}"))
        if not report["problems"]:
            echo("No problems found.")
    if errors:
        raise SystemExit(1)


@data.command()
@data_option
@split_seed_option
@click.option("--out", type=click.Path(dir_okay=False), default="data-show.png", show_default=True,
              help="PNG file to write (an existing one only with --overwrite).")
@click.option("--per-class", default=3, show_default=True, type=click.IntRange(1, 20), help="Images per class.")
@overwrite_option
def show(data_arg, seed, out, per_class, overwrite):
    """Save a grid of random training images, one row per class, each photo in its own proportions.

    \b
    Examples:
      catdog-zoo data show
      catdog-zoo data show --data ~/pets --per-class 5 --out pets.png
    """
    from ..reports.pictures import sample_grid
    splits = _splits(data_arg, seed)
    check_output(out, overwrite=overwrite, reads=[splits.root])
    path = sample_grid(splits, out, per_class=per_class, seed=seed)
    echo(f"Wrote {terminal(path)} ({len(splits.class_names)} rows x {per_class} images)")


@click.command("augment-preview")
@click.argument("model")
@data_option
@click.option("--out", type=click.Path(dir_okay=False), default="augment-preview.png", show_default=True,
              help="PNG file to write (an existing one only with --overwrite).")
@click.option("--copies", default=6, show_default=True, type=click.IntRange(1, 24), help="Augmented copies.")
@click.option("--seed", type=click.IntRange(0, KEYS["seed"].maximum), default=KEYS["seed"].default,
              show_default=True, help="Seed of the split, of the image picked and of the random augmentation.")
@overwrite_option
def augment_preview(model, data_arg, out, copies, seed, overwrite):
    """Save one training image and augmented copies of it, made by MODEL's own augmentation layers.

    Shows what the model's Random* layers do (e.g. the flips and rotations of 'augmentation' or
    'mobilenet_v2'); a model without them is an error. A model with a frozen backbone trains by default
    on cached features of the photos as they are, without this augmentation: the output says so, and
    --aug-views K is what applies it.

    \b
    Examples:
      catdog-zoo augment-preview augmentation
      catdog-zoo augment-preview mobilenet_v2 --copies 12 --seed 7 --out aug.png
    """
    from ..config import resolve_config
    from ..reports.pictures import augment_preview as preview
    from ..training.stages import augments_images
    spec = get_zoo().model(model)
    splits = _splits(data_arg, seed)
    check_output(out, overwrite=overwrite, reads=[splits.root])
    unused = None if augments_images(spec, resolve_config(spec)) else (
        f"'{spec.name}' trains by default on cached features of the photos as they are, without this augmentation; "
        "--aug-views K adds K augmented views of each photo to its training (--no-feature-cache: augmented "
        "images, end to end, much slower)")
    path = preview(spec, splits, out, copies=copies, seed=seed,
                   note="not applied by default training (it needs --aug-views K)" if unused else "")
    echo(f"Wrote {terminal(path)} (1 original + {copies} augmented copies)")
    if unused:
        echo(terminal(f"Note: {unused}"), err=True)

"""The ``catdog-zoo`` command line: a thin click layer over the Python API.

Every command that prints data takes ``--json``; every user error is one line on stderr
(``Error: ...``) with a non-zero exit code (2 for bad flags or config values).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) buries the output; keep warnings+.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402

from .errors import ZooError  # noqa: E402
from .plugins import get_zoo  # noqa: E402


class ZooGroup(click.Group):
    """Turns :class:`ZooError` into a one-line message and its exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


def _table(rows: list, columns: list) -> None:
    """Plain aligned columns; the last column is not padded (it holds free text)."""
    if not rows:
        return
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns[:-1]]
    header = [c.upper() for c in columns]
    for line in [header] + [[str(r[c]) for c in columns] for r in rows]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths)) + ("  " if widths else "") + line[-1])


def _facts(spec) -> dict:
    """Parameters and FLOPs, or an error string: a plugin's builder bug must not break the listing."""
    from .metadata import model_facts
    try:
        return model_facts(spec)
    except Exception as exc:
        return {"params": None, "flops": None, "error": f"{type(exc).__name__}: {exc}"}


def _spec_dict(spec, facts=None) -> dict:
    d = spec.defaults
    data = {"name": spec.name, "qualified_name": spec.qualified_name, "plugin": spec.distribution or spec.plugin,
            "version": spec.version, "summary": spec.summary, "tags": list(spec.tags),
            "image_size": list(d.image_size), "pretrained": spec.pretrained,
            "weights_licence": spec.weights_licence, "frozen_backbone": spec.frozen_backbone,
            "defaults": {"optimizer": d.optimizer, "learning_rate": d.learning_rate, "loss": d.loss,
                         "epochs": d.epochs, "batch_size": d.batch_size, "image_size": list(d.image_size)}}
    if facts is not None:
        data.update(params=facts["params"], flops=facts["flops"])
        if "error" in facts:
            data["error"] = facts["error"]
    return data


def _human(n) -> str:
    if not isinstance(n, int):
        return "?"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="catdog-zoo", prog_name="catdog-zoo")
def cli():
    """Train and compare image classifiers from folders of images.

    Every architecture is a plugin: `catdog-zoo models` lists what is installed and
    `pip install` of a plugin adds more. Data is a folder of class folders (--data DIR)
    or a named source; the default is cats_and_dogs_filtered, downloaded into the Keras cache.

    \b
    The reference workflow, step by step:
      catdog-zoo data stats                 # images per class, majority-class baseline
      catdog-zoo data show --out grid.png   # three random images of each class
      catdog-zoo train baseline             # from-scratch CNN (then dropout, augmentation, ...)
      catdog-zoo train mobilenet_v2         # transfer learning, ~98% validation accuracy
      catdog-zoo evaluate runs/mobilenet_v2-* --split test
      catdog-zoo predict runs/mobilenet_v2-* my_photos/
      catdog-zoo zoo                        # all of the above for every model, then a leaderboard
    """


@cli.command()
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--no-params", is_flag=True, help="Skip counting parameters and FLOPs (no TensorFlow start-up).")
def models(pattern, as_json, no_params):
    """List installed models, optionally filtered by an fnmatch PATTERN (e.g. 'mobile*').

    Parameters and FLOPs (per image; a multiply-add counts as two) are for two classes at the
    model's default input size; they are computed once per plugin version and cached.
    """
    rows = [_spec_dict(spec, None if no_params else _facts(spec)) for spec in get_zoo().models.list(pattern)]
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("No models match." if pattern else "No models installed (see 'catdog-zoo plugins').")
        return
    for r in rows:
        r["plugin"] = f"{r['plugin']} {r['version']}".strip()
        r["input"] = "x".join(map(str, r["image_size"]))
        r["weights"] = r["pretrained"] or "-"
        r["tags"] = ",".join(r["tags"])
        r["params"] = "-" if no_params else _human(r["params"])
        r["flops"] = "-" if no_params else _human(r["flops"])
    _table(rows, ["name", "plugin", "params", "flops", "input", "weights", "tags", "summary"])


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def plugins(as_json):
    """List installed plugins: version, hooks, models, and any load errors.

    A plugin that fails to import or register is listed here with its error;
    the other plugins keep working. Disable plugins with CATDOG_ZOO_DISABLE=name1,name2.
    """
    infos = [info.to_dict() for info in get_zoo().plugins.values()]
    if as_json:
        _echo_json(infos)
        return
    for info in infos:
        origin = f"{info['distribution']} {info['version']}".strip() or info["module"]
        click.echo(f"{info['name']} ({origin}) [{info['status']}]")
        if info["hooks"]:
            click.echo(f"  hooks: {', '.join(info['hooks'])}")
        if info["models"]:
            click.echo(f"  models: {', '.join(info['models'])}")
        if info["datasets"]:
            click.echo(f"  datasets: {', '.join(info['datasets'])}")
        if info["skipped"]:
            click.echo(f"  skipped: {info['skipped']}")
        for err in info["errors"]:
            click.echo(f"  error: {err}")


@cli.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print the spec as JSON (no summary table).")
def info(model, as_json):
    """Show MODEL's spec (defaults, tags, origin) and its Keras layer summary."""
    spec = get_zoo().models.get(model)
    data = _spec_dict(spec, _facts(spec))
    if as_json:
        _echo_json(data)
        return
    shown = {**data, "tags": ", ".join(data["tags"]), "params": f"{data['params']:,}" if data["params"] else "?",
             "flops": f"{_human(data['flops'])} per image at {'x'.join(map(str, data['image_size']))}",
             "defaults": ", ".join(f"{k}={v}" for k, v in data["defaults"].items())}
    for key in ("name", "summary", "plugin", "version", "tags", "params", "flops", "pretrained", "weights_licence",
                "frozen_backbone", "defaults"):
        value = shown[key]
        click.echo(f"{key + ':':17}{value if value not in (None, '') else '-'}")
    click.echo("\nLayers (two classes, default image size; pretrained weights not loaded):")
    spec.build(2, None, weights=None).summary(print_fn=lambda line, **_: click.echo(line))


@cli.group()
def data():
    """Inspect a dataset: counts per class and split, and sample images."""


_data_option = click.option("--data", "data_arg", metavar="DIR|NAME",
                            help="Folder of class folders (or with train/ and validation/), or a data source name. "
                                 "Default: cats_and_dogs_filtered.")
_seed_option = click.option("--seed", type=int, default=42, show_default=True,
                            help="Seed for the validation/test split.")


def _splits(data_arg, seed, val_fraction=0.2, test_fraction=0.2):
    from .sources import resolve_data
    from .splits import make_splits
    return make_splits(resolve_data(data_arg), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)


@data.command()
@_data_option
@_seed_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(data_arg, seed, as_json):
    """Images per class and split, and the majority-class baseline accuracy to beat."""
    splits = _splits(data_arg, seed)
    per_split = {name: splits.get(name).counts(splits.class_names) for name in ("train", "validation", "test")}
    result = {"root": splits.root, "layout": splits.layout, "class_names": list(splits.class_names),
              "counts": per_split, "totals": {k: sum(v.values()) for k, v in per_split.items()},
              "majority_baseline": round(splits.majority_baseline("validation"), 4)}
    if as_json:
        _echo_json(result)
        return
    click.echo(f"{splits.root} ({splits.layout}, seed {seed})")
    rows = [{"class": c, **{s: per_split[s][c] for s in per_split}} for c in splits.class_names]
    rows.append({"class": "total", **result["totals"]})
    _table(rows, ["class", "train", "validation", "test"])
    click.echo(f"majority-class baseline (validation accuracy to beat): {result['majority_baseline']:.1%}")


@data.command()
@_data_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def check(data_arg, as_json):
    """Report every problem in the images without training; exit 1 if any file would be left out.

    Errors are files or folders training leaves out (corrupt, truncated, empty, not images;
    class folders without images) and that --strict refuses; warnings are files ignored for
    their extension; notes are usable files whose content differs from their extension.
    """
    from .check import check_folder
    from .sources import resolve_data
    report = check_folder(resolve_data(data_arg))
    errors = sum(1 for p in report["problems"] if p["severity"] == "error")
    if as_json:
        _echo_json(report)
    else:
        click.echo(f"{report['root']}: {report['usable']} of {report['files']} image files usable, "
                   f"classes {', '.join(report['class_names']) or '-'}")
        for p in report["problems"]:
            click.echo(f"{p['severity']}: {p['path']}: {p['problem']}")
        if not report["problems"]:
            click.echo("No problems found.")
    if errors:
        raise SystemExit(1)


@data.command()
@_data_option
@_seed_option
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--per-class", default=3, show_default=True, type=click.IntRange(1, 20), help="Images per class.")
def show(data_arg, seed, out, per_class):
    """Save a grid of random training images, one row per class."""
    from .gallery import sample_grid
    splits = _splits(data_arg, seed)
    path = sample_grid(splits, out, per_class=per_class, seed=seed)
    click.echo(f"Wrote {path} ({len(splits.class_names)} rows x {per_class} images)")


@cli.command()
@click.argument("model", required=False)
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), metavar="RUN_DIR",
              help="Continue a stopped run from its last epoch checkpoint (no MODEL or other flags).")
@click.option("--data", metavar="DIR|NAME", help="Class folders (or train/ + validation/), or a source name.")
@click.option("--epochs", type=int, help="Training epochs (default: the model's, usually 20).")
@click.option("--batch-size", type=int, help="Images per batch (default: the model's, usually 32).")
@click.option("--learning-rate", type=float, help="Optimizer learning rate (default: the model's).")
@click.option("--optimizer", help="adam, adamw, sgd or rmsprop (default: the model's).")
@click.option("--image-size", help="N or HxW in pixels (default: the model's, usually 160).")
@click.option("--seed", type=int, help="Fixes the split, shuffling and initialisation (default 42).")
@click.option("--val-fraction", type=float, help="Validation share of a single folder of classes (default 0.2).")
@click.option("--test-fraction", type=float, help="Share of validation files held out for testing (default 0.2).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of the same keys "
              "(epochs, learning_rate, ...); flags override it.")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Where to write the run (default runs/MODEL-TIME).")
@click.option("--weights", type=click.Path(dir_okay=False), help="Local pretrained weights file, for pretrained "
              "models on machines without internet (default: download into the Keras cache).")
@click.option("--feature-cache/--no-feature-cache", default=None, help="Frozen-backbone models: train the head "
              "on cached backbone features (default) or end to end on images.")
@click.option("--aug-views", type=int, help="Augmented copies of each training image in the feature cache "
              "(default 1; 0: no augmentation).")
@click.option("--fine-tune-epochs", type=int, help="After the head, unfreeze the backbone's top layers for N epochs.")
@click.option("--fine-tune-at", metavar="LAYER", help="First backbone layer to unfreeze: index or name (default 100).")
@click.option("--fine-tune-learning-rate", type=float, help="Learning rate while fine-tuning (default 1e-5).")
@click.option("--strict", is_flag=True, default=None, help="Refuse data with unusable image files or empty "
              "class folders (default: skip them with a warning).")
@click.option("--strategy", type=click.Choice(["auto", "one_device", "mirrored", "multi_worker"]),
              help="tf.distribute strategy (default auto: mirrored over every GPU when there are several, else "
                   "one device). multi_worker reads the cluster from TF_CONFIG; see docs/distributed.md.")
@click.option("--devices", help="mirrored: devices to use, '0,1' (GPU indices) or '/gpu:0,/gpu:1' (default: all GPUs).")
@click.option("--scale-learning-rate/--no-scale-learning-rate", default=None, help="With several replicas, "
              "multiply the learning rate by their number (default; --batch-size is per replica).")
@click.option("--tensorboard", is_flag=True, default=None, help="Also write TensorBoard logs to RUN_DIR/tensorboard "
              "(view with: tensorboard --logdir RUN_DIR/tensorboard).")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --run-dir.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output (decoding, feature extraction, epochs).")
def train(model, resume_dir, config_file, quiet, overwrite, **flags):
    """Train MODEL, evaluate it on validation and test, and save a run directory.

    The run directory holds config.yaml (the resolved configuration: rerun it with
    --config), model.keras (images in, logits out), history.csv and metrics.json, written
    last. Until then checkpoints/ holds the last finished epoch: --resume continues from it.

    \b
    Examples:
      catdog-zoo train mobilenet_v2
      catdog-zoo train baseline --data ~/pets --epochs 5 --seed 1
      catdog-zoo train mobilenet_v2 --weights mobilenet_v2_no_top.h5
      catdog-zoo train mobilenet_v2 --fine-tune-epochs 10 --fine-tune-at 100
      catdog-zoo train --resume runs/mobilenet_v2-20261124-101500

    A model that declares a frozen backbone (mobilenet_v2) computes the backbone's features
    once per image (and per augmented view), caches them on disk, and trains its head on them;
    the saved model is still the whole model. Cache: $CATDOG_ZOO_CACHE or ~/.cache/catdog-zoo.
    """
    from .training import resume, train as run_training
    if resume_dir:
        given = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v is not None]
        if model or given or config_file or overwrite:
            raise click.UsageError(f"--resume continues a run with its own config; drop "
                                   f"{', '.join(([model] if model else []) + given + (['--config'] if config_file else []) + (['--overwrite'] if overwrite else []))}")
        resume(resume_dir, quiet=quiet)
        return
    if not model:
        raise click.UsageError("give a MODEL to train (see 'catdog-zoo models'), or --resume RUN_DIR")
    run_training(model, config_file=config_file, quiet=quiet, overwrite=overwrite, **flags)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--data", metavar="DIR|NAME", help="Evaluate on other data with the same classes (default: the run's).")
@click.option("--split", type=click.Choice(["validation", "test", "train"]), default="validation", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON ({accuracy, loss, ...}).")
def evaluate(run_dir, data, split, as_json):
    """Accuracy and loss of a finished run's model on one split of its data."""
    from .inference import evaluate as run_evaluate
    result = run_evaluate(run_dir, data=data, split=split)
    if as_json:
        _echo_json(result)
    else:
        click.echo(f"{split}: accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f} "
                   f"({result['num_images']} images)")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), help="Also write a CSV: path, label, probability, "
              "and p_CLASS per class.")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Two-class models: predict the second class "
              "(e.g. dogs) when its probability is >= this (default: the more likely class).")
@click.option("--json", "as_json", is_flag=True, help='Print a JSON list of {"path", "label", "probability", '
              '"probabilities"}.')
@click.option("--strict", is_flag=True, help="Fail on a file that is not a usable image (default: skip it).")
def predict(run_dir, images, out, threshold, as_json, strict):
    """Label IMAGES (files, or folders searched recursively) with a finished run's model.

    \b
    catdog-zoo predict runs/mobilenet_v2-* photos/ --out predictions.csv
    catdog-zoo predict runs/mobilenet_v2-* photos/ --threshold 0.9   # dogs only when sure
    """
    from .inference import predict as run_predict, write_predictions_csv
    results = run_predict(run_dir, images, strict=strict, threshold=threshold)
    if out:
        write_predictions_csv(results, out)
    if as_json:
        _echo_json(results)
        return
    for r in results:
        click.echo(f"{r['label']}\t{r['probability']:.4f}\t{r['path']}")
    if out:
        click.echo(f"Wrote {len(results)} predictions to {out}", err=True)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["saved_model", "tflite"]), required=True,
              help="saved_model: a TensorFlow SavedModel folder (TF Serving); tflite: one float32 .tflite file.")
@click.option("--out", type=click.Path(), help="Where to write (default RUN_DIR/export/saved_model or "
              "RUN_DIR/export/model.tflite).")
@click.option("--overwrite", is_flag=True, help="Replace an existing export at --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the export report (path, parity numbers) as JSON.")
def export(run_dir, fmt, out, overwrite, as_json):
    """Export a finished run's model for serving, and check it against the Keras model.

    The export takes float32 images in [0, 255] at the run's image size and returns logits.
    It is then run on the run's test split: the largest difference in class probabilities
    from model.keras is printed and saved beside it (OUT.export.json); above 1e-3 the command
    exits with status 1.
    """
    from .export import describe, export as run_export
    report = run_export(run_dir, fmt, out, overwrite=overwrite)
    if as_json:
        _echo_json(report)
    else:
        click.echo(describe(report))
    if not report["parity_ok"]:
        raise SystemExit(1)


@cli.command("augment-preview")
@click.argument("model")
@_data_option
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--copies", default=6, show_default=True, type=click.IntRange(1, 24), help="Augmented copies.")
@_seed_option
def augment_preview(model, data_arg, out, copies, seed):
    """Save one training image and augmented copies of it, made by MODEL's own augmentation layers.

    Shows what the model sees while training (e.g. the flips and rotations of 'augmentation'
    or 'mobilenet_v2'); a model without Random* layers is an error.
    """
    from .gallery import augment_preview as preview
    spec = get_zoo().models.get(model)
    path = preview(spec, _splits(data_arg, seed), out, copies=copies, seed=seed)
    click.echo(f"Wrote {path} (1 original + {copies} augmented copies)")


_output_options = [
    click.option("--json", "as_json", is_flag=True, help="Print a JSON list of runs (run, model, val_accuracy, "
                 "test_accuracy, overfit_gap, params, train_seconds, ...)."),
    click.option("--markdown", is_flag=True, help="Print a Markdown table."),
    click.option("--plot", type=click.Path(dir_okay=False), help="Also save validation accuracy per epoch of "
                 "every run, overlaid, to this PNG."),
]


def _output(fn):
    for option in reversed(_output_options):
        fn = option(fn)
    return fn


def _print_leaderboard(runs, as_json, markdown, plot, relative_to=None) -> None:
    from . import leaderboard as lb
    rows = lb.leaderboard(runs)
    if as_json:
        _echo_json(rows)
    elif markdown:
        click.echo(lb.as_markdown(rows, relative_to))
    else:
        click.echo(lb.as_text(rows, relative_to))
    if plot:
        click.echo(f"Wrote {lb.plot_curves(rows, plot)}", err=True)


@cli.command()
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Also every finished run under this folder "
              "(searched recursively). Default when no RUN_DIR is given: runs/.")
@_output
def compare(run_dirs, runs_dir, as_json, markdown, plot):
    """Leaderboard of finished runs, best validation accuracy first.

    Columns: validation and test accuracy, the overfitting gap (final training accuracy minus
    validation accuracy: large means memorising), parameters and training seconds.

    \b
    catdog-zoo compare                                  # every run under runs/
    catdog-zoo compare runs/baseline-* runs/dropout-* --markdown
    catdog-zoo compare --runs-dir runs/zoo --plot curves.png
    """
    from .leaderboard import find_runs
    if not run_dirs and runs_dir is None:
        runs_dir = "runs"
    _print_leaderboard(find_runs(run_dirs, runs_dir), as_json, markdown, plot, relative_to=Path.cwd())


@cli.command()
@click.argument("pattern", required=False)
@click.option("--epochs", type=int, help="Epochs for every model (default: each model's own, usually 20).")
@click.option("--data", metavar="DIR|NAME", help="Class folders or a source name (default: cats_and_dogs_filtered).")
@click.option("--seed", type=int, help="Seed for every run (default 42).")
@click.option("--runs-dir", default="runs/zoo", show_default=True, type=click.Path(file_okay=False),
              help="One run directory per model goes here.")
@click.option("-q", "--quiet", is_flag=True, help="No per-epoch progress; only a line per model.")
@_output
def zoo(pattern, epochs, data, seed, runs_dir, quiet, as_json, markdown, plot):
    """Train every installed model (or those matching PATTERN), then print the leaderboard.

    The whole reference workflow in one command. Each model trains into RUNS_DIR/MODEL;
    run the same command again after a stop and finished models are kept, an unfinished
    one resumes from its last epoch. A model that fails is reported and the others go on;
    the exit status is then 1.

    \b
    catdog-zoo zoo                      # all installed models, 20 epochs each
    catdog-zoo zoo --epochs 2 --runs-dir runs/quick
    catdog-zoo zoo 'dropout*' --markdown
    """
    from .sweep import run_zoo
    if epochs is not None and epochs < 1:
        raise click.BadParameter("must be >= 1", param_hint="--epochs")
    result = run_zoo(pattern, runs_dir=runs_dir, epochs=epochs, data=data, seed=seed, quiet=quiet,
                     say=lambda text: click.echo(text, err=as_json))
    if result.runs:
        click.echo("", err=as_json)
        _print_leaderboard(result.runs, as_json, markdown, plot, relative_to=Path.cwd())
    for name, reason in result.failures.items():
        click.echo(f"Error: {name}: {reason}", err=True)
    if result.failures:
        raise SystemExit(1)


@cli.command("new-plugin")
@click.argument("dist_name")
@click.option("--dir", "parent", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder in which to create the DIST_NAME folder.")
def new_plugin(dist_name, parent):
    """Create a ready-to-install plugin distribution DIST_NAME with one example model.

    \b
    catdog-zoo new-plugin catdog-zoo-tiny-net     # model 'tiny_net', module catdog_zoo_tiny_net
    pip install -e ./catdog-zoo-tiny-net[test]
    catdog-zoo models tiny_net
    """
    from .scaffold import names_for, scaffold
    target = scaffold(dist_name, parent)
    module, model = names_for(dist_name)
    click.echo(f"Created {target}/ (pyproject.toml, {module}.py, tests/, README.md) with model '{model}'.")
    click.echo(f"Next: pip install -e '{target}[test]' && catdog-zoo models {model}")


def main():
    get_zoo().register_commands(cli)
    cli()

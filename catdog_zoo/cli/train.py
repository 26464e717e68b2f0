"""Training from the command line: ``train`` (one model) and ``zoo`` (every model, then a leaderboard)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from ..config import KEYS, check_for_model, load_config_file, resolve_config
from ..plugins import get_zoo
from ..runs.confine import check_output
from ..util.system import check_can_write
from .options import config_options
from ..util.names import terminal
from .output import echo, echo_json, leaderboard_options, print_leaderboard


def _model_from(model, config_file) -> str:
    if model:
        return model
    named = load_config_file(config_file).get("model") if config_file else None
    if not named:
        raise click.UsageError("give a MODEL to train (see 'catdog-zoo models'), a --config that names one, "
                               "or --resume RUN_DIR")
    return named


@click.command()
@click.argument("model", required=False)
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), metavar="RUN_DIR",
              help="Continue a stopped run from its last epoch checkpoint (no MODEL or other flags).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of the same keys "
              "(epochs, learning_rate, ...; a run's config.yaml repeats that run); flags override it.")
@config_options
@click.option("--overwrite", is_flag=True, help="Replace the run already in --run-dir.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output (decoding, feature extraction, epochs); "
              "the run directory is still printed at the end.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's metrics.json on stdout at the end "
              "(progress goes to stderr or, with -q, nowhere).")
def train(model, resume_dir, config_file, quiet, overwrite, as_json, **flags):
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
      catdog-zoo train --config runs/mobilenet_v2-20261124-101500/config.yaml
      catdog-zoo train --resume runs/mobilenet_v2-20261124-101500
      catdog-zoo train --resume copied-run --data ~/pets   # its data is elsewhere here

    A run records its data and weights as absolute paths (a data source by name), so its folder can be
    moved or copied; in a --config file, relative paths are relative to the file's folder. With a
    single folder of class folders, 10% of each class is validation and 10% test (--val-fraction,
    --test-fraction); a warning says when a split is too small for its accuracy to mean much.

    A model that declares a frozen backbone (mobilenet_v2) computes the backbone's features
    once per image (and per augmented view), caches them on disk, and trains its head on them;
    the saved model is still the whole model. Cache: $CATDOG_ZOO_CACHE or ~/.cache/catdog-zoo.
    """
    if resume_dir:
        moved = {k: flags.pop(k) for k in ("data", "weights")}  # where they are now: the run may have moved
        given = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v is not None]
        given = ([model] if model else []) + given + (["--config"] if config_file else []) + (
            ["--overwrite"] if overwrite else [])
        if given:
            raise click.UsageError(f"--resume continues a run with its own config; drop {', '.join(given)} (only "
                                   "--data and --weights, saying where they are now, go with it)")
        from ..training.session import resume
        with _progress_to_stderr(as_json):
            _report(resume(resume_dir, quiet=quiet, **moved), quiet, as_json)
        return
    model = _model_from(model, config_file)
    # Everything that can be refused is refused here, before TensorFlow loads.
    spec = get_zoo().model(model)
    check_for_model(spec, resolve_config(spec, config_file, **flags))
    from ..training.session import train as run_training
    with _progress_to_stderr(as_json):
        result = run_training(model, config_file=config_file, quiet=quiet, overwrite=overwrite, **flags)
    _report(result, quiet, as_json)


def _progress_to_stderr(as_json: bool):
    """With --json, stdout carries the JSON alone: Keras' epoch lines and our own go to stderr."""
    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()


def _report(result, quiet: bool, as_json: bool) -> None:
    if as_json:
        echo_json(result.metrics)
    elif quiet and result.run_dir is not None:
        echo(f"Run saved to {terminal(result.run_dir)}")


@click.command()
@click.argument("pattern", required=False)
@click.option("--epochs", type=click.IntRange(KEYS["epochs"].minimum, KEYS["epochs"].maximum),
              help="Epochs for every model (default: each model's own, usually 20).")
@click.option("--data", metavar="DIR|NAME", help=KEYS["data"].help)
@click.option("--seed", type=click.IntRange(0, KEYS["seed"].maximum), help="Seed for every run (default 42).")
@click.option("--runs-dir", default="runs/zoo", show_default=True, type=click.Path(file_okay=False),
              help="One run directory per model goes here.")
@click.option("-q", "--quiet", is_flag=True, help="No per-epoch progress; only a line per model.")
@leaderboard_options
def zoo(pattern, epochs, data, seed, runs_dir, quiet, as_json, markdown, plot, overwrite):
    """Train every installed model (or those matching PATTERN), then print the leaderboard.

    The whole reference workflow in one command. Each model trains into RUNS_DIR/MODEL;
    run the same command again after a stop and finished models are kept, an unfinished
    one resumes from its last epoch. A model that fails is reported and the others go on;
    the exit status is then 1.

    \b
    Examples:
      catdog-zoo zoo                      # all installed models, 20 epochs each
      catdog-zoo zoo --epochs 2 --runs-dir runs/quick
      catdog-zoo zoo 'dropout*' --markdown
    """
    if plot:  # refused now, not after the sweep
        check_output(plot, flag="--plot", overwrite=overwrite, reads=[data if data and Path(data).is_dir() else None])
    from ..training.zoo_sweep import run_zoo
    result = run_zoo(pattern, runs_dir=runs_dir, epochs=epochs, data=data, seed=seed, quiet=quiet,
                     say=lambda text: echo(text, err=as_json))
    if result.runs:
        echo("", err=as_json)
        print_leaderboard(result.runs, as_json, markdown, plot, overwrite=overwrite)
    for name, reason in result.failures.items():
        echo(terminal(f"Error: {name}: {reason}"), err=True)  # one line, whatever the plugin's error holds
    if result.failures:
        raise SystemExit(1)


@click.command("lr-find")
@click.argument("model")
@click.option("--data", metavar="DIR|NAME", help=KEYS["data"].help)
@click.option("--image-size", type=click.IntRange(KEYS["image_size"].minimum, KEYS["image_size"].maximum),
              help="Square input size in pixels (default: the model's own).")
@click.option("--batch-size", type=click.IntRange(KEYS["batch_size"].minimum, KEYS["batch_size"].maximum),
              help=KEYS["batch_size"].help)
@click.option("--optimizer", type=click.Choice(KEYS["optimizer"].choices), help=KEYS["optimizer"].help)
@click.option("--seed", type=click.IntRange(0, KEYS["seed"].maximum), help="Seed of the split and the batch order.")
@click.option("--start", type=click.FloatRange(min=1e-12, max=1e3), default=1e-7, show_default=True,
              help="First learning rate of the sweep.")
@click.option("--end", type=click.FloatRange(min=1e-12, max=1e3), default=10.0, show_default=True,
              help="Last learning rate of the sweep.")
@click.option("--steps", type=click.IntRange(5, 100_000), default=100, show_default=True,
              help="Batches in the sweep (it stops early once the loss diverges).")
@click.option("--out", type=click.Path(dir_okay=False), default="lr-find.png", show_default=True,
              help="Where to draw the loss against the learning rate.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file (never one in the data or a run).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@click.option("--json", "as_json", is_flag=True, help="Print every rate and loss, and the suggestion, as JSON.")
def lr_find(model, data, image_size, batch_size, optimizer, seed, start, end, steps, out, overwrite, quiet, as_json):
    """Find a learning rate: train briefly while the rate grows, and plot the loss against it.

    The learning-rate range test, as fastai's lr_find: what train's first stage trains (the head on
    cached features for a frozen-backbone model, else the whole model on images) takes STEPS batches
    while the rate grows exponentially from --start to --end. The suggestion is where the smoothed
    loss falls fastest; pass a rate near it to train with --learning-rate. Nothing but the plot is
    written.

    \b
    Examples:
      catdog-zoo lr-find mobilenet_v2 --out lr.png
      catdog-zoo lr-find baseline --data photos/ --steps 60 --json
    """
    if start >= end:
        raise click.BadParameter(f"--start {start:g} must be below --end {end:g}", param_hint="--start")
    spec = get_zoo().model(model)
    options = {"data": data, "image_size": image_size, "batch_size": batch_size, "optimizer": optimizer,
               "seed": seed}
    check_for_model(spec, resolve_config(spec, None, **options))  # bad values stop before TensorFlow loads
    check_can_write(out)  # before the sweep, not after it
    check_output(out, overwrite=overwrite, reads=[data if data and Path(data).is_dir() else None])
    from ..reports.plots import lr_curve
    from ..training.lr_find import lr_find as sweep
    with _progress_to_stderr(as_json):
        found = sweep(model, start=start, end=end, steps=steps, quiet=quiet, **options)
    title = f"{terminal(found['model'])}: {found['stage']}, {len(found['rates'])} batches"
    written = lr_curve(found["rates"], found["losses"], found["smoothed"], out, title, found["suggested"],
                       found["configured"])
    if as_json:
        echo_json({**found, "plot": str(written)})
        return
    advice = (f"steepest descent at {found['suggested']:.1e}, lowest loss at {found['lowest_loss_rate']:.1e}"
              if found["suggested"] else "no clear descent: try a wider --start/--end or more --steps")
    echo(f"{title}: {advice}; configured {found['configured']:g}. Plot: {terminal(written)}")

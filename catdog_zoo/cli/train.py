"""Training from the command line: ``train`` (one model) and ``zoo`` (every model, then a leaderboard)."""

from __future__ import annotations

import contextlib
import shlex
import sys
from pathlib import Path

import click

from ..config import KEYS
from ..runs.confine import check_output
from ..training.resolve import resolve_run
from ..util.system import check_can_write
from .options import config_options, option_for, options_for
from ..util.names import terminal
from .output import echo, echo_json, leaderboard_options, print_leaderboard


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
    # Resolved once, here: everything that can be refused is refused before TensorFlow loads.
    spec, cfg = resolve_run(model, config_file, flags=True, **flags)
    from ..training.session import train_resolved
    with _progress_to_stderr(as_json):
        result = train_resolved(spec, cfg, quiet=quiet, overwrite=overwrite)
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
@option_for(KEYS["weights"])
@click.option("--runs-dir", default="runs/zoo", show_default=True, type=click.Path(file_okay=False),
              help="One run directory per model goes here.")
@click.option("-q", "--quiet", is_flag=True, help="No per-epoch progress; only a line per model.")
@leaderboard_options(overwrite="Replace a run in RUNS_DIR made with other settings (instead of failing that "
                               "model), and an existing --plot file.")
def zoo(pattern, epochs, data, seed, weights, runs_dir, quiet, as_json, markdown, plot, overwrite):
    """Train every installed model (or those matching PATTERN), then print the leaderboard.

    The whole reference workflow in one command. Each model trains into RUNS_DIR/MODEL;
    run the same command again after a stop and finished models are kept, an unfinished
    one resumes from its last epoch. A model that fails is reported and the others go on;
    the exit status is then 1. --weights is for the one pretrained model of the sweep
    (offline: the file Keras would download).

    \b
    Examples:
      catdog-zoo zoo                      # all installed models, 20 epochs each
      catdog-zoo zoo --epochs 2 --runs-dir runs/quick
      catdog-zoo zoo --epochs 5 --overwrite   # runs/zoo held 2-epoch runs: replace them
      catdog-zoo zoo 'dropout*' --markdown
    """
    if plot:  # refused now, not after the sweep
        check_output(plot, flag="--plot", overwrite=overwrite, reads=[data if data and Path(data).is_dir() else None])
    from ..training.zoo_sweep import run_zoo
    result = run_zoo(pattern, runs_dir=runs_dir, epochs=epochs, data=data, seed=seed, weights=weights, quiet=quiet,
                     overwrite=overwrite, say=lambda text: echo(text, err=as_json))
    if result.runs:
        echo("", err=as_json)
        print_leaderboard(result.runs, as_json, markdown, plot, overwrite=overwrite)
    if result.failures:  # each was said, with its reason, when it happened
        failed = ", ".join(terminal(name) for name in result.failures)
        echo(f"Error: {len(result.failures)} of {len(result.failures) + len(result.runs)} models failed: {failed} "
             "(the reasons are above)", err=True)
        raise SystemExit(1)


# What decides the sweep: the data and its split, the input, the batches, the optimizer, the weights and the
# features. The rest of train's keys (epochs, stages, where a run is written) do not apply; --config may hold them.
LR_FIND_FLAGS = ("data", "image_size", "batch_size", "optimizer", "seed", "val_fraction", "test_fraction", "weights",
                 "engine", "train_precision", "aug_views", "decoded_cache", "strict")


@click.command("lr-find")
@click.argument("model", required=False)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of train's keys (a run's "
              "config.yaml: its data, sizes and weights); flags override it.")
@options_for(*LR_FIND_FLAGS)
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
@click.option("--json", "as_json", is_flag=True, help="Print every rate and loss, and the suggestions, as JSON.")
def lr_find(model, config_file, start, end, steps, out, overwrite, quiet, as_json, **options):
    """Find a learning rate: train briefly while the rate grows, and plot the loss against it.

    The learning-rate range test, as fastai's lr_find: what train's first stage trains (the head on
    cached features for a frozen-backbone model, else the whole model on images) takes STEPS batches
    while the rate grows exponentially from --start to --end, and stops once the loss diverges (its
    smoothed value passes 4x its lowest). On the smoothed loss, leaving out the first tenth of the
    batches (warm-up) and the last five (the divergence), it suggests the rates of fastai's rules:
    valley (its default: half-way down the longest fall of the loss) and steep (where it falls
    fastest), unless the loss never got below that of answering the classes' shares (the model
    learned nothing in the sweep). Pass one to train with --learning-rate. Nothing but the plot is
    written.

    \b
    Examples:
      catdog-zoo lr-find mobilenet_v2 --out lr.png
      catdog-zoo lr-find baseline --data photos/ --image-size 128x96 --steps 60 --json
      catdog-zoo lr-find --config runs/mobilenet_v2-20261124-101500/config.yaml --weights mnv2.h5
    """
    if start >= end:
        raise click.BadParameter(f"--start {start:g} must be below --end {end:g}", param_hint="--start")
    spec, cfg = resolve_run(model, config_file, trackers=False, flags=True, **options)  # refused before TF loads
    check_can_write(out)  # before the sweep, not after it
    check_output(out, overwrite=overwrite, reads=[cfg.data if cfg.data and Path(cfg.data).is_dir() else None])
    from ..reports.plots import lr_curve
    from ..training.lr_find import RULES
    from ..training.lr_find import sweep
    with _progress_to_stderr(as_json):
        found = sweep(spec, cfg, start=start, end=end, steps=steps, quiet=quiet)
    rates = found["rates"]
    title = f"{terminal(found['model'])}: {found['stage']}, {len(rates)} batches"
    written = lr_curve(rates, found["losses"], found["smoothed"], out, title,
                       found["suggestions"] if found["learned"] else {}, found["configured"], found["considered"],
                       found["chance_loss"])
    if as_json:
        echo_json({**found, "plot": str(written)})
        return
    ended = (f"stopped after {len(rates)} of {steps} batches: {found['stopped']}" if found["stopped"] else
             f"{steps} batches from {start:.1e} to {end:.1e}; the loss did not diverge")
    echo(f"{title} ({ended}).")
    first, last = found["considered"]
    if not found["learned"]:
        echo(f"No suggestion: between batches {first + 1} and {last} the loss (a running median of 5 batches) never "
             f"got below {found['chance_loss']:.2f}, the loss of answering each class's share, so no rate made the model learn "
             f"in this sweep (what falls is its initial error, or the network dying at high rates). Keep the "
             f"configured {found['configured']:g}, or sweep longer (--steps). Plot: {terminal(written)}")
        return
    if not any(found["suggestions"].values()):
        echo(f"No suggestion: the smoothed loss does not fall between batches {first + 1} and {last}. Try a wider "
             f"--start/--end or more --steps. Plot: {terminal(written)}")
        return
    echo(f"Suggested learning rates (fastai's rules on the smoothed loss, batches {first + 1}-{last}):")
    for rule, rate in found["suggestions"].items():
        echo(f"  {rule:<7} {'-' if rate is None else f'{rate:.1e}':<8}  {RULES[rule]}")
    best = found["suggested"] or found["suggestions"]["steep"]
    echo(f"Configured now: {found['configured']:g}. Train with it: catdog-zoo train {terminal(spec.name)} "
         f"--learning-rate {best:.1e}{_same_flags(config_file, options)}")
    echo(f"Plot: {terminal(written)}")


def _same_flags(config_file, options: dict) -> str:
    """The flags given to lr-find that train takes too, to repeat after the suggested rate."""
    given = ([("--config", config_file)] if config_file else []) + [
        (KEYS[name].option, value) for name, value in options.items() if value is not None]
    shown = []
    for flag, value in given:
        if value is True:
            shown.append(flag)
        elif value is not False:
            text = "x".join(map(str, value)) if isinstance(value, tuple) else str(value)
            shown.append(f"{flag} {shlex.quote(text)}")
    return terminal("".join(f" {part}" for part in shown))

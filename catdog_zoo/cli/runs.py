"""Using finished runs: ``evaluate``, ``predict``, ``export`` and ``compare``.

Each command reads the run's record first (no TensorFlow needed), so a wrong run directory is
refused at once; the model is loaded only when there is work for it.
"""

from __future__ import annotations

import click

from ..config import SPLITS
from ..runs.confine import check_output
from ..runs.inputs import check_threshold, collect_images
from ..runs.record import read_run
from ..util.confidence import interval_text, small_split_text, too_small
from ..util.names import terminal
from ..util.progress import SILENT, terminal_progress
from ..util.system import check_can_write
from .output import echo, echo_json, leaderboard_options, print_leaderboard

run_dir_argument = click.argument("run_dir", type=click.Path(file_okay=False))


@click.command()
@run_dir_argument
@click.option("--data", metavar="DIR|NAME", help="Score this folder of class folders (the run's classes) "
              "instead of the data the run records: the run's own data moved elsewhere, or new photos.")
@click.option("--split", type=click.Choice((*SPLITS, "all")), help="Which images: a split chosen with the run's "
              "seed and fractions, or all of them. Default: validation of the run's own data, all of any other "
              "folder.")
@click.option("--tta", is_flag=True, help="Test-time augmentation: average each image's probabilities with "
              "its mirror image's (twice the work).")
@click.option("--no-reject", "no_reject", is_flag=True, help="Leave out the rejection of images unlike the run's "
              "training photos (default: also report how many it would answer 'unknown').")
@click.option("--json", "as_json", is_flag=True, help="Print JSON ({data, own_data, split, num_images, accuracy, "
              "interval, loss, per_class, ...}).")
def evaluate(run_dir, data, split, tta, no_reject, as_json):
    """Accuracy and loss of a finished run's model on one split of its data, or on a folder of new photos.

    The accuracy comes with its 95% confidence interval (Wilson): on few images it is wide, and a
    warning says when there are too few for the accuracy to mean much.

    \b
    Examples:
      catdog-zoo evaluate runs/mobilenet_v2-20261124-101500 --split test
      catdog-zoo evaluate runs/mobilenet_v2-20261124-101500 --data ~/more-pets --json   # every image
      catdog-zoo evaluate runs/mobilenet_v2-20261124-101500 --split test --tta
    """
    recorded_data_first(run_dir, data)
    from ..runs.evaluate import evaluate as run_evaluate
    from ..runs.scores import score_text
    result = run_evaluate(run_dir, data=data, split=split, tta=tta, reject=not no_reject,
                          progress=terminal_progress())
    if as_json:
        echo_json(result)
    else:
        echo(terminal(evaluated_line(result)))
        for name, s in result["per_class"].items():
            echo(f"  {terminal(name)}: precision {score_text(s, 'precision')}, recall {score_text(s, 'recall')}, "
                 f"f1 {score_text(s, 'f1')} ({s['support']} images)")
        echo(terminal(rejection_line(result["rejection"], result["num_images"])))
        if too_small(result["num_images"]):  # --json has the interval that says it
            echo(terminal(f"Warning: {small_split_text(result['split'], result['num_images'])}"), err=True)


def evaluated_line(r: dict) -> str:
    """"test: accuracy 0.9500 (95% CI 0.76-0.99), loss 0.12 (20 images of DIR, the run's own data)"."""
    whose = "the run's own data" if r["own_data"] else "new to the run"
    return (f"{r['split']}: accuracy {r['accuracy']:.4f} ({interval_text(r['interval'])}), loss {r['loss']:.4f} "
            f"({r['num_images']} images of {r['data']}, {whose}{', with flip TTA' if r['tta'] else ''})")


def recorded_data_first(run_dir, data) -> None:
    """A wrong folder, or a run whose recorded data is not here (and no ``--data``), refused before TensorFlow
    loads (seconds)."""
    from ..data.sources import data_is_here
    from ..runs.layout import recorded_in

    config, _ = read_run(run_dir)
    if data is None:
        data_is_here(config, recorded_in(run_dir))


def rejection_line(r: dict, total: int) -> str:
    if not r["available"]:
        return f"rejection: unavailable ({r['why']})"
    accepted = "-" if r["accepted_accuracy"] is None else f"{r['accepted_accuracy']:.4f}"
    return (f"rejection: {r['rejected']} of {total} images answered 'unknown' ({r['rejected_fraction']:.2%}, "
            f"ood_score > {r['threshold']:.4f}); accuracy on the {total - r['rejected']} accepted: {accepted}")


@click.command()
@run_dir_argument
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), help="Also write a CSV: path, label, probability, "
              "and p_CLASS per class.")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Two-class models: predict the second class "
              "(e.g. dogs) when its probability is >= this (default: the more likely class).")
@click.option("--json", "as_json", is_flag=True, help='Print a JSON list of {"path", "label", "probability", '
              '"probabilities", "rejected", "ood_score"}.')
@click.option("--strict", is_flag=True, help="Fail on a file that is not a usable image (default: skip it).")
@click.option("--tta", is_flag=True, help="Test-time augmentation: average each image's probabilities with "
              "its mirror image's.")
@click.option("--no-reject", "no_reject", is_flag=True, help="Always answer one of the run's classes (default: "
              "'unknown' for an image unlike the run's training photos, when its model has a pretrained backbone).")
@click.option("--explain", type=click.Path(file_okay=False), metavar="DIR", help="Write each image under its "
              "Grad-CAM heatmap (where the model found its evidence for the predicted class) into DIR, and add the "
              "raw grid to --json as 'heatmap'.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file, and pictures of the same names in "
              "--explain (never an input or a run's file).")
@click.option("-q", "--quiet", is_flag=True, help="Only the predictions (and warnings): no progress line, no notes.")
def predict(run_dir, images, out, threshold, as_json, strict, tta, no_reject, explain, overwrite, quiet):
    """Label IMAGES (files, or folders searched recursively) with a finished run's model.

    Prints the predicted label, the probability of that label, and the file. The label is 'unknown' when
    the image is unlike every training photo of the run (ood_score above the run's threshold, set from its
    own validation photos: docs/trust.md); --no-reject turns that off. With --threshold, each line also
    shows the second class's probability against the threshold, which decided the label.

    \b
    Examples:
      catdog-zoo predict runs/mobilenet_v2-20261124-101500 photos/ --out predictions.csv
      catdog-zoo predict runs/mobilenet_v2-20261124-101500 photos/ --threshold 0.9   # dogs only when sure
      catdog-zoo predict runs/mobilenet_v2-20261124-101500 photo.jpg --explain why/ --json
    """
    _, record = read_run(run_dir)
    # Everything that can be refused is refused before TensorFlow loads (seconds): the run, the images, the flags.
    check_threshold(threshold, record.class_names, run_dir)
    collect_images(images, [])  # every path there, images in it (predict lists them again, and warns)
    for path in (out, explain):
        if path:
            check_can_write(path)  # before the images are labelled, not after
    if out:  # refused before any work: never an input, never inside a run, an existing file only with --overwrite
        check_output(out, overwrite=overwrite, reads=[run_dir, *images])
    from ..runs.predict import predict as run_predict
    from ..runs.predict import write_predictions_csv
    results = run_predict(run_dir, images, strict=strict, threshold=threshold, tta=tta, reject=not no_reject,
                          explain=explain, overwrite=overwrite, progress=SILENT if quiet else terminal_progress(),
                          say=(lambda text: None) if quiet else None)
    if out:
        write_predictions_csv(results, out)
    if as_json:
        echo_json(results)
        return
    second = record.class_names[-1]
    for r in results:
        ood = "" if r["ood_score"] is None else f"\tood {r['ood_score']:.3f}"
        decided = ""
        if threshold is not None:  # the label is the threshold's decision: show what it was made on
            p = r["probabilities"][second]
            decided = f"\t{terminal(second)} {p:.4f} {'>=' if p >= threshold else '<'} {threshold:g}"
        said = r["label"]
        if r["rejected"]:  # its probability is the likeliest class's: name that class beside it
            said += f" (else {max(r['probabilities'], key=r['probabilities'].get)})"
        echo(f"{terminal(said)}\t{r['probability']:.4f}{ood}{decided}\t{terminal(r['path'])}")
    if out and not quiet:
        echo(f"Wrote {len(results)} predictions to {terminal(out)}", err=True)


@click.command()
@run_dir_argument
@click.option("--format", "fmt", metavar="NAME", required=True,
              help="Any registered export format ('catdog-zoo plugins' lists them). Built in: saved_model, a "
              "SavedModel in TF Serving's OUT/VERSION layout, returning probabilities and class names (also from "
              "encoded image bytes); tflite, one .tflite file returning logits. Plugins add more (onnx: "
              "plugins/catdog-zoo-onnx).")
@click.option("--quantize", metavar="KIND", default="none", show_default=True,
              help="Formats that quantize (tflite: dynamic, float16 or int8): int8 weights (dynamic), float16 "
              "weights, or int8 weights and activations calibrated on 200 of the run's training images (int8). "
              "The test accuracy of both the file and model.keras is printed.")
@click.option("--version", type=click.IntRange(min=1), default=None,
              help="Versioned formats only (saved_model): the version folder to write [default: the next free "
              "number].")
@click.option("--out", type=click.Path(), help="Where to write: the model base path for saved_model (default "
              "RUN_DIR/export/serving/MODEL), the file for tflite (default RUN_DIR/export/model[-QUANTIZE].tflite) "
              "and other formats (RUN_DIR/export/model with the format's suffix: model.onnx).")
@click.option("--overwrite", is_flag=True, help="Replace an existing export at --out (or that --version).")
@click.option("--data", metavar="DIR|NAME", help="Where the run's data is now, when not where its config.yaml "
              "records it (a run copied to another machine); the export is checked on its test split.")
@click.option("--json", "as_json", is_flag=True, help="Print the export report (path, size, accuracies, parity) "
              "as JSON.")
def export(run_dir, fmt, quantize, version, out, overwrite, data, as_json):
    """Export a finished run's model for serving, and check it against the Keras model.

    Every format takes float32 images in [0, 255] at the run's image size. Class names are written
    one per line beside every export (labels.txt). The export is then run on the run's test split
    beside model.keras: both accuracies, and for a float export the largest difference in class
    probabilities, are printed and saved beside it (OUT.export.json); a float export that differs
    by more than 1e-3 makes the command exit with status 1.

    \b
    Examples:
      catdog-zoo export runs/mobilenet_v2-20261124-101500 --format saved_model
      catdog-zoo export runs/mobilenet_v2-20261124-101500 --format saved_model --out serving/catdog
      catdog-zoo export runs/mobilenet_v2-20261124-101500 --format tflite --quantize int8
      catdog-zoo export runs/mobilenet_v2-20261124-101500 --format onnx   (plugins/catdog-zoo-onnx)
    Then, for instance: docker run -p 8501:8501 -v $PWD/serving/catdog:/models/catdog
    -e MODEL_NAME=catdog tensorflow/serving (docs/deploy.md).
    """
    from ..runs.export_formats import exporter
    exporter(fmt, quantize, version)  # an unknown format or an option it does not take: before TensorFlow loads
    recorded_data_first(run_dir, data)
    from ..runs.export import describe
    from ..runs.export import export as run_export
    report = run_export(run_dir, fmt, out, overwrite=overwrite, quantize=quantize, version=version, data=data,
                        progress=terminal_progress())
    if as_json:
        echo_json(report)
    else:
        echo(terminal(describe(report)))
    if report["parity_ok"] is False:  # kept, to be looked at, but never to be taken for a faithful export
        echo(terminal(f"Error: the export at {report['path']} does not answer as the run's model does (its record "
                      "says parity_ok: false); do not ship it"), err=True)
        raise SystemExit(1)


@click.command()
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Also every finished run under this folder "
              "(searched recursively). Default when no RUN_DIR is given: runs/.")
@leaderboard_options
def compare(run_dirs, runs_dir, as_json, markdown, plot, overwrite):
    """Leaderboard of finished runs, best validation accuracy first.

    Columns: validation and test accuracy, the overfitting gap (final training accuracy minus
    validation accuracy: large means memorising), parameters and training seconds.

    \b
    Examples:
      catdog-zoo compare                                  # every run under runs/
      catdog-zoo compare runs/baseline-* runs/dropout-* --markdown
      catdog-zoo compare --runs-dir runs/zoo --plot curves.png
    """
    from ..reports.leaderboard import find_runs
    if not run_dirs and runs_dir is None:
        runs_dir = "runs"
    if plot:  # before reading any run
        check_output(plot, flag="--plot", overwrite=overwrite, reads=run_dirs)
    print_leaderboard(find_runs(run_dirs, runs_dir), as_json, markdown, plot, given=run_dirs, overwrite=overwrite)

"""``catdog-zoo check-plugin NAME``: the conformance kit (catdog_zoo/conformance/) on a model or a plugin's models."""

from __future__ import annotations

import click

from ..util.names import terminal
from .output import echo, echo_json

WIDTH = 24  # the check names' column ("build 5 classes 160x160")


@click.command("check-plugin")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print every check of every model as JSON.")
@click.option("--quick", is_flag=True, help="Leave out the conversions (feature-extraction engines and export "
              "formats), the slowest checks.")
def check_plugin(name, as_json, quick):
    """Check that model NAME (or every model of the plugin or distribution NAME) works in every command.

    It builds the model (weights=None: nothing is downloaded) at its default size and at 96x128 with 2, 3 and 5
    classes, checks its logits' shape and dtype, trains a few steps, builds and trains it twice from one seed,
    saves it and loads it in Keras safe mode, splits its frozen backbone and converts it with every engine, and
    writes every export format, each compared with Keras. A model that takes one input size only declares
    tags=("fixed-size",) and is checked at that size. One line per check, PASS, FAIL or SKIP with why; exit status
    1 when any check failed, 2 for an unknown NAME.

    \b
    Examples:
      catdog-zoo check-plugin tiny_net
      catdog-zoo check-plugin catdog-zoo-dropout --quick
      catdog-zoo check-plugin mobilenet_v2 --json
    """
    from ..conformance import check_spec, specs_for

    specs = specs_for(name)

    def say(outcome):
        if not as_json:
            echo(terminal(outcome.line(WIDTH)))  # a plugin's exception text: one line, shown, never obeyed
    reports = []
    for spec in specs:
        if not as_json:
            echo(f"{terminal(spec.qualified_name)}:")
        reports.append(check_spec(spec, quick, say))
        if not as_json:
            echo(terminal(reports[-1].summary()))
    if as_json:
        echo_json([report.to_dict() for report in reports])
    if not all(report.ok for report in reports):
        raise click.exceptions.Exit(1)

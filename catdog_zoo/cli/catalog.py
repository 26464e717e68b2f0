"""What is installed: ``models``, ``plugins``, ``info``, and ``new-plugin`` to add to it."""

from __future__ import annotations

import click

from ..errors import ConfigError, first_line
from ..extensions import KINDS
from ..models.speed import BENCH_IMAGES
from ..plugins import DISABLE_ENV, get_zoo, where_models_are
from ..util.names import terminal
from ..util.progress import SILENT
from .output import echo, echo_json, human, table


def _facts(spec) -> dict:
    """Parameters and FLOPs, or an error string: a plugin's builder bug must not break the listing."""
    from ..models.facts import model_facts
    try:
        return model_facts(spec)
    except Exception as exc:  # noqa: BLE001 - any plugin bug is reported in the row
        return {"params": None, "flops": None, "error": f"{type(exc).__name__}: {exc}"}


def spec_dict(spec, facts=None) -> dict:
    d = spec.defaults
    data = {"name": spec.name, "qualified_name": spec.qualified_name, "plugin": spec.distribution or spec.plugin,
            "version": spec.version, "summary": spec.summary, "tags": list(spec.tags),
            "image_size": list(d.image_size), "pretrained": spec.pretrained,
            "weights_licence": spec.weights_licence, "frozen_backbone": spec.frozen_backbone,
            "imagenet_top1": spec.imagenet_top1,
            "defaults": {"optimizer": d.optimizer, "learning_rate": d.learning_rate,
                         "epochs": d.epochs, "batch_size": d.batch_size, "image_size": list(d.image_size)}}
    if facts is not None:
        data.update(params=facts["params"], flops=facts["flops"])
        if "error" in facts:
            data["error"] = facts["error"]
    return data


@click.command()
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--no-params", is_flag=True, help="Skip counting parameters and FLOPs (no TensorFlow start-up).")
@click.option("--bench", is_flag=True, help="Time each matching frozen backbone's feature extraction on this "
              "machine (random weights: the same speed), next to its published ImageNet top-1; fastest first.")
@click.option("--engine", default="auto", show_default=True, metavar="NAME",
              help="With --bench: the engine that extracts, as train's --engine (auto, or a registered engine).")
@click.option("--images", type=click.IntRange(1, 1024), default=BENCH_IMAGES, show_default=True,
              help="With --bench: images timed per backbone (after a warm-up).")
def models(pattern, as_json, no_params, bench, engine, images):
    """List installed models, optionally filtered by an fnmatch PATTERN (e.g. 'mobile*').

    Parameters and FLOPs (per image; a multiply-add counts as two) are for two classes at the
    model's default input size; they are computed once per plugin version and cached.

    With --bench, each matching model with a frozen backbone is built with random weights at its
    default (native) size and its features extracted as a training run extracts them; images/s
    are this machine's, at this moment: compare backbones timed in the same run.

    \b
    Examples:
      catdog-zoo models
      catdog-zoo models 'mobile*' --json
      catdog-zoo models --bench 'efficientnet*'
    """
    if bench:
        _bench(pattern, as_json, engine, images)
        return
    if engine != "auto" or images != BENCH_IMAGES:
        raise click.UsageError("--engine and --images apply only with --bench")
    rows = _rows(get_zoo().models.list(pattern), no_params)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        disabled = sorted(info.name for info in get_zoo().plugins.values() if info.status == "disabled")
        if pattern:
            echo("No models match.")
        elif disabled:
            echo(f"No models enabled: plugin(s) {', '.join(map(terminal, disabled))} disabled by ${DISABLE_ENV}.")
        else:
            echo(f"No models installed. {where_models_are()}")
        _note_broken_plugins()
        return
    for r in rows:
        r["plugin"] = f"{r['plugin']} {r['version']}".strip()
        r["input"] = "x".join(map(str, r["image_size"]))
        r["weights"] = r["pretrained"] or "-"
        r["tags"] = ", ".join(r["tags"])
        r["params"] = "-" if no_params else human(r["params"])
        r["flops"] = "-" if no_params else human(r["flops"])
    # Too wide for the terminal: the free text goes under each model, wrapped (170 columns otherwise)
    table(rows, ["name", "plugin", "params", "flops", "input", "weights", "tags", "summary"], below=("summary", "tags"))
    _note_broken_plugins()


def _rows(specs, no_params: bool) -> list:
    """Each spec as a row, with its parameters and FLOPs unless ``no_params``: counted once per plugin version
    (building each model), with a progress line on stderr while models not counted yet are (a catalogue of
    dozens of backbones, just installed, takes a while once)."""
    if no_params:
        return [spec_dict(spec) for spec in specs]
    from ..models.facts import counted
    from ..util.progress import terminal_progress

    todo = sum(1 for spec in specs if not counted(spec))
    with (terminal_progress() if todo > 1 else SILENT)("counting parameters and FLOPs", len(specs), "models") as bar:
        rows = []
        for spec in specs:
            rows.append(spec_dict(spec, _facts(spec)))
            bar.advance()
    return rows


def _bench(pattern, as_json, engine, images) -> None:
    from ..models.speed import extraction_speed, on_the_frontier
    specs = [spec for spec in get_zoo().models.list(pattern) if spec.frozen_backbone]
    rows = []
    for spec in specs:  # one at a time, so that each has the machine to itself
        row = {"name": spec.name, "qualified_name": spec.qualified_name, "imagenet_top1": spec.imagenet_top1}
        try:
            row.update(extraction_speed(spec, images, engine, say=lambda line: echo(line, err=True)))
        except ConfigError:  # the flags' fault (--engine openvino without OpenVINO), the same for every row
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's builder bug is reported in its row
            row.update(images_per_s=None, error=f"{type(exc).__name__}: {first_line(exc)}")
        done = f"{row['images_per_s']:.1f} images/s" if row["images_per_s"] else "failed"
        echo(f"{terminal(spec.name)}: {done}", err=True)  # minutes for a whole catalogue: progress, off stdout
        rows.append(row)
    rows.sort(key=lambda r: -(r["images_per_s"] or 0))
    frontier = on_the_frontier(rows) if len(rows) > 1 else set()
    for row in rows:
        row["frontier"] = row["name"] in frontier
    if as_json:
        echo_json(rows)
        return
    if not rows:
        echo("No models with a frozen backbone match." if pattern else "No models with a frozen backbone installed.")
        return
    shown = [{"name": r["name"] + (" *" if r["frontier"] else ""),
              "input": "x".join(map(str, r.get("image_size", []))) or "-",
              "params": human(r.get("params")), "top-1": f"{r['imagenet_top1']:.1f}%" if r["imagenet_top1"] else "-",
              "images/s": f"{r['images_per_s']:.1f}" if r["images_per_s"] else "-",
              "engine": r.get("engine") or r.get("error", "")} for r in rows]
    table(shown, ["name", "input", "params", "top-1", "images/s", "engine"])
    if frontier:
        echo("* no other backbone here is both faster and more accurate (published ImageNet top-1)")


def _note_broken_plugins() -> None:
    broken = [info.name for info in get_zoo().plugins.values() if info.status == "error"]
    if broken:
        echo(f"Note: plugin(s) {', '.join(map(terminal, broken))} failed to load; see 'catdog-zoo plugins'", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def plugins(as_json):
    """List installed plugins: version, hooks, models, and any load errors.

    A plugin that fails to import or register is listed here with its error;
    the other plugins keep working. Disable plugins with CATDOG_ZOO_DISABLE=name1,name2.

    \b
    Examples:
      catdog-zoo plugins
      CATDOG_ZOO_DISABLE=dropout catdog-zoo plugins --json
    """
    infos = [info.to_dict() for info in get_zoo().plugins.values()]
    if as_json:
        echo_json(infos)
        return
    for info in infos:
        origin = f"{info['distribution']} {info['version']}".strip() or info["module"]
        echo(f"{terminal(info['name'])} ({terminal(origin)}) [{terminal(info['status'])}]")
        for key in ("hooks", "models", "datasets", "commands"):
            if info[key]:
                echo(f"  {key}: {', '.join(map(terminal, info[key]))}")
        for kind in KINDS:  # each with its summary: what a user reads before typing --engine/--format/--track
            if info[kind]:
                echo(f"  {kind}:")
                for name in info[kind]:
                    spec = get_zoo().extensions[kind].get(name)
                    summary = spec.summary if spec is not None and spec.plugin == info["name"] else ""
                    echo(f"    {terminal(name)}" + (f" - {terminal(summary)}" if summary else ""))
        if info["skipped"]:
            echo(f"  skipped: {terminal(info['skipped'])}")
        for err in info["errors"]:
            echo(f"  error: {terminal(err)}")  # a plugin's exception text: one line, shown, never obeyed


@click.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print the spec as JSON (no summary table).")
def info(model, as_json):
    """Show MODEL's spec (defaults, tags, origin) and its Keras layer summary.

    \b
    Examples:
      catdog-zoo info mobilenet_v2
      catdog-zoo info baseline --json
    """
    spec = get_zoo().model(model)
    data = spec_dict(spec, _facts(spec))
    if as_json:
        echo_json(data)
        return
    shown = {**data, "tags": ", ".join(data["tags"]), "params": f"{data['params']:,}" if data["params"] else "?",
             "flops": f"{human(data['flops'])} per image at {'x'.join(map(str, data['image_size']))}",
             "defaults": ", ".join(f"{k}={v}" for k, v in data["defaults"].items())}
    for key in ("name", "summary", "plugin", "version", "tags", "params", "flops", "pretrained", "weights_licence",
                "imagenet_top1", "frozen_backbone", "defaults"):
        value = shown[key]
        echo(f"{key + ':':17}{terminal(value) if value not in (None, '') else '-'}")
    echo("\nLayers (two classes, default image size; pretrained weights not loaded):")
    spec.build(2, None, weights=None).summary(print_fn=lambda line, **_: echo(line))  # a plugin's layer names


@click.command("new-plugin")
@click.argument("dist_name")
@click.option("--dir", "parent", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder in which to create the DIST_NAME folder.")
def new_plugin(dist_name, parent):
    """Create a ready-to-install plugin distribution DIST_NAME with one example model.

    \b
    Examples:
      catdog-zoo new-plugin catdog-zoo-tiny-net     # model 'tiny_net', module catdog_zoo_tiny_net
      catdog-zoo install -e './catdog-zoo-tiny-net[test]'
      catdog-zoo models tiny_net
    """
    from ..scaffold import install_command, names_for, scaffold
    target = scaffold(dist_name, parent)
    module, model = names_for(dist_name)
    echo(f"Created {terminal(target)}/ (pyproject.toml, {module}.py, tests/, README.md) with model '{model}'.")
    # catdog-zoo's own install: a bare 'pip' may be another Python's (the system's, or outside pipx / uv tool)
    echo(f"Next: {terminal(install_command(target))} && catdog-zoo models {model}")

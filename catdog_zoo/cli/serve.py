"""``serve``: finished runs as a web page and a TF Serving-compatible JSON API (the ``serve`` extra)."""

from __future__ import annotations

import contextlib
import ipaddress

import click

from ..errors import ZooError
from ..util.names import terminal

@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; anything but loopback "
              "lets other machines use the model (pair it with --token).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--name", help="The model's name in /v1/models/NAME [default: the run's model name].")
@click.option("--token", envvar="CATDOG_ZOO_TOKEN", help="Require 'Authorization: Bearer TOKEN' on every API "
              "route (or set $CATDOG_ZOO_TOKEN; the page asks for it).")
@click.option("--no-batching", is_flag=True, help="Score each request alone (for comparison: batching is faster "
              "under load).")
@click.option("--max-batch", type=click.IntRange(1, 256), default=32, show_default=True,
              help="Images scored at once.")
@click.option("--max-wait-ms", type=click.FloatRange(0, 1000), default=5.0, show_default=True,
              help="How long a batch waits for more requests once it has one.")
@click.option("--max-body-mb", type=click.FloatRange(0.01, 1024), default=20.0, show_default=True,
              help="Largest request body (413 beyond).")
@click.option("--max-images", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Images in one request (413 beyond).")
@click.option("--max-queue", type=click.IntRange(1, 100_000), default=256, show_default=True,
              help="Images waiting for the model (503 beyond).")
@click.option("--no-reject", is_flag=True, help="Always answer one of the classes (no 'unknown').")
@click.option("--precision", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True,
              help="What the backbone computes in. bfloat16: faster under load on a CPU with AMX or AVX512-BF16 "
              "(openvino engine), but an image near the decision boundary may get another answer than "
              "'predict' gives (docs/serve.md).")
def serve(run_dirs, host, port, name, token, no_batching, max_batch, max_wait_ms, max_body_mb, max_images,
          max_queue, no_reject, precision):
    """Serve finished runs: a page at / and a JSON API on the same port.

    \b
    The API (docs/serve.md):
      POST /predict                         multipart field 'file' (repeatable) or a raw image body
      POST /v1/models/NAME:predict          TF Serving's REST API: {"instances": [{"b64": "..."}]}
      GET  /v1/models/NAME[/metadata]       TF Serving's status and metadata
      GET  /health, /openapi.json, /info
    Several runs of one model are its versions 1, 2, ... (/v1/models/NAME/versions/N:predict).
    Ctrl-C or SIGTERM finishes the requests in flight, then exits.

    \b
    Examples:
      catdog-zoo serve runs/mobilenet_v2-20261124-101500
      catdog-zoo serve runs/a runs/b --name pets --port 8501
      catdog-zoo serve runs/a --host 0.0.0.0 --token "$(openssl rand -hex 16)"
      curl -F file=@cat.jpg http://127.0.0.1:8000/predict
    """
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ZooError(f"serve needs the 'serve' extra ({exc.name} is missing): pip install 'catdog-zoo[serve]'") \
            from None
    from ..runs.record import read_run
    from ..serve.limits import Limits
    from ..util.locks import folder_lock

    for run_dir in run_dirs:
        read_run(run_dir)  # a wrong folder is refused before TensorFlow loads
    if token is not None and len(token) < 8:
        raise click.BadParameter("a token needs at least 8 characters", param_hint="--token")
    if not _loopback(host):
        click.echo(terminal(f"Warning: serving on {host}: anyone who can reach this machine on port {port} can use "
                             f"the model{'' if token else ' (--token requires a bearer token)'}"), err=True)
    limits = Limits(max_body_bytes=int(max_body_mb * 2**20), max_images=max_images, max_queue=max_queue,
                    max_batch=max_batch, max_wait_ms=max_wait_ms)
    with contextlib.ExitStack() as held:
        for run_dir in run_dirs:  # read while served: no train --overwrite or export replaces it meanwhile
            held.enter_context(folder_lock(run_dir, shared=True))
        _serve(run_dirs, host, port, name, token, no_batching, no_reject, limits, precision)


def _serve(run_dirs, host, port, name, token, no_batching, no_reject, limits, precision) -> None:
    import uvicorn

    from ..serve.app import create_app
    from ..serve.served import serve_plan

    plan = serve_plan(run_dirs, name=name, reject=not no_reject, precision=precision)
    app = create_app(plan, limits, token=token, batching=not no_batching,
                     say=lambda text: click.echo(terminal(text), err=True))
    shown = f"[{host}]" if ":" in host else host
    click.echo(terminal(f"Serving {', '.join(plan)} at http://{shown}:{port}/ (API: /v1/models/NAME:predict, "
                         f"/predict; Ctrl-C stops)"), err=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=5,
                            limit_concurrency=max(64, 4 * limits.max_queue // max(1, limits.max_images)),
                            timeout_keep_alive=5, workers=None, lifespan="on")
    server = _StopCleanly(config)
    server.run()
    if not server.started:
        raise ZooError(f"could not serve on {host}:{port} (in use, or not an address of this machine?)")


def _StopCleanly(config):
    """uvicorn's server, except that a stop asked for (Ctrl-C, SIGTERM) ends with exit status 0 once the requests
    in flight are answered: uvicorn would raise the signal again after its graceful shutdown."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            super().handle_exit(sig, frame)
            getattr(self, "_captured_signals", []).clear()
    return Server(config)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

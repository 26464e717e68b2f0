"""The ASGI application: the page, ``/predict``, TF Serving's REST API, ``/health`` and an OpenAPI description.

Every answer that is not a success is JSON ``{"error": "..."}`` naming what was wrong or which limit was met;
bad input is never a 500 and never a traceback. With a token, every route but ``/``, ``/health`` and
``/openapi.json`` needs ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import tfserving
from .batcher import Batcher
from .limits import LimitError, Limits
from .openapi import openapi
from .page import page
from .requests import count_ok, decode_all, json_body, read_body


class Server:
    """What the routes share: the served runs, a batcher each, the decoding pool, the limits and the token."""

    def __init__(self, plan: dict, limits: Limits, token: str | None, batching: bool = True):
        self.plan, self.limits, self.token = plan, limits, token
        self.decode_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="decode")
        self.explain_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain")
        batch = limits.max_batch if batching else 1
        self.batchers = {(name, v): Batcher(run.score, batch, limits.max_wait_ms if batching else 0.0,
                                            limits.max_queue)
                         for name, versions in plan.items() for v, run in versions.items()}
        self.ready = False

    def run_for(self, name: str | None, version=None):
        """The served run ``name`` (the only one when None) at ``version`` (the highest when None)."""
        if name is None:
            if len(self.plan) != 1:
                raise LimitError(400, f"several models are served ({', '.join(self.plan)}): say which with ?model=")
            name = next(iter(self.plan))
        versions = self.plan.get(name)
        if versions is None:
            raise LimitError(404, f"no model named {name[:64]!r} is served (served: {', '.join(self.plan)})")
        if version is None:
            version = max(versions)
        try:
            return versions[int(version)]
        except (KeyError, ValueError):
            raise LimitError(404, f"model {name} has no version {str(version)[:16]!r} "
                                  f"(versions: {', '.join(map(str, sorted(versions)))})") from None

    def authorised(self, request: Request) -> None:
        if self.token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            raise LimitError(401, "this server needs 'Authorization: Bearer TOKEN' (serve --token)")

    async def answer(self, run, items, names=None) -> list:
        """Answers for ``[("bytes", data) | ("pixels", array), ...]``: bytes decoded on every core, then batched.
        ``names``: how to name each item in an error (default ``instance N``)."""
        import numpy as np

        count_ok(len(items), self.limits)
        names = names or [f"instance {i}" for i in range(len(items))]
        encoded = [(names[i], data) for i, (kind, data) in enumerate(items) if kind == "bytes"]
        with self.batchers[run.name, run.version].announce() as batcher:
            decoded = iter(await decode_all(encoded, run.image_size, self.decode_pool) if encoded else [])
            images = [next(decoded) if kind == "bytes" else data for kind, data in items]
            return await batcher.submit(np.stack(images))


def create_app(plan: dict, limits: Limits = Limits(), token: str | None = None, batching: bool = True,
               say=lambda text: print(text, file=sys.stderr, flush=True)) -> Starlette:
    """The application serving ``plan`` (``serve.served.serve_plan``)."""
    server = Server(plan, limits, token, batching)

    @asynccontextmanager
    async def lifespan(app):
        for versions in plan.values():
            for run in versions.values():
                seconds = await asyncio.get_running_loop().run_in_executor(None, run.warm, limits.max_batch)
                say(f"Ready: {run.name} version {run.version} ({run.run_dir}, {run.scorer.engine}, warmed up in "
                    f"{seconds:.1f}s)" + (f"; {run.why}" if run.why else ""))
        server.ready = True
        yield
        for batcher in server.batchers.values():
            batcher.close()
        server.decode_pool.shutdown(wait=False, cancel_futures=True)
        server.explain_pool.shutdown(wait=False, cancel_futures=True)

    async def home(request):
        return HTMLResponse(page(), headers={"Content-Security-Policy": CSP})

    async def health(request):
        if not server.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ok", "models": {n: sorted(v) for n, v in plan.items()},
                             "batches": sum(b.batches for b in server.batchers.values()),
                             "images": sum(b.images for b in server.batchers.values())})

    async def info(request):
        server.authorised(request)
        return JSONResponse({"models": [run.info for versions in plan.values() for run in versions.values()],
                             "limits": limits.as_dict(), "auth": token is not None})

    async def predict(request):
        server.authorised(request)
        run = server.run_for(request.query_params.get("model"), request.query_params.get("version"))
        items, names = await _uploads(request, limits)
        found = await server.answer(run, [("bytes", data) for data in items], names)
        out = []
        for name, answer in zip(names, found):
            answer = dict(answer)
            answer.pop("class_index")
            out.append({"path": name, **answer})
        if request.query_params.get("explain") in ("1", "true"):
            await _explain(server, run, items, found, out)
        return JSONResponse(out)

    async def model_status(request):
        server.authorised(request)
        name, version = request.path_params["name"], request.path_params.get("version")
        run = server.run_for(name, version)
        return JSONResponse(tfserving.status([run.version] if version else plan[run.name]))

    async def model_metadata(request):
        server.authorised(request)
        return JSONResponse(tfserving.metadata(server.run_for(request.path_params["name"],
                                                              request.path_params.get("version"))))

    async def tf_predict(request):
        server.authorised(request)
        run = server.run_for(request.path_params["name"], request.path_params.get("version"))
        items, columnar = tfserving.parse_predict(json_body(await read_body(request, limits)), run.image_size)
        found = await server.answer(run, items)
        return JSONResponse(tfserving.response(found, run.class_names, columnar))

    async def spec(request):
        return JSONResponse(openapi(plan, limits))

    g = guarded
    routes = [Route("/", g(home)), Route("/health", g(health)), Route("/openapi.json", g(spec)),
              Route("/info", g(info)), Route("/predict", g(predict), methods=["POST"]),
              Route("/v1/models/{name}", g(model_status)),
              Route("/v1/models/{name}/versions/{version}", g(model_status)),
              Route("/v1/models/{name}/metadata", g(model_metadata)),
              Route("/v1/models/{name}/versions/{version}/metadata", g(model_metadata)),
              Route("/v1/models/{name}:predict", g(tf_predict), methods=["POST"]),
              Route("/v1/models/{name}/versions/{version}:predict", g(tf_predict), methods=["POST"])]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    app.state.server = server
    return app


CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
       "connect-src 'self'; media-src blob: mediastream:; base-uri 'none'; form-action 'none'")


async def _uploads(request: Request, limits: Limits) -> tuple:
    """``([bytes], [name])``: multipart ``file`` fields (repeatable), or the raw body as one image."""
    from ..util.names import terminal

    body = await read_body(request, limits)
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        return [body], ["upload"]
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    try:
        form = await Request(request.scope, replay).form(max_files=limits.max_images, max_fields=limits.max_images,
                                                         max_part_size=limits.max_body_bytes)
    except HTTPException as exc:  # Starlette's own limits and parse errors, said in the same terms as ours
        if "Too many" in str(exc.detail):
            raise LimitError(413, f"more than the {limits.max_images} images (or form fields) a request may send "
                                  "(max_images)") from None
        raise LimitError(400, f"the multipart form cannot be read: {exc.detail}") from None
    files = form.getlist("file")
    if any(isinstance(f, str) for f in files):
        raise LimitError(400, "the form field 'file' must hold files (multipart uploads)")
    count_ok(len(files), limits)
    data = [await f.read() for f in files]
    # An upload's file name is the client's text: shown, never used as a path
    return data, [terminal(f.filename or f"upload {i}") for i, f in enumerate(files)]


async def _explain(server, run, items, found, out) -> None:
    """Grad-CAM of each answer's class: the raw grid and the picture (a PNG data URI) for the page."""
    import numpy as np
    import tensorflow as tf

    from ..models.gradcam import heatmaps, overlay

    images = await decode_all([(name["path"], data) for name, data in zip(out, items)], run.image_size,
                              server.decode_pool)

    def work():
        grids = heatmaps(run.model, images, class_indices=[a["class_index"] for a in found])
        pictures = [base64.b64encode(tf.io.encode_png(overlay(i, g)).numpy()).decode() for i, g in zip(images, grids)]
        return grids, pictures
    grids, pictures = await asyncio.get_running_loop().run_in_executor(server.explain_pool, work)
    for entry, grid, picture in zip(out, grids, pictures):
        entry["heatmap"] = np.round(grid, 4).tolist()
        entry["heatmap_png"] = "data:image/png;base64," + picture


def guarded(endpoint):
    """``endpoint`` answering JSON ``{"error"}`` for whatever goes wrong: a limit or bad input by its status, a
    client gone mid-request quietly, anything else as a 500 with one line in the server's log (no traceback)."""
    @functools.wraps(endpoint)
    async def answer(request):
        try:
            return await endpoint(request)
        except LimitError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        except Exception as exc:  # noqa: BLE001 - the server stays up; the client is told, the log says what
            print(f"Error while answering {request.method} {request.url.path}: {type(exc).__name__}: "
                  f"{str(exc)[:300]}", file=sys.stderr, flush=True)
            return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server's log says more"},
                                status_code=500)
    return answer


async def _http_error(request, exc: HTTPException):
    return JSONResponse({"error": exc.detail or "not found"}, status_code=exc.status_code)

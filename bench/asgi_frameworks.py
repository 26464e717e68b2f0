#!/usr/bin/env python
"""Which ASGI framework for ``serve``: Starlette or FastAPI on uvicorn, the framework's own cost per request.

    python bench/asgi_frameworks.py [--requests 5000] [--clients 8]   (needs starlette, fastapi, uvicorn)

Each server answers ``POST /predict`` with a fixed JSON list after reading a ~15 KB body (a 224 px JPEG's size):
no model, so what is measured is the framework. The client is bench/serve_load.py's (a separate process).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from serve_load import free_port, load, start  # noqa: E402

APPS = {
    "starlette": r'''
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
ANSWER = [{"label": "cats", "probability": 0.99, "probabilities": {"cats": 0.99, "dogs": 0.01}}]
async def predict(request):
    await request.body()
    return JSONResponse(ANSWER)
async def health(request):
    return JSONResponse({"status": "ok"})
uvicorn.run(Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health)]),
            host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
''',
    "fastapi": r'''
import sys, uvicorn
from fastapi import FastAPI, Request
app = FastAPI()
ANSWER = [{"label": "cats", "probability": 0.99, "probabilities": {"cats": 0.99, "dogs": 0.01}}]
@app.post("/predict")
async def predict(request: Request):
    await request.body()
    return ANSWER
@app.get("/health")
async def health():
    return {"status": "ok"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
''',
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    body = bytes(15_000)
    for name, source in APPS.items():
        port = free_port()
        proc = start([sys.executable, "-c", source, str(port)], port)
        try:
            load(port, [body], 2, 100)
            row = load(port, [body], args.clients, args.requests)
            print(json.dumps({"framework": name, **row}), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()

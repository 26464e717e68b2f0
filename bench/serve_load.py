#!/usr/bin/env python
"""``catdog-zoo serve`` under load, beside a naive server, and against hostile requests, in one invocation.

    KERAS_HOME=<seeded cache> python bench/serve_load.py RUN_DIR [--requests 5000] [--naive-requests 400]
        [--clients 1,8,32] [--out bench-runs/serve]

Servers, each in its own process, one at a time, on this machine:
- ``naive``: the usual tutorial: a web handler that decodes the upload and calls Keras ``model.predict`` on it,
  one request at a time per worker thread (Starlette on uvicorn, like ``serve``, so only the model path differs);
- ``serve --no-batching``: the zoo's server scoring each request alone on the run's engine;
- ``serve``: dynamic batching (the default);
- ``serve --precision bfloat16``, where this CPU computes in bfloat16 natively.
The client is a separate process (asyncio, keep-alive connections, one request in flight per client) sending
224 px JPEGs of the run's validation split to ``POST /predict`` (raw body). Per server and number of clients:
images/s, p50/p99 latency, errors, and the server's peak RSS (sampled from /proc every 0.2 s).

Then, against ``serve``: a TF Serving client (plain ``requests`` code, as TF Serving's REST docs show) on 50
validation images must get the labels ``catdog-zoo predict`` gives, and hostile requests must each get a
JSON answer while the server stays alive with bounded memory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NAIVE = r'''
import io, sys, numpy as np, keras
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
import uvicorn
model = keras.models.load_model(sys.argv[1])
size = model.input_shape[1:3]

def predict(request_body):
    image = Image.open(io.BytesIO(request_body)).convert("RGB").resize(size[::-1])
    logits = model.predict(np.asarray(image, np.float32)[None], verbose=0)
    return {"dogs": float(1 / (1 + np.exp(-logits[0, 0])))}

async def handler(request):
    body = await request.body()
    from starlette.concurrency import run_in_threadpool
    return JSONResponse(await run_in_threadpool(predict, body))

async def health(request):
    return JSONResponse({"status": "ok"})
uvicorn.run(Starlette(routes=[Route("/predict", handler, methods=["POST"]), Route("/health", health)]),
            host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Watch:
    """The server's resident memory, sampled until stopped: peak and last."""

    def __init__(self, pid):
        self.pid, self.peak, self.samples, self._stop = pid, 0.0, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            value = rss_mb(self.pid)
            self.samples.append(value)
            self.peak = max(self.peak, value)
            time.sleep(0.2)

    def stop(self):
        self._stop.set()
        self._thread.join()


def start(command, port, env=None, timeout=180):
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server died: {proc.stderr.read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                if b" 200 " in s.recv(200):
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start")


async def _one_client(port, bodies, count, latencies, errors, offset):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for k in range(count):
        body = bodies[(offset + k) % len(bodies)]
        started = time.perf_counter()
        try:
            writer.write(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n")[0].decode())
        except Exception as exc:  # noqa: BLE001 - counted, then a new connection
            errors.append(type(exc).__name__)
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        latencies.append(time.perf_counter() - started)
    writer.close()


def load(port, bodies, clients, requests) -> dict:
    """``requests`` requests from ``clients`` concurrent connections, one request in flight each."""
    latencies, errors = [], []
    per = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]

    async def main():
        await asyncio.gather(*(_one_client(port, bodies, n, latencies, errors, 997 * i) for i, n in enumerate(per)))
    started = time.perf_counter()
    asyncio.run(main())
    seconds = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "seconds": round(seconds, 2),
            "images_per_s": round(len(latencies) / seconds, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "errors": len(errors),
            "error_kinds": sorted(set(errors))[:5]}


def measure(name, command, port, bodies, clients, requests, env=None) -> list:
    proc = start(command, port, env)
    rows = []
    try:
        load(port, bodies, 2, 20)  # warm connections and any lazy set-up
        for n in clients:
            watch = Watch(proc.pid)
            before = rss_mb(proc.pid)
            row = load(port, bodies, n, requests)
            watch.stop()
            row.update({"server": name, "rss_before_mb": round(before), "rss_peak_mb": round(watch.peak),
                        "rss_after_mb": round(rss_mb(proc.pid))})
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return rows


def tf_serving_client(port, run, files) -> dict:
    """TF Serving's documented REST client: requests.post(url, json={"instances": [{"b64": ...}]})."""
    import requests

    import catdog_zoo
    url = f"http://127.0.0.1:{port}/v1/models/mobilenet_v2:predict"
    got = []
    for start_ in range(0, len(files), 10):
        instances = [{"b64": base64.b64encode(f.read_bytes()).decode()} for f in files[start_:start_ + 10]]
        answer = requests.post(url, json={"instances": instances}, timeout=30)
        answer.raise_for_status()
        got += answer.json()["predictions"]
    expected = catdog_zoo.predict(run, files)
    same = sum(g["class_name"] == e["label"] for g, e in zip(got, expected))
    worst = max(abs(g["probabilities"][1] - e["probabilities"]["dogs"]) for g, e in zip(got, expected))
    return {"images": len(files), "same_label": same, "max_probability_difference": worst}


def hostile(port, pid, good: bytes) -> list:
    """Each case: the status and error the server answers, and that it is still alive and bounded after."""
    import io

    from PIL import Image

    def raw(payload: bytes, read=True, timeout=15):
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(payload)
            answer = b""
            while read and len(answer) < 4096:  # the head and the body may come in separate packets
                part = s.recv(4096)
                if not part:
                    break
                answer += part
                head, _, body = answer.partition(b"\r\n\r\n")
                length = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
                if length and len(body) >= int(length[0]):
                    break
            return answer.decode("latin1", "replace")

    def post(body: bytes, path="/predict", kind="image/jpeg"):
        return raw(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                   "Connection: close\r\n\r\n".encode() + body)

    png = io.BytesIO()
    Image.new("RGB", (32, 32)).save(png, "PNG")
    bomb = bytearray(png.getvalue())
    bomb[16:24] = (30000).to_bytes(4, "big") * 2  # a PNG that declares 30000x30000 pixels
    cases = {
        "truncated JPEG": lambda: post(good[:len(good) // 3]),
        "30 MB body": lambda: post(b"\xff" * (30 << 20)),
        "body larger than declared (Content-Length 10 GB)": lambda: raw(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n" + good),
        "PNG declaring 30000x30000 pixels": lambda: post(bytes(bomb), kind="image/png"),
        "JSON of the wrong shape": lambda: post(b'{"instances": [[1, 2, 3]]}', "/v1/models/mobilenet_v2:predict",
                                                "application/json"),
        "JSON nested 100000 deep": lambda: post(b"[" * 100000 + b"]" * 100000, "/v1/models/mobilenet_v2:predict",
                                                "application/json"),
        "200 images in one request": lambda: post(json.dumps({"instances": [{"b64": base64.b64encode(good).decode()}]
                                                              * 200}).encode(), "/v1/models/mobilenet_v2:predict",
                                                  "application/json"),
        "a text file": lambda: post(b"hello, this is not an image"),
        "unknown model": lambda: post(b"{}", "/v1/models/nope:predict", "application/json"),
    }
    rows = []
    for name, attempt in cases.items():
        try:
            answer = attempt()
            status = answer.split("\r\n")[0]
            error = answer.split("\r\n\r\n", 1)[-1][:140]
        except Exception as exc:  # noqa: BLE001
            status, error = f"client: {type(exc).__name__}", ""
        rows.append({"case": name, "answer": status, "body": error, "alive": _alive(port), "rss_mb": round(rss_mb(pid))})
    # 10,000 tiny requests (an empty body each) from 32 clients
    started = time.perf_counter()
    result = load(port, [b""], 32, 10_000)
    rows.append({"case": "10,000 empty requests from 32 clients", "answer": f"{result['errors']} non-200 "
                 f"(expected: all 422) in {time.perf_counter() - started:.1f}s", "body": "", "alive": _alive(port),
                 "rss_mb": round(rss_mb(pid))})
    # slowloris: 50 connections sending a byte every second; meanwhile a normal request must be answered promptly
    slow = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        slow.append(s)
    time.sleep(1)
    started = time.perf_counter()
    normal = post(good).split("\r\n")[0]
    took = time.perf_counter() - started
    for s in slow:
        try:
            s.sendall(b"x")
        except OSError:
            pass
    time.sleep(0.5)
    rows.append({"case": "50 slow senders (slowloris) while a normal request is made",
                 "answer": f"normal request: {normal} in {took * 1000:.0f} ms", "body": "",
                 "alive": _alive(port), "rss_mb": round(rss_mb(pid))})
    for s in slow:
        s.close()
    return rows


def _alive(port) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return b" 200 " in s.recv(100)
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--naive-requests", type=int, default=400)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--out", type=Path, default=Path("bench-runs/serve"))
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    from catdog_zoo.data.prepare import load_splits
    from catdog_zoo.runs.record import read_run

    config, _ = read_run(args.run)
    files = list(load_splits(config).validation.paths)
    from PIL import Image
    import io
    bodies = []
    for f in files[:200]:  # 224 px JPEGs, as a client would send after resizing
        with Image.open(f) as im:
            buf = io.BytesIO()
            im.convert("RGB").resize((224, 224)).save(buf, "JPEG", quality=90)
            bodies.append(buf.getvalue())
    clients = [int(c) for c in args.clients.split(",")]
    zoo = [sys.executable, "-m", "catdog_zoo", "serve", str(args.run)]
    rows = []
    if not args.skip_naive:
        port = free_port()
        naive_script = args.out / "naive_server.py"
        args.out.mkdir(parents=True, exist_ok=True)
        naive_script.write_text(NAIVE)
        rows += measure("naive (Keras model.predict per request)", [sys.executable, str(naive_script),
                                                                     str(args.run / "model.keras"), str(port)],
                        port, bodies, clients, args.naive_requests)
    port = free_port()
    rows += measure("serve --no-batching", zoo + ["--port", str(port), "--no-batching"], port, bodies, clients,
                    args.requests)
    port = free_port()
    rows += measure("serve", zoo + ["--port", str(port)], port, bodies, clients, args.requests)
    from catdog_zoo.models import openvino_engine
    if openvino_engine.available() and openvino_engine.native_bfloat16():
        port = free_port()
        rows += measure("serve --precision bfloat16", zoo + ["--port", str(port), "--precision", "bfloat16"], port,
                        bodies, clients, args.requests)
    port = free_port()
    proc = start(zoo + ["--port", str(port)], port)
    try:
        client = tf_serving_client(port, args.run, [Path(f) for f in files[:50]])
        print(json.dumps({"tf_serving_client": client}), flush=True)
        attacks = hostile(port, proc.pid, bodies[0])
        for row in attacks:
            print(json.dumps(row), flush=True)
    finally:
        stopping = time.perf_counter()
        proc.terminate()
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "killed after 20 s"
        stop = {"exit_status": code, "seconds": round(time.perf_counter() - stopping, 2)}
        print(json.dumps({"sigterm_after_hostile": stop}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_load.json").write_text(json.dumps({"load": rows, "tf_serving_client": client,
                                                          "hostile": attacks, "stop": stop}, indent=1))
    print("\n| server | clients | requests | images/s | p50 ms | p99 ms | errors | RSS before/peak/after MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r['server']} | {r['clients']} | {r['requests']} | {r['images_per_s']} | {r['p50_ms']} | "
              f"{r['p99_ms']} | {r['errors']} | {r['rss_before_mb']}/{r['rss_peak_mb']}/{r['rss_after_mb']} |")
    naive32 = next((r for r in rows if r["server"].startswith("naive") and r["clients"] == max(clients)), None)
    print()
    for served in rows:
        if naive32 and served["server"].startswith("serve") and served["clients"] == max(clients):
            print(f"{served['server']} / naive at {max(clients)} clients: "
                  f"{served['images_per_s'] / naive32['images_per_s']:.1f}x")


if __name__ == "__main__":
    main()

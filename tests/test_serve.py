"""``catdog-zoo serve``: the page, /predict, TF Serving's REST shapes, limits, batching and a clean stop."""

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from conftest import free_port, zoo_command, zoo_env, zoo_subprocess
from frozen_plugin import trained_run

import catdog_zoo

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient  # noqa: E402

from catdog_zoo.serve.app import create_app  # noqa: E402
from catdog_zoo.serve.batcher import Batcher  # noqa: E402
from catdog_zoo.serve.limits import LimitError, Limits  # noqa: E402
from catdog_zoo.serve.served import serve_plan  # noqa: E402


@pytest.fixture(scope="module")
def served(module_site, tmp_path_factory):
    return trained_run(module_site, tmp_path_factory.mktemp("served"), "frozen_serve", strangers=2, epochs=2)


def client(run, **kw):
    return TestClient(create_app(serve_plan([run]), say=lambda text: None, **kw))


def photos(folder, n):
    return sorted(p for p in folder.rglob("*.jpg"))[:n]


def test_predict_answers_as_catdog_zoo_predict_does(served):
    run, data, strangers = served
    files = photos(data / "validation", 3) + photos(strangers, 2)
    expected = catdog_zoo.predict(run, files)
    with client(run) as c:
        assert c.get("/health").json()["status"] == "ok"
        got = c.post("/predict", files=[("file", (f.name, f.read_bytes(), "image/jpeg")) for f in files]).json()
        raw = c.post("/predict", content=files[0].read_bytes()).json()
    assert [g["path"] for g in got] == [f.name for f in files]
    for g, e in zip(got, expected):
        assert g["label"] == e["label"] and g["rejected"] == e["rejected"]
        assert g["probabilities"] == pytest.approx(e["probabilities"], abs=1e-5)
        assert g["ood_score"] == pytest.approx(e["ood_score"], abs=1e-4)
    assert any(g["label"] == "unknown" for g in got[3:])  # colours of neither class
    assert raw[0]["path"] == "upload" and raw[0]["label"] == got[0]["label"]


def test_bfloat16_is_said_and_close_or_refused_where_the_cpu_would_emulate_it(served):
    from catdog_zoo.models import openvino_engine
    from catdog_zoo.serve.served import ServedRun

    run, data, _ = served
    images = np.stack([catdog_zoo.data.pixels.decode_file(str(f), (32, 32)) for f in photos(data / "validation", 4)])
    exact = ServedRun(run)
    assert exact.info["precision"] == "float32"
    if not (openvino_engine.available() and openvino_engine.native_bfloat16()):
        with pytest.raises(catdog_zoo.ZooError, match="bfloat16"):
            ServedRun(run, precision="bfloat16")
        return
    fast = ServedRun(run, precision="bfloat16")
    assert fast.info["precision"] == "bfloat16" and fast.scorer.engine == "openvino"
    for a, b in zip(exact.score(images), fast.score(images)):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=0.1)  # reduced, not another model


def test_tf_serving_rest_shapes(served):
    run, data, _ = served
    files = photos(data / "validation", 2)
    b64 = [base64.b64encode(f.read_bytes()).decode() for f in files]
    expected = catdog_zoo.predict(run, files)
    with client(run) as c:
        status = c.get("/v1/models/frozen_serve").json()
        assert status == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                                    "status": {"error_code": "OK", "error_message": ""}}]}
        meta = c.get("/v1/models/frozen_serve/metadata").json()
        assert meta["model_spec"]["name"] == "frozen_serve"
        images = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["images"]
        assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "32", "32", "3"]
        rows = c.post("/v1/models/frozen_serve:predict", json={"instances": [{"b64": b} for b in b64]}).json()
        assert [p["class_name"] for p in rows["predictions"]] == [e["label"] for e in expected]
        named = c.post("/v1/models/frozen_serve/versions/1:predict",
                       json={"signature_name": "serve_image_bytes",
                             "instances": [{"image_bytes": {"b64": b}} for b in b64]}).json()
        assert named == rows
        columns = c.post("/v1/models/frozen_serve:predict", json={"inputs": {"image_bytes": [{"b64": b} for b in b64]}}
                         ).json()
        assert columns["outputs"]["class_name"] == [p["class_name"] for p in rows["predictions"]]
        from catdog_zoo.data.pixels import decode_file
        pixels = decode_file(str(files[0]), (32, 32)).astype(float).tolist()
        by_pixels = c.post("/v1/models/frozen_serve:predict", json={"instances": [pixels]}).json()
        assert by_pixels["predictions"][0]["probabilities"] == pytest.approx(
            rows["predictions"][0]["probabilities"], abs=1e-5)
        assert c.get("/v1/models/nope").status_code == 404
        assert "no version" in c.post("/v1/models/frozen_serve/versions/7:predict", json={"instances": []}).json()[
            "error"]


@pytest.mark.parametrize("case, status, words", [
    ("huge body", 413, "max_body_bytes"), ("too many images", 413, "max_images"), ("not an image", 422, "not an image"),
    ("bad json", 400, "not JSON"), ("wrong shape", 400, "shape"), ("no instances", 400, "instances"),
    ("bad base64", 400, "base64"), ("empty", 422, "empty"), ("nan pixels", 400, "finite"),
    ("form without file", 422, "no image")])
def test_bad_requests_are_named_json_errors(served, case, status, words):
    run, data, _ = served
    one = photos(data / "validation", 1)[0].read_bytes()
    limits = Limits(max_body_bytes=200_000, max_images=3)
    with client(run, limits=limits) as c:
        url = "/v1/models/frozen_serve:predict"
        r = {"huge body": lambda: c.post("/predict", content=b"x" * 300_000),
             "too many images": lambda: c.post("/predict", files=[("file", (f"{i}.jpg", one)) for i in range(4)]),
             "not an image": lambda: c.post("/predict", files=[("file", ("notes.txt", b"hello"))]),
             "bad json": lambda: c.post(url, content=b"{nope"),
             "wrong shape": lambda: c.post(url, json={"instances": [[[0, 0, 0]]]}),
             "no instances": lambda: c.post(url, json={"signature_name": "serving_default"}),
             "bad base64": lambda: c.post(url, json={"instances": [{"b64": "@@@"}]}),
             "empty": lambda: c.post("/predict", content=b""),
             "nan pixels": lambda: c.post(url, content=json.dumps(
                 {"instances": [np.full((32, 32, 3), 1.0).tolist()]}).replace("1.0", "NaN", 1).encode()),
             "form without file": lambda: c.post("/predict", data={"other": "x"}, files=[("x", ("a", b""))])}[case]()
        assert r.status_code == status, r.text
        assert words in r.json()["error"]
        assert c.get("/health").status_code == 200  # still alive


def test_a_token_guards_the_api(served):
    run, data, _ = served
    one = photos(data / "validation", 1)[0].read_bytes()
    with client(run, token="s3cret-token") as c:
        assert c.get("/health").status_code == 200 and c.get("/").status_code == 200
        refused = c.post("/predict", content=one)
        assert refused.status_code == 401 and "Bearer" in refused.json()["error"]
        assert c.get("/v1/models/frozen_serve").status_code == 401
        ok = c.post("/predict", content=one, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200


def test_the_page_is_whole_and_offline(served):
    run, _, _ = served
    with client(run) as c:
        r = c.get("/")
        info = c.get("/info").json()
        spec = c.get("/openapi.json").json()
    assert r.status_code == 200 and "default-src 'none'" in r.headers["content-security-policy"]
    assert "http://" not in r.text and "https://" not in r.text and "innerHTML" not in r.text
    assert 'name="viewport"' in r.text and 'id="files"' in r.text
    assert info["models"][0]["classes"] == ["cats", "dogs"] and info["models"][0]["rejection"] is True
    assert "/v1/models/{name}:predict" in spec["paths"]


def test_explain_gives_the_grid_and_a_picture(served):
    run, data, _ = served
    one = photos(data / "validation", 1)[0]
    with client(run) as c:
        (answer,) = c.post("/predict?explain=1", files=[("file", (one.name, one.read_bytes()))]).json()
    assert np.asarray(answer["heatmap"]).shape == (14, 14)
    assert answer["heatmap_png"].startswith("data:image/png;base64,")


def test_the_batcher_scores_concurrent_requests_together_and_in_order():
    calls = []

    def score(images):
        calls.append(len(images))
        time.sleep(0.01)
        return [int(x[0, 0, 0]) for x in images]

    async def main():
        batcher = Batcher(score, max_batch=8, max_wait_ms=30, max_queue=64)
        try:
            requests = [np.full((1 + i % 2, 1, 1, 1), i, np.uint8) for i in range(12)]
            answers = await asyncio.gather(*(batcher.submit(r) for r in requests))
            full = Batcher(score, max_batch=8, max_wait_ms=1, max_queue=2)
            with pytest.raises(LimitError) as refused:
                await full.submit(np.zeros((3, 1, 1, 1), np.uint8))
            full.close()
            return requests, answers, refused.value
        finally:
            batcher.close()
    requests, answers, refused = asyncio.run(main())
    assert answers == [[i] * len(r) for i, r in enumerate(requests)]
    assert len(calls) < 12 and max(calls) <= 8 and sum(calls) == 18
    assert refused.status == 503 and "max_queue" in str(refused)


def test_sigterm_finishes_requests_in_flight_and_exits_0(tiny_run, tiny_data):
    port = free_port()
    proc = subprocess.Popen(zoo_command("serve", tiny_run, "--port", port), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=zoo_env({"TF_CPP_MIN_LOG_LEVEL": "3"}),
                            start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        # The served run is read under its lock: a writer of it is refused meanwhile, naming the server
        export = zoo_subprocess("export", tiny_run, "--format", "tflite", env={"TF_CPP_MIN_LOG_LEVEL": "3"},
                                check=False)
        assert export.returncode != 0 and "in use" in export.stderr and "serve" in export.stderr, export.stderr
        body = photos(tiny_data / "validation", 1)[0].read_bytes()
        # A request in flight: its headers and half its body sent before SIGTERM, the rest after
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                     + body[:len(body) // 2])
        time.sleep(0.3)
        stopped = time.time()
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.3)
        conn.sendall(body[len(body) // 2:])
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"]"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
        conn.close()
        code = proc.wait(timeout=10)
        assert code == 0, proc.stderr.read()[-2000:]
        assert time.time() - stopped < 5
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), answer[:300]
        assert json.loads(payload)[0]["label"] in ("cats", "dogs")
    finally:
        if proc.poll() is None:
            proc.kill()

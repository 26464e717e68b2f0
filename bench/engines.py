"""Engines for the frozen MobileNetV2 backbone (+ global pooling), measured in one process.

For each engine: the one-time conversion, images/s over several rounds of batches (best round), and
the largest absolute difference of its features from Keras' own output. Engines that are not
installed are reported as such. Run with the offline Keras cache (KERAS_HOME) for the real weights.

    .venv/bin/python bench/engines.py --size 224 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def frozen_backbone(size: int):
    import keras
    backbone = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    inputs = keras.Input((size, size, 3))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(backbone(inputs, training=False)))


def timed(run, batches, rounds: int) -> tuple:
    run(batches[0])  # warm-up: kernels chosen, memory planned
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for x in batches:
            run(x)
        best = min(best, time.perf_counter() - started)
    return sum(len(x) for x in batches) / best


def tensorflow_engine(model, size):
    import tensorflow as tf
    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    return lambda x: fn(tf.constant(x)).numpy()


def tflite_bytes(model, size) -> bytes:
    # from_keras_model: converting a tf.function's concrete function instead gave NaN features (TF 2.21)
    import tensorflow as tf
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def litert_engine(content: bytes, interpreter_class, threads: int):
    interpreter = interpreter_class(model_content=content, num_threads=threads)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    shape = [None]

    def run(x):
        if shape[0] != x.shape:
            interpreter.resize_tensor_input(source["index"], x.shape)
            interpreter.allocate_tensors()
            shape[0] = x.shape
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])
    return run


def openvino_engine(model, size, precision: str):
    import openvino as ov
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m")
        model.export(path, format="tf_saved_model", verbose=False)
        converted = ov.convert_model(path)
    compiled = ov.Core().compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()
    return lambda x: next(iter(request.infer([x]).values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="Also write the results to this file.")
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    model = frozen_backbone(args.size)
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-1, 1, (args.batch, args.size, args.size, 3)).astype(np.float32)
               for _ in range(args.batches)]
    expected = model.predict(batches[0], verbose=0)
    rows = []

    def measure(name, build):
        try:
            started = time.perf_counter()
            run = build()
            setup = time.perf_counter() - started
        except ImportError as exc:
            rows.append({"engine": name, "error": f"not installed ({exc.name})"})
            return
        diff = float(np.abs(run(batches[0]) - expected).max())
        rows.append({"engine": name, "setup_s": round(setup, 2),
                     "images_per_s": round(timed(run, batches, args.rounds)), "max_abs_diff": diff})
        print(json.dumps(rows[-1]), flush=True)

    measure("tensorflow tf.function", lambda: tensorflow_engine(model, args.size))
    content = {}

    def lite(interpreter_import):
        def build():
            if "bytes" not in content:
                content["bytes"] = tflite_bytes(model, args.size)
            return litert_engine(content["bytes"], interpreter_import(), threads)
        return build

    def bundled():
        import tensorflow as tf
        return tf.lite.Interpreter

    def litert():
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter

    measure("tf.lite.Interpreter (bundled, XNNPACK)", lite(bundled))
    measure("ai-edge-litert (XNNPACK)", lite(litert))
    measure("openvino f32", lambda: openvino_engine(model, args.size, "f32"))
    print(f"\nMobileNetV2 1.0 + global pooling, {args.size}x{args.size}, batch {args.batch}, {threads} threads, "
          f"best of {args.rounds} rounds of {args.batches} batches")
    print(f"{'engine':42} {'setup s':>8} {'images/s':>9} {'max |diff| vs Keras':>20}")
    for r in rows:
        if "error" in r:
            print(f"{r['engine']:42} {r['error']}")
        else:
            print(f"{r['engine']:42} {r['setup_s']:8.2f} {r['images_per_s']:9d} {r['max_abs_diff']:20.1e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "threads": threads, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()

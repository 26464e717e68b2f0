"""ONNX for catdog-zoo: an export format and a feature-extraction engine, through the public hooks only.

- ``catdog-zoo export RUN --format onnx`` writes ``model.onnx``: float32 images ``(N, H, W, 3)`` in [0, 255] at
  the run's size in (input ``images``), logits out (output ``logits``), like the TFLite file. The core checks it
  on the run's test split with ONNX Runtime (``load`` below), as it checks every format.
- ``catdog-zoo train MODEL --engine onnxruntime`` extracts the frozen backbone's features with ONNX Runtime: the
  frozen layers converted once to ONNX, checked against Keras and cached by the core.

Both convert the traced TensorFlow function with tf2onnx (the converter Keras 3's own
``model.export(format="onnx")`` calls on the TensorFlow backend). Nothing heavy is imported at load time:
``catdog-zoo plugins`` stays instant.
"""

import importlib.util
import logging

from catdog_zoo import EngineSpec, ExporterSpec, hookimpl

CATDOG_ZOO_API_VERSION = 3
OPSET = 17  # ONNX Runtime >= 1.14 runs it; what a converted file's operators are held to
NEEDS = ("onnxruntime", "tf2onnx", "onnx")
ENGINE_CHUNK = 8  # images per call: small batches keep a layer's activations in the CPU's caches, as for XNNPACK


@hookimpl
def register_exporters(register):
    register(ExporterSpec(name="onnx", summary="one .onnx file, images in, logits out (ONNX Runtime, opset "
                          f"{OPSET})", write=write_onnx, load=load_onnx, suffix=".onnx"))


@hookimpl
def register_engines(register):
    register(EngineSpec(name="onnxruntime", summary="the frozen layers converted to ONNX, run by ONNX Runtime "
                        "on the CPU", convert=convert, load=load, runtime=runtime, chunk=ENGINE_CHUNK,
                        available=available))


# -- the converter --------------------------------------------------------------------------------------------
def onnx_bytes(call, image_shape, output: str) -> bytes:
    """``call`` (float32 images -> one tensor), traced for batches of ``image_shape``, as an ONNX model with the
    input ``images`` and the output ``output``; its variables become constants."""
    import tensorflow as tf
    import tf2onnx

    spec = [tf.TensorSpec((None, *image_shape), tf.float32, name="images")]
    quiet = logging.getLogger("tf2onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # tf2onnx logs every rewrite pass at INFO
    try:
        proto, _ = tf2onnx.convert.from_function(tf.function(lambda images: {output: call(images)}),
                                                 input_signature=spec, opset=OPSET)
    finally:
        quiet.setLevel(level)
    return proto.SerializeToString()


def session(model):
    """An ONNX Runtime session on the CPU for ``model`` (bytes or a path) and ``run(x) -> first output``."""
    import numpy as np
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are not the user's
    model = model if isinstance(model, bytes) else str(model)
    sess = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def run(x):
        return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
    return run


# -- the exporter ---------------------------------------------------------------------------------------------
def write_onnx(model, staged, context) -> dict:
    """``model`` (images in [0, 255] -> logits) as ``staged``, an ``.onnx`` file."""
    staged.write_bytes(onnx_bytes(lambda images: model(images, training=False), (*context.image_size, 3), "logits"))
    context.advance()
    return {"output": f"logits (ONNX opset {OPSET}, input 'images', output 'logits')"}


def load_onnx(path):
    return session(path)


# -- the engine -----------------------------------------------------------------------------------------------
def convert(layers, image_shape) -> bytes:
    def frozen(x):
        for layer in layers:
            x = layer(x, training=False)
        return x
    return onnx_bytes(frozen, tuple(image_shape), "features")


def load(content: bytes):
    return session(content)


def runtime() -> str:
    """What converted bytes and their check depend on beyond the layers: the converter, the opset, the runtime."""
    import onnxruntime
    import tf2onnx

    return f"tf2onnx {tf2onnx.__version__} opset {OPSET}, onnxruntime {onnxruntime.__version__}"


def available() -> str:
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    return f"needs {', '.join(missing)}: catdog-zoo install plugins/catdog-zoo-onnx/ (with its dependencies)" \
        if missing else ""

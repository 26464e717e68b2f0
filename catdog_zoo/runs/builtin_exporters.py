"""The core's own export formats, registered through the same hook as a plugin's (``register_exporters``):

- ``saved_model``: a SavedModel in TF Serving's ``OUT/VERSION/`` layout with the signatures of :mod:`.serving`
  (probabilities, class names, encoded images accepted);
- ``tflite``: one ``.tflite`` file, images in and logits out, float32 or quantized (``--quantize``).

Loaded by name from ``catdog_zoo.plugins.BUILTIN_PLUGINS``; TensorFlow is imported only when a format writes or
loads, so ``catdog-zoo plugins`` and ``--help`` stay instant.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import ZooError
from ..extensions import ExporterSpec
from ..hookspecs import hookimpl
from .serving import QUANTIZATIONS, tflite_bytes, write_saved_model


@hookimpl
def register_exporters(register):
    register(ExporterSpec(
        name="saved_model", summary="a SavedModel in TF Serving's OUT/VERSION layout: probabilities and class names, "
        "from images or encoded image bytes", write=write_serving, load=load_saved_model, versioned=True))
    register(ExporterSpec(
        name="tflite", summary="one .tflite file, images in, logits out; float32 or quantized (--quantize)",
        write=write_tflite, load=load_tflite, suffix=".tflite", quantizations=QUANTIZATIONS[1:], steps=2))


def write_serving(model, staged: Path, context) -> dict:
    _saved_model(model, staged, context)
    context.advance()
    rejects = context.novelty is not None
    return {"output": "probabilities, class_index, class_name" + (", ood_score, rejected" if rejects else "")
            + " (signature serving_default); logits (serve)"}


def write_tflite(model, staged: Path, context) -> dict:
    """Converted from the SavedModel's ``serve`` signature (the same traced model TF Serving runs)."""
    saved = context.scratch / "saved_model"
    _saved_model(model, saved, context)
    context.advance()
    try:
        content = tflite_bytes(saved, context.quantize, context.calibration if context.quantize == "int8" else None)
    except Exception as exc:  # ConverterError's message is a whole MLIR dump; its first line says why
        raise ZooError(f"TFLite cannot convert the model of {context.run_dir}: {str(exc).splitlines()[0][:300]}; "
                       "--format saved_model exports any model") from None
    staged.write_bytes(content)
    context.advance()
    return {}


def _saved_model(model, path: Path, context) -> None:
    write_saved_model(model, path, context.class_names, context.image_size, context.temperature, context.novelty,
                      context.chain)


def load_saved_model(path: Path):
    """``images -> logits``: the SavedModel's ``serve`` signature."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # keep the object: its variables die with it
    return lambda x: loaded.serve(tf.constant(x)).numpy()


def load_tflite(path: Path):
    """``images -> logits`` for a ``.tflite`` file, by LiteRT's interpreter when installed."""
    import tensorflow as tf

    try:
        from ai_edge_litert.interpreter import Interpreter  # TFLite's new home, when installed
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter "is deprecated": it is still the bundled one
        interpreter = Interpreter(model_path=str(path))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(x):
        interpreter.resize_tensor_input(source["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])
    return run

"""The model as it is deployed: a SavedModel with TF Serving's signatures, and TFLite files, float or quantized.

SavedModel signatures (each takes a batch):

- ``serving_default``: ``images``, float32 ``(N, H, W, 3)`` in [0, 255] at the run's image size ->
  ``probabilities`` ``(N, C)`` (temperature-scaled), ``class_index`` ``(N,)`` int64 and ``class_name`` ``(N,)``
  string; for a run that rejects (:mod:`.rejection`) also ``ood_score`` ``(N,)`` float32 and ``rejected``
  ``(N,)`` bool, and ``class_name`` is ``unknown`` for a rejected image.
- ``serve_image_bytes``: ``image_bytes``, ``(N,)`` encoded JPEG, PNG, GIF or BMP files -> the same outputs,
  each image decoded and resized exactly as training decodes it (:func:`catdog_zoo.data.pixels.pixels`).
  TF Serving's REST API takes such an input as ``{"instances": [{"image_bytes": {"b64": "..."}}]}``.
- ``serve``: ``images`` -> the logits of ``model.keras``.

TFLite files take float32 images and return logits whatever the quantization: ``none`` (float32),
``dynamic`` (int8 weights, float activations), ``float16`` (float16 weights) or ``int8`` (int8 weights and
activations, the activation ranges calibrated on up to :data:`CALIBRATION_IMAGES` of the run's own training
images). A quantized file is judged by its accuracy on the test split beside the float model's, not by
parity: its probabilities are meant to differ a little.
"""

from __future__ import annotations

import numpy as np

QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
CALIBRATION_IMAGES = 200


def write_saved_model(model, path, class_names, image_size, temperature: float = 1.0, novelty=None,
                      chain=None) -> None:
    """``model`` (augmentation already left out) as a SavedModel at ``path`` with the signatures above.

    ``temperature``: the run's calibration, dividing the logits before probabilities. ``novelty`` (a
    :class:`.rejection.Novelty`) with ``chain`` (the model split at its backbone, ``models.frozen``): the
    answers also carry ``ood_score`` and ``rejected``, and a rejected image's ``class_name`` is ``unknown``,
    exactly as ``predict`` answers.
    """
    import keras
    import tensorflow as tf

    from ..data.formats import declared_pixels
    from ..data.limits import MAX_PIXELS
    from ..data.pixels import pixels
    from .rejection import REJECTED

    names = tf.constant(list(class_names))
    unknown = tf.constant(REJECTED if REJECTED not in class_names else f"{REJECTED} (rejected)")
    height, width = (int(s) for s in image_size)
    images = tf.TensorSpec((None, height, width, 3), tf.float32, name="images")
    if novelty is not None:
        centre = tf.constant(novelty.centre, tf.float32)
        bank = tf.constant(novelty.bank, tf.float32)
        threshold = tf.constant(novelty.threshold, tf.float32)

    def answer(images):
        if novelty is None:
            logits = model(images, training=False)
        else:
            features = images
            for layer in chain.front + chain.frozen:
                features = layer(features, training=False)
            logits = features
            for layer in chain.head:
                logits = layer(logits, training=False)
        logits = logits / temperature
        if logits.shape[-1] == 1:  # one logit: the probability of the second class
            second = tf.sigmoid(logits)
            probs = tf.concat([1.0 - second, second], axis=-1)
        else:
            probs = tf.nn.softmax(logits, axis=-1)
        index = tf.argmax(probs, axis=-1)
        out = {"probabilities": probs, "class_index": index, "class_name": tf.gather(names, index)}
        if novelty is not None:  # as runs.rejection: 1 - cosine to the nearest training photo, centred
            centred = tf.math.l2_normalize(features - centre, axis=-1)
            score = 1.0 - tf.reduce_max(tf.matmul(centred, bank, transpose_b=True), axis=-1)
            rejected = score > threshold
            out.update({"ood_score": score, "rejected": rejected,
                        "class_name": tf.where(rejected, unknown, out["class_name"])})
        return out

    def serving_default(images):
        return answer(images)

    def one_image(data):  # refused from its header above the pixel limit training uses (a PNG bomb)
        fits = tf.debugging.assert_less_equal(declared_pixels(data, otherwise=0), tf.constant(MAX_PIXELS, tf.int64),
                                              message="image declares more pixels than the limit")
        with tf.control_dependencies([fits]):
            return tf.cast(pixels(tf.identity(data), (height, width)), tf.float32)

    def serve_image_bytes(image_bytes):
        decoded = tf.map_fn(one_image, image_bytes,
                            fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32))
        return answer(decoded)

    def serve(images):
        return model(images, training=False)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_default, input_signature=[images])
    archive.add_endpoint("serve_image_bytes", serve_image_bytes,
                         input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")])
    archive.add_endpoint("serve", serve, input_signature=[images])
    archive.write_out(str(path), verbose=False)


def tflite_bytes(saved_model_dir, quantize: str, calibration=None) -> bytes:
    """The SavedModel's ``serve`` signature (images -> logits) as a TFLite file; ``calibration``: a function
    giving float32 images one at a time, for ``int8``."""
    import logging
    import warnings

    import tensorflow as tf

    from ..models.tflite_engine import quiet_native

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=["serve"])
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        converter.representative_dataset = lambda: ([x[None]] for x in calibration())
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # the calibrator's "Statistics for quantized inputs were expected" and such
    try:
        with quiet_native((1, 2)), warnings.catch_warnings():  # "fully_quantize: 0, ..." from the C++ calibrator
            warnings.simplefilter("ignore", UserWarning)  # "Statistics for quantized inputs were expected"
            return converter.convert()
    finally:
        absl.setLevel(level)


def calibration_images(paths, image_size, count: int = CALIBRATION_IMAGES):
    """A function giving up to ``count`` of the image files ``paths`` (evenly spread; a file that does not
    decode is passed over) as float32 pixels, decoding only those: not the whole split."""
    from ..data.limits import ImageError
    from ..data.pixels import decode_file

    picked = np.linspace(0, len(paths) - 1, num=min(count, len(paths))).round().astype(int) if len(paths) else []

    def each():
        for i in picked:
            try:
                yield decode_file(paths[int(i)], image_size).astype(np.float32)
            except ImageError:
                continue
    return each

"""TF Serving's REST shapes (https://www.tensorflow.org/tfx/serving/api_rest), so its clients work unchanged.

``POST /v1/models/NAME[/versions/N]:predict`` takes the row form ``{"instances": [...]}`` or the columnar form
``{"inputs": ...}``; an instance is an encoded image (``{"b64": "..."}``, or ``{"image_bytes": {"b64": ...}}``
as the exported SavedModel's ``serve_image_bytes`` signature names it) or a float pixel array ``[H][W][3]``
in [0, 255] (``serving_default``'s ``images``, or ``{"images": [...]}``). The answer is ``{"predictions":
[...]}`` (rows) or ``{"outputs": {...}}`` (columns), each prediction the outputs of the exported SavedModel:
``probabilities``, ``class_index``, ``class_name`` (``unknown`` when rejected), ``ood_score``, ``rejected``.
"""

from __future__ import annotations

from .limits import LimitError
from .requests import instance_bytes, pixel_array

SIGNATURES = ("serving_default", "serve_image_bytes")


def parse_predict(body, size) -> tuple:
    """``(items, columnar)``: ``items`` a list of ``("bytes", data)`` or ``("pixels", uint8 array)``."""
    if not isinstance(body, dict):
        raise LimitError(400, 'the body must be a JSON object with "instances" or "inputs"')
    signature = body.get("signature_name", "serving_default")
    if signature not in SIGNATURES:
        raise LimitError(400, f"unknown signature_name {str(signature)[:60]!r} (known: {', '.join(SIGNATURES)})")
    if ("instances" in body) == ("inputs" in body):
        raise LimitError(400, 'the body must have exactly one of "instances" (rows) or "inputs" (columns)')
    columnar = "inputs" in body
    values = body["inputs"] if columnar else body["instances"]
    if columnar and isinstance(values, dict):  # {"inputs": {"images": [...]}} or {"image_bytes": [...]}
        if len(values) != 1:
            raise LimitError(400, '"inputs" must name one input: "images" or "image_bytes"')
        values = next(iter(values.values()))
    if not isinstance(values, list):
        raise LimitError(400, '"instances" / "inputs" must be a list')
    return [_item(value, size, f"instance {i}") for i, value in enumerate(values)], columnar


def _item(value, size, where: str) -> tuple:
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "b64":
            return "bytes", instance_bytes(value, where)
        if key == "image_bytes":
            return "bytes", instance_bytes(inner, where)
        if key == "images":
            return "pixels", pixel_array(inner, size, where)
    if isinstance(value, list):
        return "pixels", pixel_array(value, size, where)
    raise LimitError(400, f'{where}: expected {{"b64": ...}}, {{"image_bytes": {{"b64": ...}}}} or a [H][W][3] array')


def prediction(answer: dict, class_names) -> dict:
    """One answer as the exported SavedModel's outputs."""
    return {"probabilities": [answer["probabilities"][c] for c in class_names], "class_index": answer["class_index"],
            "class_name": answer["label"], "ood_score": answer["ood_score"], "rejected": answer["rejected"]}


def response(answers: list, class_names, columnar: bool) -> dict:
    rows = [prediction(a, class_names) for a in answers]
    if not columnar:
        return {"predictions": rows}
    return {"outputs": {key: [row[key] for row in rows] for key in (rows[0] if rows else {})}}


def status(versions) -> dict:
    return {"model_version_status": [{"version": str(v), "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}} for v in sorted(versions)]}


def metadata(run) -> dict:
    """``GET /v1/models/NAME[/versions/N]/metadata``: the signatures, as TF Serving describes a SavedModel's."""
    height, width = run.image_size
    classes = len(run.class_names)

    def tensor(dtype, *dims):
        return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims],
                                                 "unknown_rank": False}, "name": ""}
    outputs = {"probabilities": tensor("DT_FLOAT", -1, classes), "class_index": tensor("DT_INT64", -1),
               "class_name": tensor("DT_STRING", -1), "ood_score": tensor("DT_FLOAT", -1),
               "rejected": tensor("DT_BOOL", -1)}
    method = "tensorflow/serving/predict"
    return {"model_spec": {"name": run.name, "signature_name": "", "version": str(run.version)},
            "metadata": {"signature_def": {"signature_def": {
                "serving_default": {"inputs": {"images": tensor("DT_FLOAT", -1, height, width, 3)},
                                    "outputs": outputs, "method_name": method},
                "serve_image_bytes": {"inputs": {"image_bytes": tensor("DT_STRING", -1)},
                                      "outputs": outputs, "method_name": method}}}}}

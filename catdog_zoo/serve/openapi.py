"""``GET /openapi.json``: the API described for tools (OpenAPI 3.1), from the served runs and the limits."""

from __future__ import annotations

from ..util.version import __version__


def openapi(plan: dict, limits) -> dict:
    error = {"description": "what was wrong, or which limit was met",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    errors = {str(code): error for code in (400, 401, 404, 408, 413, 422, 503)}
    answer = {"type": "object", "properties": {
        "path": {"type": "string"}, "label": {"type": "string", "description": "a class, or 'unknown' if rejected"},
        "probability": {"type": "number"}, "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
        "rejected": {"type": "boolean"}, "ood_score": {"type": ["number", "null"]},
        "heatmap": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}}}
    tf_request = {"type": "object", "properties": {
        "signature_name": {"type": "string", "enum": ["serving_default", "serve_image_bytes"]},
        "instances": {"type": "array", "items": {}}, "inputs": {}}}
    predict_tf = {"post": {"summary": "TF Serving's predict: instances of {\"b64\": ...} or [H][W][3] pixel arrays",
                           "requestBody": {"content": {"application/json": {"schema": tf_request}}},
                           "responses": {"200": {"description": "{\"predictions\": [...]} or {\"outputs\": {...}}"},
                                         **errors}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "catdog-zoo serve", "version": __version__,
                 "description": f"Serving {', '.join(plan)}. Limits: {limits.as_dict()}"},
        "paths": {
            "/predict": {"post": {
                "summary": "Label images: multipart field 'file' (repeatable) or a raw image body",
                "parameters": [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                               for n in ("model", "version", "explain")],
                "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
                    "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
                    "image/*": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": {"200": {"description": "one answer per image, as `predict --json`",
                                      "content": {"application/json": {"schema": {"type": "array", "items": answer}}}},
                              **errors}}},
            "/v1/models/{name}": {"get": {"summary": "TF Serving's model status", "responses": {"200": {
                "description": "model_version_status"}, **errors}}},
            "/v1/models/{name}/metadata": {"get": {"summary": "TF Serving's model metadata (signatures)",
                                                   "responses": {"200": {"description": "signature_def"}, **errors}}},
            "/v1/models/{name}:predict": predict_tf,
            "/v1/models/{name}/versions/{version}:predict": predict_tf,
            "/health": {"get": {"summary": "200 once every model is loaded and warmed up",
                                "responses": {"200": {"description": "ok"}, "503": error}}},
            "/info": {"get": {"summary": "the served runs (model, classes, accuracy, data fingerprint, trained when)",
                              "responses": {"200": {"description": "models and limits"}}}},
        },
        "components": {"schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}}},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }

"""Reading what a request sends, bounded: its body, its images (uploads, raw bytes, base64, pixel arrays)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time

import numpy as np

from ..data.limits import ImageError
from ..data.pixels import decode_bytes
from .limits import LimitError, Limits


async def read_body(request, limits: Limits) -> bytes:
    """The whole body, refused (413) past ``max_body_bytes`` without reading further, and (408) when it takes
    longer than ``body_seconds`` to arrive."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise LimitError(400, "Content-Length is not a number") from None
        if size > limits.max_body_bytes:
            raise LimitError(413, too_big(size, limits))
    deadline = time.monotonic() + limits.body_seconds
    chunks, received = [], 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout=max(0.001, deadline - time.monotonic()))
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise LimitError(408, f"the body took longer than {limits.body_seconds:g} s to arrive (body_seconds)") \
                from None
        received += len(chunk)
        if received > limits.max_body_bytes:
            raise LimitError(413, too_big(received, limits))
        chunks.append(chunk)
    return b"".join(chunks)


def too_big(size: int, limits: Limits) -> str:
    return (f"the body has {size:,} bytes, more than the {limits.max_body_bytes:,} a request may send "
            "(max_body_bytes)")


def count_ok(count: int, limits: Limits) -> None:
    if count == 0:
        raise LimitError(422, "no image in the request")
    if count > limits.max_images:
        raise LimitError(413, f"{count} images in one request, more than the {limits.max_images} allowed "
                              "(max_images)")


async def decode_all(items, size, pool) -> np.ndarray:
    """``[(name, bytes)]`` decoded on every core (TensorFlow's decoders release the GIL); one that is not a
    usable image is 422, naming it."""
    loop = asyncio.get_running_loop()

    def one(item):
        name, data = item
        try:
            return decode_bytes(data, size)
        except ImageError as exc:
            raise LimitError(422, f"{name}: {exc}") from None
    images = await asyncio.gather(*(loop.run_in_executor(pool, one, item) for item in items))
    return np.stack(images)


def json_body(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise LimitError(400, f"the body is not JSON ({str(exc)[:120]})") from None


def instance_bytes(value, where: str) -> bytes:
    """TF Serving's binary form: ``{"b64": "..."}``."""
    if not isinstance(value, dict) or set(value) != {"b64"} or not isinstance(value["b64"], str):
        raise LimitError(400, f'{where}: binary data must be {{"b64": "<base64>"}}')
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise LimitError(400, f"{where}: b64 is not valid base64") from None


def pixel_array(value, size, where: str) -> np.ndarray:
    """A float pixel array ``[H][W][3]`` in [0, 255] at the model's input size, as uint8."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (ValueError, TypeError):
        raise LimitError(400, f"{where}: not an array of numbers") from None
    if array.shape != (*size, 3):
        raise LimitError(400, f"{where}: pixels of shape {list(array.shape)}, the model takes {[*size, 3]}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise LimitError(400, f"{where}: pixel values must be finite numbers in [0, 255]")
    return np.round(array).astype(np.uint8)

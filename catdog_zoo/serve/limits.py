"""Every limit of the server, declared once: its flags, its answers (413/422/503) and docs/serve.md use them."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    """What one request, and the server as a whole, may ask for."""

    max_body_bytes: int = 20 << 20  # a request's body: answered 413 beyond it, read no further
    max_images: int = 32  # images in one request: 413
    max_queue: int = 256  # images waiting for the model across all requests: 503 beyond it
    body_seconds: float = 30.0  # to send a whole body (a slow sender cannot hold a slot for ever): 408
    max_batch: int = 32  # images the model takes at once
    max_wait_ms: float = 5.0  # how long a batch waits for more requests once it has one

    def as_dict(self) -> dict:
        return asdict(self)


class LimitError(Exception):
    """A request the server will not take: ``status`` (413, 422, 503, 408...) and the message naming the limit."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status

"""Dynamic batching: requests that arrive together are scored together, as TF Serving's batcher does.

One worker thread owns the model (engines are not shared between threads). It takes the first waiting
request, then keeps taking more until the batch holds ``max_batch`` images or ``max_wait_ms`` has passed
since the first, scores them in one call and hands each request its rows. It waits only while other requests
are on their way (``coming``: received, still being decoded): a lone request is scored at once, so batching
costs nothing at one client. A queue of at most ``max_queue`` waiting images bounds memory: past it a request
is refused at once (503) rather than left to time out.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time

import numpy as np

from .limits import LimitError

_STOP = object()


class Batcher:
    """``await submit(images)`` -> ``score(images)``'s rows for them, scored with other requests' images."""

    def __init__(self, score, max_batch: int = 32, max_wait_ms: float = 5.0, max_queue: int = 256):
        self.score, self.max_batch, self.max_wait = score, max(1, max_batch), max(0.0, max_wait_ms) / 1000
        self.max_queue = max_queue
        self._queue: queue.Queue = queue.Queue()
        self._waiting = 0  # images queued, not yet taken by the worker
        self._coming = 0  # requests announced (being decoded), not yet submitted
        self._lock = threading.Lock()
        self.batches = self.images = 0  # counters, for /health and the benchmark
        self._worker = threading.Thread(target=self._run, name="catdog-zoo-batcher", daemon=True)
        self._worker.start()

    def announce(self) -> "Batcher":
        """``with batcher.announce(): ... await batcher.submit(images)``: a request on its way, so that a batch
        waits for it."""
        with self._lock:
            self._coming += 1
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._coming -= 1

    async def submit(self, images: np.ndarray) -> list:
        with self._lock:
            if self._waiting + len(images) > self.max_queue:
                raise LimitError(503, f"the server is busy: {self._waiting} images are waiting, the queue holds "
                                      f"{self.max_queue} (max_queue); try again shortly")
            self._waiting += len(images)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.put((images, loop, done))
        return await done

    def close(self) -> None:
        self._queue.put(_STOP)
        self._worker.join(timeout=10)

    def _run(self) -> None:
        carry = None
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is _STOP:
                return
            taken, count = [first], len(first[0])
            deadline = time.monotonic() + self.max_wait
            while count < self.max_batch:
                with self._lock:  # others on their way, not yet queued: worth the wait
                    expected = self._coming > len(taken) or not self._queue.empty()
                if not expected:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    carry = item
                    break
                if count + len(item[0]) > self.max_batch:
                    carry = item  # starts the next batch: a batch never exceeds max_batch
                    break
                taken.append(item)
                count += len(item[0])
            with self._lock:
                self._waiting -= count
            self._score(taken)

    def _score(self, taken) -> None:
        try:
            rows = self.score(np.concatenate([images for images, _, _ in taken]))
            self.batches, self.images = self.batches + 1, self.images + sum(len(i) for i, _, _ in taken)
        except Exception as exc:  # noqa: BLE001 - handed to every request of the batch, never kills the worker
            for _, loop, done in taken:
                loop.call_soon_threadsafe(_fail, done, exc)
            return
        start = 0
        for images, loop, done in taken:
            loop.call_soon_threadsafe(_resolve, done, rows[start:start + len(images)])
            start += len(images)


def _resolve(done, value) -> None:
    if not done.done():  # a request cancelled meanwhile (the client went away)
        done.set_result(value)


def _fail(done, exc) -> None:
    if not done.done():
        done.set_exception(exc)

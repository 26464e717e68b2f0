"""Keep TensorFlow's C++ start-up chatter off the user's screen, and nothing else.

TensorFlow writes its own log lines straight to file descriptor 2 from C++ (absl's "All log messages
before absl::InitializeLog()" banner, oneDNN and CUDA-probing notices, "failed call to cuInit" on a
machine without a GPU, LiteRT's "Created TensorFlow Lite XNNPACK delegate"); ``TF_CPP_MIN_LOG_LEVEL``
no longer silences the ones emitted before TensorFlow's logging starts. Descriptor 2 is therefore sent
through a filter that drops exactly those lines; every Python message, warning and traceback, and every
other C++ line, still gets through. ``CATDOG_ZOO_TF_LOGS=1`` turns the filter off.

- The command line (:func:`filter_tensorflow_noise`) filters for its whole life, and points Python's
  ``sys.stderr`` at a copy of the real stderr, so Python's own output never waits on the filter.
- The Python API (:func:`tensorflow_noise_filtered`) filters only while one of its calls runs (importing
  TensorFlow, training, scoring), and touches neither ``sys.stderr`` (a notebook's is not descriptor 2) nor
  logging: a user's ``logging`` and ``warnings`` output is theirs, and outside those calls nothing of the
  process is changed. Everything the call wrote has been passed on when it returns.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading

# Informational and warning lines of absl/glog ("I0000 00:00:...", "W1125 ..."), the banner, the CUDA
# probing on machines without a GPU, the image decoders' complaints about a damaged file (the zoo says
# the same in words, naming the file; libjpeg's own "Improper call" comes from the split decoder's pipeline),
# the interpreter's delegate notice, and the second line of cpu_feature_guard's notice (printed when
# TF_CPP_MIN_LOG_LEVEL is unset, as in a notebook), and the FLOP profiler's note on ops of unknown shape.
_NOISE = re.compile(rb"^(?:[IW]\d{4} |WARNING: All log messages before absl::InitializeLog|"
                    rb"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler|"
                    rb"E\d{4} .*(?:cuInit|cuda_platform|cuda_dnn|cuda_blas|cuda_fft|"
                    rb"jpeg_mem\.cc|png_io\.cc|gif_io\.cc)|"
                    rb"INFO: Created TensorFlow Lite XNNPACK delegate|"
                    rb"Improper call to JPEG library in state \d+$|"
                    rb"\d+ ops no flops stats due to incomplete shapes\.$)")  # the profiler 'models' counts FLOPs with


def _disabled() -> bool:
    return bool(os.environ.get("CATDOG_ZOO_TF_LOGS")) or getattr(filter_tensorflow_noise, "installed", False)


def _divert():
    """Descriptor 2 into a pipe whose lines, noise dropped, a thread writes to the real stderr; returns ``(the
    real stderr's descriptor, the thread)``, or None when no pipe can be made."""
    try:
        real = os.dup(2)
    except OSError:
        return None
    try:
        read_end, write_end = os.pipe()
    except OSError:
        os.close(real)
        return None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()  # what Python buffered for descriptor 2 goes out before the switch
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb", buffering=0) as source:
            pending = b""
            for chunk in iter(lambda: source.read(65536), b""):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not _NOISE.match(line))
                if kept:
                    os.write(real, kept)
            if pending and not _NOISE.match(pending):
                os.write(real, pending)

    thread = threading.Thread(target=pump, name="catdog-zoo-stderr-filter", daemon=True)
    thread.start()
    return real, thread


def _restore(real: int, thread: threading.Thread) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    os.dup2(real, 2)  # closes the pipe's last write end: the pump reads to the end and stops
    thread.join(timeout=2)


def filter_tensorflow_noise() -> None:
    """The command line's filter, for the rest of the process (idempotent; a no-op when it cannot be set up)."""
    if _disabled():
        return
    diverted = _divert()
    if diverted is None:
        return
    real, thread = diverted
    sys.stderr = os.fdopen(os.dup(real), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
    atexit.register(_restore, real, thread)
    filter_tensorflow_noise.installed = True


_lock = threading.Lock()
_calls = 0  # API calls in progress, in any thread: the first diverts descriptor 2, the last restores it
_diverted = None


@contextlib.contextmanager
def tensorflow_noise_filtered():
    """The Python API's filter, for the duration of the ``with`` block (blocks nest; with the command line's
    filter installed, nothing more is done)."""
    global _calls, _diverted
    if _disabled():
        yield
        return
    with _lock:
        if _calls == 0:
            _diverted = _divert()
        _calls += 1
    try:
        yield
    finally:
        with _lock:
            _calls -= 1
            if _calls == 0 and _diverted is not None:
                _restore(*_diverted)
                os.close(_diverted[0])
                _diverted = None

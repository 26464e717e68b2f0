"""Keep TensorFlow's C++ start-up chatter off the user's terminal, and nothing else.

TensorFlow writes its own log lines straight to file descriptor 2 from C++ (absl's "All log messages
before absl::InitializeLog()" banner, oneDNN and CUDA-probing notices, "failed call to cuInit" on a
machine without a GPU, LiteRT's "Created TensorFlow Lite XNNPACK delegate"); ``TF_CPP_MIN_LOG_LEVEL``
no longer silences the ones emitted before TensorFlow's logging starts. The command line therefore
points Python's ``sys.stderr`` at a copy of the real stderr and sends descriptor 2 through a filter that
drops exactly those lines: every Python message, warning and traceback, and every other C++ line, still
reaches the terminal. ``CATDOG_ZOO_TF_LOGS=1`` turns the filter off.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# Informational and warning lines of absl/glog ("I0000 00:00:...", "W1125 ..."), the banner, the CUDA
# probing on machines without a GPU, the image decoders' complaints about a damaged file (the zoo says
# the same in words, naming the file; libjpeg's own "Improper call" comes from the split decoder's pipeline),
# and the interpreter's delegate notice.
_NOISE = re.compile(rb"^(?:[IW]\d{4} |WARNING: All log messages before absl::InitializeLog|"
                    rb"E\d{4} .*(?:cuInit|cuda_platform|cuda_dnn|cuda_blas|cuda_fft|"
                    rb"jpeg_mem\.cc|png_io\.cc|gif_io\.cc)|"
                    rb"INFO: Created TensorFlow Lite XNNPACK delegate|"
                    rb"Improper call to JPEG library in state \d+$)")


def filter_tensorflow_noise() -> None:
    """Install the filter for the rest of the process (idempotent; a no-op when it cannot be set up)."""
    if os.environ.get("CATDOG_ZOO_TF_LOGS") or getattr(filter_tensorflow_noise, "installed", False):
        return
    try:
        real = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        return
    sys.stderr.flush()
    sys.stderr = os.fdopen(os.dup(real), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
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

    def restore():
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real, 2)  # closes the pipe's last write end: the pump reads to the end and stops
        thread.join(timeout=2)
    atexit.register(restore)
    filter_tensorflow_noise.installed = True

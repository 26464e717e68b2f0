"""The Keras cache (``$KERAS_HOME``, else ``~/.keras``): where Keras keeps what it downloads (pretrained weights in
``models/``, data sets in ``datasets/``), which file it wants, and the one line to say when that file is neither
there nor downloadable. Decided here once, for pretrained weights (``registry``) and data sources (``data``).

Keras names the file it wants only when it asks for it (``keras.applications.MobileNetV2`` builds the network,
then asks ``get_file`` for ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5``, the name
following the input size), so :func:`watched_downloads` listens to those requests while a model is built: the
error can then name the exact file, and training can start decoding images only once the weights are there.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from dataclasses import dataclass

from .system import described, problem


def keras_home() -> str:
    """The cache folder: Keras' own setting once Keras is loaded (it reads ``KERAS_HOME`` when it loads, so setting
    it later in a notebook changes nothing), else what it will read."""
    config = sys.modules.get("keras.src.backend.config")
    if config is not None and hasattr(config, "keras_home"):
        return config.keras_home()
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


@dataclass(frozen=True)
class Wanted:
    """One file Keras asked for: ``subdir/fname`` under the cache (``cache_dir``, when the caller chose one)."""

    fname: str
    subdir: str
    origin: str = ""
    cache_dir: str | None = None

    @property
    def in_cache(self) -> str:
        return f"{self.subdir}/{self.fname}"


def is_network_failure(exc: BaseException) -> bool:
    """Keras' ``get_file`` reports every failed download (no network, no DNS, HTTP errors) as this."""
    return "URL fetch failure" in str(exc)


def cache_problem(exc: BaseException):
    """When a download through ``keras.utils.get_file`` failed on the disk, not the network (a ``KERAS_HOME``
    that cannot be written, a full disk): the words for it, else None. Keras itself reports both alike."""
    if problem(exc) is None:
        return None
    return (f"the Keras cache {keras_home()} cannot be used ({described(exc)}); set KERAS_HOME to a folder this user "
            "can write")


def not_downloadable(what: str, wanted: Wanted | None, exc: BaseException, instead: str) -> str:
    """One line: ``what`` is not in the cache and could not be downloaded, the whole cause (never clipped: the end
    of it is the reason), and the two ways out: the folder ``KERAS_HOME`` must hold, or ``instead``."""
    cause = " ".join(str(exc).split()) or type(exc).__name__
    home = (wanted.cache_dir if wanted and wanted.cache_dir else None) or keras_home()
    holding = (f"set KERAS_HOME to a folder holding {wanted.in_cache}" if wanted and not wanted.cache_dir
               else f"copy {wanted.fname} into {home}/{wanted.subdir}" if wanted
               else "set KERAS_HOME to a folder holding the file its address names")
    return f"{what}: not in the Keras cache ({home}) and could not be downloaded ({cause}); {holding}, or {instead}"


@contextlib.contextmanager
def watched_downloads(on_ready=None):
    """Inside, every file requested through Keras' ``get_file`` (``keras.applications`` look it up in its module
    on every call, a plugin as ``keras.utils.get_file``) is appended to the list yielded, and ``on_ready()`` is
    called each time one is ready (found in the cache or downloaded). Where this Keras has no such function to
    listen to, nothing is noted (the error then names no file)."""
    import keras
    try:
        import keras.src.utils.file_utils as file_utils
    except ImportError:  # another Keras layout: nothing to listen to, the build runs as it is
        file_utils = None

    asked: list = []
    original = getattr(file_utils, "get_file", None)
    if original is None or getattr(keras.utils, "get_file", None) is not original:
        yield asked
        return
    signature = inspect.signature(original)  # the real one, through an enclosing watch's wrapper

    @functools.wraps(original)
    def listening(*args, **kwargs):
        given = signature.bind_partial(*args, **kwargs)
        given.apply_defaults()
        call = given.arguments
        origin = str(call.get("origin") or "")
        name = call.get("fname") or os.path.basename(origin.split("?")[0])
        asked.append(Wanted(str(name), str(call.get("cache_subdir") or "datasets"), origin, call.get("cache_dir")))
        path = original(*args, **kwargs)
        if on_ready is not None:
            on_ready()
        return path

    file_utils.get_file = keras.utils.get_file = listening
    try:
        yield asked
    finally:
        file_utils.get_file = keras.utils.get_file = original

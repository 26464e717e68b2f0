"""Image files in, uint8 pixels out: each file is validated and decoded once.

``decode_split`` decodes and resizes every file of a split to uint8 RGB, in parallel, keeping what
decodes and recording why the rest did not (empty, truncated, not an image...). Results live in the
on-disk cache (:mod:`catdog_zoo.data.cache`) keyed by the files' contents and the image size, so later
epochs and later runs never decode again.
"""

from __future__ import annotations

import functools
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from ..errors import ZooError
from ..util.digest import checked_files_digest
from ..util.names import terminal
from ..util.progress import SILENT
from ..util.system import size_text
from . import cache
from .splits import Split


class ImageError(Exception):
    """A file that cannot be used as an image; the message says why. ``transient``: the reason is the
    system's state (too many open files, an I/O error), not the file's content, so it is never cached."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def decode_file(path, image_size, keep_aspect: bool = False) -> np.ndarray:
    """One image file as uint8 RGB of ``image_size`` (bilinear, as image_dataset_from_directory), or with
    ``keep_aspect`` the largest size within it that keeps the photo's proportions (pictures for people).

    The format is read from the content, not the extension; grayscale, RGBA, CMYK, palette and
    16-bit images all become 8-bit RGB.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:  # checked before reading: the file is read into memory whole
                raise ImageError(f"{size_text(size)}, larger than the {size_text(MAX_FILE_BYTES)} an image file may "
                                 f"have (${LIMIT_ENV['bytes']} raises it)")
            # What the file holds, not the limit: Python allocates the size asked for before reading.
            data = f.read(size + 1)
            if len(data) > size:  # it grew since: read on, up to the limit
                data += f.read(MAX_FILE_BYTES + 1 - len(data))
            if len(data) > MAX_FILE_BYTES:
                raise ImageError(f"larger than the {size_text(MAX_FILE_BYTES)} an image file may have "
                                 f"(${LIMIT_ENV['bytes']} raises it)")
    except OSError as exc:
        raise ImageError(f"unreadable: {exc.strerror or exc}", transient=exc.errno in cache.TRANSIENT) from None
    return decode_bytes(data, image_size, keep_aspect)


def decode_bytes(data: bytes, image_size, keep_aspect: bool = False) -> np.ndarray:
    """An encoded image (a file's bytes, an upload) as uint8 RGB of ``image_size``, as :func:`decode_file` does;
    refused from its header above the pixel limit, and in words for anything that is not a whole image."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    _check_pixels(data)
    size = tuple(int(s) for s in image_size)
    try:
        if keep_aspect:  # eager: a few pictures, each of its own size, are not worth a traced graph each
            return pixels(tf.constant(data), size, keep_aspect=True).numpy()
        return _decoder(size)(tf.constant(data)).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        kind = _image_kind(data)  # in words a user can act on; TensorFlow's own message names C++ internals
        raise ImageError(f"truncated or corrupt {kind} data: the file ends early or its content is damaged"
                         if kind else "not an image: its content is none of JPEG, PNG, GIF, BMP or WebP") from None


def _limit(kind: str, default: int) -> int:
    text = os.environ.get(LIMIT_ENV[kind])
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:  # "abc", and a number of more than 4300 digits
        value = 0
    if value < 1:  # said, not ignored: the user meant to change a limit
        print(f"Warning: ${LIMIT_ENV[kind]}={text[:40]!r} is not a positive whole number; using {default}",
              file=sys.stderr)
        return default
    if value > LIMIT_CEILING[kind]:  # past what the decoders (int64 in the graph) and a read can take
        print(f"Warning: ${LIMIT_ENV[kind]}={text[:40]} is more than any image can use; using "
              f"{LIMIT_CEILING[kind]}", file=sys.stderr)
        return LIMIT_CEILING[kind]
    return value


LIMIT_ENV = {"pixels": "CATDOG_ZOO_MAX_PIXELS", "bytes": "CATDOG_ZOO_MAX_IMAGE_BYTES"}
# The most either may be raised to: libjpeg and PNG sides are at most 2^31 (so 2^62 pixels would still fit in an
# int64), and an image file of 64 GiB already needs a machine that can hold it.
LIMIT_CEILING = {"pixels": 1 << 40, "bytes": 64 << 30}
# Decoding holds the pixels as uint8 and, to resize, as float32: 50 MP is about 750 MB per decoding thread,
# and above the 12-48 MP of phone and most camera photos (a 61 MP camera's full size needs it raised).
MAX_PIXELS = _limit("pixels", 50_000_000)
MAX_FILE_BYTES = _limit("bytes", 200 << 20)


def _check_pixels(data: bytes) -> None:
    """Refuse, from the header alone, an image whose pixels would not fit the limit (a 64 KB PNG can
    declare 23000x23000 pixels: 1.6 GB decoded)."""
    size = _declared_size(data)
    if size is None:
        return  # no header anyone can read: TensorFlow's decoder gives the verdict
    if size == "huge":
        raise ImageError(f"declares more than 179 million pixels, more than the {MAX_PIXELS / 1e6:g} million an "
                         f"image may have (${LIMIT_ENV['pixels']} raises it)")
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"declares {width}x{height} pixels, more than the {MAX_PIXELS / 1e6:g} million an image "
                         f"may have (${LIMIT_ENV['pixels']} raises it)")


def _declared_size(data: bytes):
    """``(width, height)`` from the header, ``"huge"`` (past Pillow's own limit), or None (unreadable).

    PNG is read here and JPEG by the same libjpeg header parser TensorFlow decodes with (Pillow gives up on
    JPEGs libjpeg still decodes, such as a stray byte between segments); other formats by Pillow.
    """
    import struct
    import warnings

    from PIL import Image

    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24]) if len(data) >= 24 else None  # cut short: the decoder says so
    if data.startswith(b"\xff\xd8"):
        try:
            height, width, _ = (int(v) for v in tf.io.extract_jpeg_shape(data).numpy())
            return width, height
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning: our own limit decides
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError:
        return "huge"
    except Exception:  # noqa: BLE001 - not an image Pillow knows
        return None


def pixels(data, size, keep_aspect: bool = False):
    """Decode + resize + round: the ops every decoding path shares, so every path gives the same bits."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    resized = tf.image.resize(image, size, method="bilinear", preserve_aspect_ratio=keep_aspect)
    # Kept as uint8: a quarter of the memory of float32 and well within half a grey level.
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


@functools.lru_cache(maxsize=8)
def _decoder(size):
    """One file's bytes as one traced graph: the same ops as eagerly, bit for bit, about 1.2x faster
    (one call into TensorFlow per image instead of five)."""
    return tf.function(lambda data: pixels(data, size), input_signature=[tf.TensorSpec([], tf.string)])


def declared_pixels(data, otherwise: int | None = None):
    """In the graph: the pixels a JPEG or PNG header declares (failing on a header that does not parse); for
    other formats ``otherwise``, by default more than any limit, so such files take the one-by-one path."""
    def jpeg():
        shape = tf.io.extract_jpeg_shape(data, output_type=tf.int64)
        return shape[0] * shape[1]

    def png():  # IHDR: width and height as big-endian 32-bit numbers (read as 16-bit halves: no uint32 op)
        halves = tf.cast(tf.io.decode_raw(tf.strings.substr(data, 16, 8), tf.uint16, little_endian=False), tf.int64)
        return (halves[0] * 65536 + halves[1]) * (halves[2] * 65536 + halves[3])
    is_png = tf.logical_and(tf.equal(tf.strings.substr(data, 0, 8), b"\x89PNG\r\n\x1a\n"),
                            tf.equal(tf.strings.substr(data, 12, 4), b"IHDR"))
    return tf.case([(tf.equal(tf.strings.substr(data, 0, 2), b"\xff\xd8"), jpeg), (is_png, png)],
                   default=lambda: tf.constant(MAX_PIXELS + 1 if otherwise is None else otherwise, tf.int64))


@functools.lru_cache(maxsize=8)
def _file_decoder(size, max_pixels: int):
    """A file's pixels, read and decoded in the graph once its header shows it within ``max_pixels``; traced
    once per size (0.13 s), not once per split."""
    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def one(path):
        data = tf.io.read_file(path)
        fits = tf.debugging.assert_less_equal(declared_pixels(data), tf.constant(max_pixels, tf.int64))
        with tf.control_dependencies([fits]):
            return pixels(tf.identity(data), size)
    return one


def _graph_decoded(paths, size, batch: int = 32):
    """``(indices, uint8 images)`` batches of the files one ``tf.data`` pipeline decodes, in order, on every
    core without the GIL (2x the files per second of a thread per core calling in from Python).

    Only JPEG and PNG files within the limits are decoded here (the limits checked from the header, in the
    graph, before any pixel is decoded); a file that fails any step is left out, and the caller decodes it
    one by one, which says why.
    """
    def sized(path):
        try:
            return 0 < os.stat(path).st_size <= MAX_FILE_BYTES
        except (OSError, ValueError):
            return False
    index = np.array([i for i, p in enumerate(paths) if sized(p)], np.int64)

    one = _file_decoder(size, MAX_PIXELS)
    files = tf.constant([os.fsencode(paths[i]) for i in index], tf.string, shape=[len(index)])
    # Prefetching a few batches keeps decoding while the caller writes what it has to the cache.
    pipeline = (tf.data.Dataset.from_tensor_slices((index, files))
                .map(lambda i, path: (i, one(path)), num_parallel_calls=os.cpu_count() or 1, deterministic=True)
                .ignore_errors(log_warning=False).batch(batch).prefetch(4))
    for indices, images in pipeline:
        yield indices.numpy(), images.numpy()


def decoded_in_order(paths, size, one, chunk: int):
    """``one(path)``'s kind of result, ``(pixels, "")`` or ``(None, reason)``, for every path in order: the
    graph pipeline decodes what it can and ``one`` (run on a thread per core, ``chunk`` files at a time)
    whatever it left out, so a file's verdict and pixels are the same whichever path took it."""
    size = tuple(int(s) for s in size)
    done = 0
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        def by_hand(stop):
            for start in range(done, stop, chunk):
                yield from pool.map(one, paths[start:min(stop, start + chunk)])
        batches = _graph_decoded(paths, size)
        while True:
            try:
                indices, images = next(batches)
            except StopIteration:
                break
            except (tf.errors.OpError, OSError, RuntimeError):  # the pipeline itself failed (no file descriptors
                break  # left, say): whatever it has not given is decoded by hand, which tells each file's reason
            for i, image in zip(indices, images):
                yield from by_hand(int(i))
                yield image, ""
                done = int(i) + 1
        yield from by_hand(len(paths))


_SIGNATURES = {b"\xff\xd8": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"BM": "BMP", b"RIFF": "WebP"}


def _image_kind(data: bytes):
    """The image format the first bytes announce, or None."""
    return next((kind for signature, kind in _SIGNATURES.items() if data.startswith(signature)), None)


@dataclass
class Decoded:
    """A split's usable files (``split``) with their pixels, and the files that were skipped.

    ``images`` is read from disk on demand (:class:`~catdog_zoo.util.rows.FileRows`) or, when the cache
    cannot be written, an array: index it by rows (a batch at a time), never whole.
    """

    split: Split
    images: object
    digest: str  # content digest of all the files asked for: the cache key of anything derived
    skipped: list = field(default_factory=list)  # [(path, reason)]


DECODE_CHUNK = 256  # images decoded between two writes: what decoding holds in memory


KEEP_BYTES = 2 << 30  # decoded_cache "auto": keep a split's pixels up to this size


def keeps_pixels(policy: str, count: int, size) -> bool:
    """Whether ``decoded_cache=policy`` keeps the pixels of ``count`` images of ``size`` between runs.

    Kept pixels save decoding in later runs that read them (training on images, new augmented views);
    but a large dataset's pixels take several times its JPEGs on disk (150 KB an image at 224 px against
    about 25 KB) and a run on cached features reads them once, so past 2 GiB they are not kept.
    """
    return policy == "keep" or (policy == "auto" and count * size[0] * size[1] * 3 <= KEEP_BYTES)


def decode_split(split: Split, image_size, progress=SILENT, label: str = "decoding", keep: str = "auto") -> Decoded:
    """Decode (or load from the cache) every file of ``split`` at ``image_size``.

    ``progress`` is a :func:`catdog_zoo.util.progress.progress_factory`; it reports only real decoding.
    ``keep``: the ``decoded_cache`` policy (:func:`keeps_pixels`). When pixels are not kept, the cache keeps
    each file's verdict; a later run then decodes only the pixels it reads (:class:`DecodedOnTheFly`).
    """
    size = tuple(int(s) for s in image_size)
    digest, readable = checked_files_digest(split.paths)
    name = decoded_key(digest, size)
    if not keeps_pixels(keep, len(split.paths), size):
        return _decode_unkept(split, size, digest, readable, progress, label)
    images = cache.load(name) if readable else None
    reasons = _reasons(images, len(split.paths), size)
    if reasons is None:
        if images is not None:
            cache.warn(f"cache entry {name} does not describe these {len(split.paths)} files; decoding again")
        with progress(label, len(split.paths)) as bar:
            images, reasons = _decode_all(split.paths, size, name, bar.advance, store=readable)
    return _decoded(split, images, reasons, digest)


def _decoded(split: Split, images, reasons, digest: str) -> Decoded:
    ok = [i for i, r in enumerate(reasons) if not r]
    kept = Split(tuple(split.paths[i] for i in ok), tuple(split.labels[i] for i in ok))
    skipped = [(split.paths[i], str(r)) for i, r in enumerate(reasons) if r]
    return Decoded(kept, images, digest, skipped)


def _decode_unkept(split: Split, size, digest: str, readable: bool, progress, label: str) -> Decoded:
    """``decoded_cache`` says drop: the verdicts are cached (an entry of no rows), the pixels are not."""
    name = decoded_key(digest, size) + "-verdicts"
    entry = cache.load(name) if readable else None
    reasons = entry.meta.get("reasons") if entry is not None and entry.shape == (0,) else None
    if isinstance(reasons, list) and len(reasons) == len(split.paths) and all(isinstance(r, str) for r in reasons):
        entry.close()
        usable = [p for p, r in zip(split.paths, reasons) if not r]
        return _decoded(split, DecodedOnTheFly(usable, size), reasons, digest)
    with progress(label, len(split.paths)) as bar:  # this run reads them from a file removed when it ends
        images, reasons = _decode_all(split.paths, size, name, bar.advance, store=False)
    if readable and not getattr(images, "transient", False):
        cache.store(name, np.zeros((0,), np.uint8), reasons=reasons)
    return _decoded(split, images, reasons, digest)


class DecodedOnTheFly:
    """The pixels of files known to decode, decoded again whenever rows are asked for (a slice, an index,
    a shuffled batch), on every core: what a split is when its pixels are not kept in the cache."""

    def __init__(self, paths, size):
        self.paths, self.size = list(paths), tuple(size)
        self.shape, self.dtype, self.ndim = (len(self.paths), *self.size, 3), np.dtype(np.uint8), 4

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._decode([self.paths[key]])[0]
        index = np.arange(len(self.paths))[key]
        return self._decode([self.paths[i] for i in np.atleast_1d(index)])

    def __array__(self, dtype=None, copy=None):
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def _decode(self, paths) -> np.ndarray:
        # A thread per core, not the graph pipeline of whole splits: setting a pipeline up costs about 40 ms,
        # more than a batch takes to decode this way.
        def one(path):
            try:
                return decode_file(path, self.size)
            except ImageError as exc:
                raise ZooError(f"{path} no longer decodes ({exc}); it changed during the run: run again") from None
        if not paths:
            return np.zeros((0, *self.size, 3), np.uint8)
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            return np.stack(list(pool.map(one, paths)))


def decoded_key(files_digest_: str, size) -> str:
    """The cache key of the decoded pixels and verdicts of files with this content digest at ``size``."""
    return cache.key("decoded", files=files_digest_, size=tuple(size), limits=[MAX_PIXELS, MAX_FILE_BYTES])


def _reasons(entry, count: int, size):
    """A verified entry's per-file verdicts, when they fit ``count`` files and the entry's rows; else None."""
    if entry is None:
        return None
    reasons = entry.meta.get("reasons")
    if (not isinstance(reasons, list) or len(reasons) != count or not all(isinstance(r, str) for r in reasons)
            or entry.shape != (sum(1 for r in reasons if not r), *size, 3) or entry.dtype != np.uint8):
        return None
    return reasons


def _decode_all(paths, size, name, advance=lambda n: None, store: bool = True) -> tuple:
    """``(uint8 images of the files that decode, reasons)``; ``reasons[i]`` is "" for a usable file.

    Decoded a chunk at a time straight into the cache entry, so memory holds one chunk, whatever the
    number of files. A file that failed for a transient reason is skipped this time, but the entry is
    not kept: the next run tries it again.
    """
    reasons, transient = [], []

    def one(path):
        try:
            return decode_file(path, size), ""
        except ImageError as exc:
            if exc.transient:
                transient.append(path)
            return None, str(exc)

    with cache.writing(name, (*size, 3), np.uint8) as out:
        good = []
        for image, reason in decoded_in_order(paths, size, one, DECODE_CHUNK):
            reasons.append(reason)
            advance(1)
            if not reason:
                good.append(image)
            if len(good) == DECODE_CHUNK:
                out.append(np.stack(good))
                good = []
        if good:
            out.append(np.stack(good))
        if transient:
            cache.warn(f"{len(transient)} file(s) could not be read this time ({reasons[paths.index(transient[0])]}); "
                       "they are skipped in this run and tried again in the next")
        images = out.commit(store=store and not transient, reasons=reasons)
        if transient and hasattr(images, "meta"):
            images.transient = True  # nothing derived from this pass may be kept either
        return images, reasons


def describe_skipped(skipped, shown: int = 3) -> str:
    """"skipped 4 files ...: a.jpg (empty file), ... and 1 more" for warnings and --strict errors."""
    named = ", ".join(f"{terminal(path)} ({terminal(reason)})" for path, reason in skipped[:shown])
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (f"skipped {len(skipped)} file(s) that are not usable images: {named}{more}; "
            "'catdog-zoo data check' lists every problem")

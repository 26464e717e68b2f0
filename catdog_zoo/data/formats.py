"""What a file's first bytes say: its image format, and the size its header declares, read once per idea.

The formats' signatures are written here only; the header is read in Python (:func:`declared_size`, for one
file) or in a TensorFlow graph (:func:`declared_pixels`, for the decoding pipeline and served uploads), both
from the same offsets.
"""

from __future__ import annotations

import io

import tensorflow as tf

# name -> the bytes a file of that format starts with (WebP: "RIFF", then the size, then "WEBP")
SIGNATURES = {"jpeg": b"\xff\xd8", "png": b"\x89PNG\r\n\x1a\n", "gif": b"GIF8", "bmp": b"BM", "webp": b"RIFF"}
TITLES = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "bmp": "BMP", "webp": "WebP"}
WEBP_MARK, WEBP_MARK_AT = b"WEBP", 8
PNG_IHDR, PNG_IHDR_AT = b"IHDR", 12  # the first chunk, whose first 8 bytes are width and height
PNG_SIZE = PNG_IHDR_AT + len(PNG_IHDR)


def content_format(head: bytes):
    """The format (a key of :data:`SIGNATURES`) a file's first bytes announce, or None."""
    for name, signature in SIGNATURES.items():
        if head.startswith(signature) and (name != "webp" or head[WEBP_MARK_AT:WEBP_MARK_AT + 4] == WEBP_MARK):
            return name
    return None


def is_png(data: bytes) -> bool:
    return data.startswith(SIGNATURES["png"]) and data[PNG_IHDR_AT:PNG_SIZE] == PNG_IHDR


def declared_size(data: bytes):
    """``(width, height)`` from the header, ``"huge"`` (past Pillow's own limit), or None (unreadable).

    PNG is read here and JPEG by the same libjpeg header parser TensorFlow decodes with (Pillow gives up on
    JPEGs libjpeg still decodes, such as a stray byte between segments); other formats by Pillow.
    """
    import struct
    import warnings

    from PIL import Image

    if is_png(data):
        return struct.unpack(">II", data[PNG_SIZE:PNG_SIZE + 8]) if len(data) >= PNG_SIZE + 8 else None  # cut short: the decoder says so
    if data.startswith(SIGNATURES["jpeg"]):
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


def declared_pixels(data, otherwise: int):
    """In the graph: the pixels a JPEG or PNG header declares (failing on a header that does not parse); for
    other formats ``otherwise`` (more than a limit sends such files down the one-by-one path)."""
    def jpeg():
        shape = tf.io.extract_jpeg_shape(data, output_type=tf.int64)
        return shape[0] * shape[1]

    def png():  # IHDR: width and height as big-endian 32-bit numbers (read as 16-bit halves: no uint32 op)
        halves = tf.cast(tf.io.decode_raw(tf.strings.substr(data, PNG_SIZE, 8), tf.uint16, little_endian=False), tf.int64)
        return (halves[0] * 65536 + halves[1]) * (halves[2] * 65536 + halves[3])
    def starts(signature: bytes, at: int = 0):
        return tf.equal(tf.strings.substr(data, at, len(signature)), signature)
    png_header = tf.logical_and(starts(SIGNATURES["png"]), starts(PNG_IHDR, PNG_IHDR_AT))
    return tf.case([(starts(SIGNATURES["jpeg"]), jpeg), (png_header, png)],
                   default=lambda: tf.constant(otherwise, tf.int64))

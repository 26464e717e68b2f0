#!/usr/bin/env python
"""Raw MobileNetV2 (no top) forward-pass throughput on the real images, float32 or bfloat16.

    python bench/forward_throughput.py [float32|bfloat16] [BATCH] [SIZE]      (defaults: float32 64 160)

Decodes the 3000 cats_and_dogs_filtered images once (through the zoo's decode cache), then times
``backbone(x, training=False)`` over all of them after one warm-up batch. Prints one JSON line.
"""

import json
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from catdog_zoo.data.decode import decode_split
from catdog_zoo.data.sources import resolve_data
from catdog_zoo.data.splits import make_splits


def main(dtype: str, batch: int, size: int) -> dict:
    splits = make_splits(resolve_data(None))
    images = np.concatenate([np.asarray(decode_split(s, (size, size)).images)
                             for s in (splits.train, splits.validation, splits.test)])
    if dtype == "bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    backbone = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    scale = keras.layers.Rescaling(1 / 127.5, offset=-1)

    @tf.function(reduce_retracing=True)
    def forward(x):
        return tf.reduce_mean(tf.cast(backbone(scale(tf.cast(x, tf.float32)), training=False), tf.float32), [1, 2])

    forward(images[:batch])
    started = time.perf_counter()
    feats = [forward(images[i:i + batch]).numpy() for i in range(0, len(images), batch)]
    seconds = time.perf_counter() - started
    return {"dtype": dtype, "batch": batch, "size": size, "images": len(images), "seconds": seconds,
            "images_per_second": len(images) / seconds, "feature_checksum": float(np.concatenate(feats).sum())}


if __name__ == "__main__":
    args = sys.argv[1:] + ["float32", "64", "160"][len(sys.argv) - 1:]
    print("RESULT " + json.dumps(main(args[0], int(args[1]), int(args[2]))), flush=True)

#!/usr/bin/env python
"""The reference notebook's transfer-learning recipe in plain Keras, for comparison (bench/transfer.py).

Same steps as the notebook: image_dataset_from_directory (batch 32, 160x160, shuffled), test set taken
as the first fifth of the validation batches with take/skip, prefetch, frozen MobileNetV2 behind
preprocessing, RandomFlip("horizontal") and RandomRotation(0.3), pooling, Dropout(0.2), one logit,
Adam, binary cross-entropy, 20 epochs. Prints one JSON line with the results.
"""

import json
import os
import sys
import time

import keras
import tensorflow as tf

URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"


def main(epochs: int) -> dict:
    started = time.perf_counter()
    path = keras.utils.get_file("cats_and_dogs.zip", origin=URL, extract=True)
    root = os.path.join(path, "cats_and_dogs_filtered")
    if not os.path.isdir(root):
        root = os.path.join(os.path.dirname(path), "cats_and_dogs_filtered")
    train = keras.utils.image_dataset_from_directory(os.path.join(root, "train"), shuffle=True, batch_size=32,
                                                     image_size=(160, 160))
    val = keras.utils.image_dataset_from_directory(os.path.join(root, "validation"), shuffle=True, batch_size=32,
                                                   image_size=(160, 160))
    batches = int(tf.data.experimental.cardinality(val))
    test, val = val.take(batches // 5), val.skip(batches // 5)
    train, val, test = (d.prefetch(tf.data.AUTOTUNE) for d in (train, val, test))

    shape = (160, 160, 3)
    base = keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights="imagenet")
    base.trainable = False
    i = keras.Input(shape=shape)
    preprocessor = keras.Model(i, keras.applications.mobilenet_v2.preprocess_input(i))
    j = keras.Input(shape=shape)
    base_layer = keras.Model(j, base(j, training=False))
    model = keras.Sequential([preprocessor, keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.3),
                              base_layer, keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.2),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)])
    history = model.fit(train, epochs=epochs, validation_data=val, verbose=2)
    _, test_acc = model.evaluate(test, verbose=0)
    return {"wall_seconds": time.perf_counter() - started, "val_accuracy": history.history["val_accuracy"][-1],
            "val_accuracy_range": [min(history.history["val_accuracy"]), max(history.history["val_accuracy"])],
            "test_accuracy": test_acc}


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)), flush=True)

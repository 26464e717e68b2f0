#!/usr/bin/env python
"""Does a head trained on bfloat16 features lose accuracy? Measured on cats_and_dogs_filtered at 224 px.

    KERAS_HOME=<seeded cache> python bench/train_precision.py [--data DIR] [--seeds 42,1,2] [--head-seeds 0,1]

The frozen MobileNetV2 (+ pooling) runs on OpenVINO in float32 and in bfloat16 over the training split; for
each data seed (its validation/test split) and head seed, the zoo's head (dropout 0.2, dense, Adam 1e-3,
20 epochs, batch 32) is trained once on each, and both are scored on the same float32 validation and test
features, as ``catdog-zoo train`` does with ``--train-precision bfloat16``. Prints accuracy per run, the
share of identical predictions, and the extraction seconds of each precision.
"""

import argparse
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="class folders with train/ and validation/ (default: Keras cache)")
    parser.add_argument("--seeds", default="42,1,2")
    parser.add_argument("--head-seeds", default="0,1")
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    import keras

    from catdog_zoo.data.decode import decode_split
    from catdog_zoo.data.sources import resolve_data
    from catdog_zoo.data.splits import make_splits
    from catdog_zoo.models import openvino_engine
    from catdog_zoo.models.engine import Loaded
    from catdog_zoo.models.tflite_engine import convert
    from catdog_zoo.plugins import get_zoo

    root = resolve_data(args.data)
    size = (args.size, args.size)
    backbone = keras.applications.MobileNetV2(input_shape=(*size, 3), include_top=False, weights="imagenet")
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1)
    engine = Loaded(get_zoo().extension("engines", "openvino"), openvino_engine.load(openvino_engine.convert(
        convert([scaled, backbone, keras.layers.GlobalAveragePooling2D()], (*size, 3)))))  # called as training does
    run = {"float32": engine, "bfloat16": engine.bfloat16()}

    def features(images, precision):
        return np.concatenate([run[precision](np.asarray(images[i:i + 64], np.float32))
                               for i in range(0, len(images), 64)])

    seeds = [int(s) for s in args.seeds.split(",")]
    train = make_splits(root, seeds[0]).train  # the same files for every seed (train/ as given)
    decoded = decode_split(train, size)
    pixels = decoded.images
    train_features = {}
    for precision in run:
        started = time.perf_counter()
        train_features[precision] = features(pixels, precision)
        print(f"training features in {precision}: {len(pixels)} images in {time.perf_counter() - started:.1f}s")
    y_train = np.array(decoded.split.labels)  # the files that decoded

    def head(x, seed):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dropout(0.2), keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True))
        model.fit(x, y_train, batch_size=32, epochs=20, verbose=0, shuffle=True)
        return model

    print(f"\n{'seed':>4} {'head':>4}  float32 val / test   bfloat16 val / test   same predictions")
    for seed in seeds:
        splits = make_splits(root, seed)
        scored = {}
        for name, split in (("val", splits.validation), ("test", splits.test)):
            usable = decode_split(split, size)
            scored[name] = (features(usable.images, "float32"), np.array(usable.split.labels))
        for head_seed in [int(s) for s in args.head_seeds.split(",")]:
            cells, predicted = [], {}
            for precision in run:
                model = head(train_features[precision], 100 * head_seed + seed)
                for name, (x, y) in scored.items():
                    predicted[precision, name] = (model.predict(x, verbose=0)[:, 0] > 0).astype(int)
                cells.append(" / ".join(f"{(predicted[precision, n] == scored[n][1]).mean():.2%}" for n in scored))
            same = np.mean(np.concatenate([predicted["float32", n] == predicted["bfloat16", n] for n in scored]))
            print(f"{seed:>4} {head_seed:>4}  {cells[0]:>19}   {cells[1]:>19}   {same:.1%}")


if __name__ == "__main__":
    main()

"""Accuracy of an .xnr model on a data set's full test split, run by the engine.

python examples/training/evaluate.py weights/cifar10_reactnet.xnr --dataset cifar10 --data ../shared/data"""

from __future__ import annotations

import argparse
import json
import time

import data
import numpy as np

import xnorinfer


def engine_accuracy(model, x_uint8, y, batch=250) -> tuple[float, np.ndarray]:
    """Top-1 accuracy (%) and predictions; pixels normalised with the model's own metadata."""
    meta = model.metadata
    mean, std = np.asarray(meta["mean"], np.float32), np.asarray(meta["std"], np.float32)
    preds = []
    for i in range(0, len(x_uint8), batch):
        x = (x_uint8[i : i + batch].astype(np.float32) / 255.0 - mean) / std
        preds.append(model.predict(np.ascontiguousarray(x), layout="NHWC").argmax(1))
    preds = np.concatenate(preds)
    return 100.0 * float((preds == y).mean()), preds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--dataset", choices=["cifar10", "fashion-mnist"], required=True)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--limit", type=int, help="only the first N test images (in the split's order)")
    args = parser.parse_args()
    ds = data.load(args.dataset, args.data)
    x, y = ds["x_test"], ds["y_test"]
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    model = xnorinfer.load(args.model)
    start = time.perf_counter()
    acc, _ = engine_accuracy(model, x, y)
    print(
        json.dumps(
            {
                "model": args.model,
                "images": len(y),
                "engine_top1": round(acc, 2),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

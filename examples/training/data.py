"""The project's data sets (../shared/data, see its README) as uint8 NHWC arrays."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
# Per-channel statistics of the training splits, on pixels scaled to [0, 1].
CIFAR10_MEAN, CIFAR10_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
FASHION_MNIST_MEAN, FASHION_MNIST_STD = [0.2860], [0.3530]


def _decode_jpegs(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    data = blob.tobytes()
    return np.stack(
        [
            np.asarray(Image.open(io.BytesIO(data[offsets[i] : offsets[i + 1]])).convert("RGB"))
            for i in range(len(offsets) - 1)
        ]
    )


def load(name: str, data_dir) -> dict:
    """{'x_train', 'y_train', 'x_test', 'y_test' (uint8, NHWC), 'classes', 'mean', 'std'}."""
    data_dir = Path(data_dir)
    if name == "cifar10":
        with np.load(data_dir / "cifar10_jpeg.npz", allow_pickle=False) as z:
            return {
                "x_train": _decode_jpegs(z["train_jpeg"], z["train_offsets"]),
                "y_train": z["train_labels"],
                "x_test": _decode_jpegs(z["test_jpeg"], z["test_offsets"]),
                "y_test": z["test_labels"],
                "classes": CIFAR10_CLASSES,
                "mean": CIFAR10_MEAN,
                "std": CIFAR10_STD,
            }
    if name == "fashion-mnist":
        with np.load(data_dir / "fashion_mnist.npz", allow_pickle=False) as z:
            return {
                "x_train": z["x_train"][..., None],
                "y_train": z["y_train"],
                "x_test": z["x_test"][..., None],
                "y_test": z["y_test"],
                "classes": FASHION_MNIST_CLASSES,
                "mean": FASHION_MNIST_MEAN,
                "std": FASHION_MNIST_STD,
            }
    raise ValueError(f"unknown data set {name!r}")

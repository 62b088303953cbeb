"""Classify images with a model (by default the shipped CIFAR-10 model)."""

from __future__ import annotations

import os

import numpy as np

from . import shipped
from .model import Model, load
from .preprocess import ImageError, preprocess


def default_model_path() -> str:
    """Path of the shipped default model (weights/cifar10_reactnet.xnr, installed with the package
    as xnorinfer.weights, or found in the source tree when running from a checkout)."""
    return shipped.model_path(shipped.DEFAULT_MODEL)


def resolve_model(model) -> Model:
    if isinstance(model, Model):
        return model
    return load(default_model_path() if model is None else model)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z, dtype=np.float64)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def top_k_labels(probabilities: np.ndarray, classes: list[str], k: int) -> list[list[tuple[str, float]]]:
    k = min(k, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(classes[j], float(p[j])) for j in row] for p, row in zip(probabilities, order)]


def classify_batches(sources, model: Model, top_k: int = 5, batch_size: int = 32):
    """Yield (source, top-k list or None, ImageError or None) for each source, in order.
    A source that cannot be read yields its error and the others are still classified."""
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    classes = model.metadata.get("classes") or []
    # The graph decides the input size; the metadata adds normalisation and resize hints.
    hints = dict(model.metadata, input_size=list(model.input_size))
    pending: list = []

    def flush():
        ok = [i for i, (_, _, err) in enumerate(pending) if err is None]
        results = {}
        if ok:
            probs = softmax(model.predict(np.stack([pending[i][1] for i in ok]), layout="NHWC"))
            names = classes if len(classes) == probs.shape[1] else [str(i) for i in range(probs.shape[1])]
            results = dict(zip(ok, top_k_labels(probs, names, top_k)))
        for i, (src, _, err) in enumerate(pending):
            yield src, results.get(i), err
        pending.clear()

    for src in sources:
        try:
            pending.append((src, preprocess(src, hints), None))
        except ImageError as exc:
            path = os.fspath(src) if isinstance(src, (str, os.PathLike)) else None
            pending.append((src, None, ImageError(str(exc), path)))
        if len(pending) >= batch_size:
            yield from flush()
    yield from flush()


ERRORS = ("raise", "skip")


def classify(images, model=None, top_k: int = 5, batch_size: int = 32, errors: str = "raise") -> list:
    """Top-k (label, probability) pairs for each image.

    images: a path, PIL image or uint8 array (H, W[, C]), or a list of them. model: a Model, a
    path to a .xnr file, or None for the shipped CIFAR-10 model. Returns one list per image (a list
    of lists even for a single image). errors="raise" (default): an image that cannot be used
    raises ImageError; errors="skip": its entry is that ImageError (with .path and .message) and
    the other images are classified."""
    if errors not in ERRORS:
        raise ValueError(f"errors must be one of {ERRORS}, got {errors!r}")
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    results = []
    for _, top, error in classify_batches(items, resolve_model(model), top_k, batch_size):
        if error is not None and errors == "raise":
            raise error
        results.append(top if error is None else error)
    return results

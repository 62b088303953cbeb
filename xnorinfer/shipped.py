"""The models shipped with xnorinfer (weights/*.xnr, installed as the package xnorinfer.weights),
named by their file stem: `xnorinfer.load("cifar10_reactnet")`, `--model cifar10_reactnet`."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

DEFAULT_MODEL = "cifar10_reactnet"
SUFFIX = ".xnr"


def weights_dir() -> Path:
    """The folder holding the shipped models: the installed package, or weights/ in a checkout."""
    try:
        return Path(os.fspath(resources.files("xnorinfer.weights")))
    except ModuleNotFoundError:  # a source tree on sys.path without the package-dir mapping
        return Path(__file__).resolve().parents[1] / "weights"


def names() -> list[str]:
    return sorted(p.stem for p in weights_dir().glob("*" + SUFFIX))


def model_path(name: str) -> str:
    """The file of the shipped model `name` (with or without .xnr). KeyError, listing the shipped
    models, when there is none of that name."""
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    path = weights_dir() / (stem + SUFFIX)
    if os.sep in name or not path.is_file():
        raise KeyError(f"no shipped model named {name!r}; shipped models: {', '.join(names()) or 'none installed'}")
    return os.fspath(path)


def resolve(path) -> str | os.PathLike:
    """`path` itself when a file of that name exists, else the shipped model of that bare name.
    A file always wins, so a user's own `cifar10_reactnet` in the working directory is never shadowed."""
    if os.path.exists(path):
        return path
    try:
        return model_path(os.fspath(path))
    except KeyError:
        raise FileNotFoundError(
            f"no model file at {os.fspath(path)!r} and no shipped model of that name; "
            f"shipped models: {', '.join(names())}"
        ) from None


def describe() -> list[dict]:
    """One dict per shipped model: name, dataset, arch, accuracies (% top-1 on the full test split,
    from its facts file), file size in bytes, path and model card."""
    rows = []
    for name in names():
        path = weights_dir() / (name + SUFFIX)
        facts_file, card = path.with_suffix(".json"), path.with_suffix(".md")
        facts = json.loads(facts_file.read_text(encoding="utf-8")) if facts_file.is_file() else {}
        rows.append(
            {
                "name": name,
                "default": name == DEFAULT_MODEL,
                "dataset": facts.get("dataset"),
                "arch": facts.get("arch"),
                "top1_engine": facts.get("engine_test_top1"),
                "top1_pytorch": facts.get("pytorch_test_top1"),
                "bytes": path.stat().st_size,
                "path": os.fspath(path),
                "card": os.fspath(card) if card.is_file() else None,
            }
        )
    return rows

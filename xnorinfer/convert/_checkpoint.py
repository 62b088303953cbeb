"""Reading PyTorch checkpoints safely, and strict key bookkeeping for the converters."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping

import numpy as np


class ConversionError(ValueError):
    """The checkpoint does not match the architecture it is converted as."""


def _torch():
    from .._optional import require_torch

    return require_torch("reading PyTorch checkpoints")


def read_checkpoint(source) -> tuple[dict[str, np.ndarray], dict]:
    """(state_dict as float32 NumPy arrays, source info) from a checkpoint path or a state_dict.

    A path is read with torch.load(map_location="cpu", weights_only=True), so no code in the file
    runs; both the zip and the legacy (pre-1.6) formats work, CUDA-saved tensors included. A
    training checkpoint dict is unwrapped ('state_dict' or 'model'), and a DataParallel 'module.'
    prefix is removed."""
    info = {}
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no checkpoint at {path!r}")
        with open(path, "rb") as f:
            info = {"file": os.path.basename(path), "sha256": hashlib.sha256(f.read()).hexdigest()}
        try:
            obj = _torch().load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for corrupt or unsafe files
            raise ConversionError(
                f"{path}: cannot be read as a PyTorch checkpoint "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
    elif isinstance(source, Mapping):
        obj = source
    else:
        raise TypeError(f"checkpoint must be a path or a state_dict mapping, got {type(source).__name__}")

    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ConversionError("the checkpoint holds no state_dict")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ConversionError(f"state_dict key {key!r} is not a string")
        state[key] = _to_numpy(key, value)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state, info


def _to_numpy(key, value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise ConversionError(f"state_dict entry {key!r} is not numeric ({array.dtype})")
    return array


class StateDict:
    """Hands out checkpoint tensors by key and shape, and records what was missing, misshapen or
    never used, so one error lists every mismatch (a silently half-loaded model is worse than none)."""

    OPTIONAL_SUFFIXES = (".num_batches_tracked",)

    def __init__(self, state: dict[str, np.ndarray], arch: str):
        self.state, self.arch = state, arch
        self.used: set[str] = set()
        self.missing: list[str] = []
        self.misshapen: list[str] = []
        self.zero_weights: dict[str, int] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.state

    def shape(self, key: str) -> tuple[int, ...] | None:
        return self.state[key].shape if key in self.state else None

    def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        """The float32 tensor `key`, which must have `shape` (flat PyTorch shapes are reshaped
        when their size matches, e.g. ReActNet's (C*C*9, 1) weights or (1, C, 1, 1) biases)."""
        if key not in self.state:
            self.missing.append(f"{key} {shape}")
            return np.zeros(shape, np.float32)
        self.used.add(key)
        value = self.state[key]
        if value.shape != tuple(shape):
            if value.size != int(np.prod(shape)):
                self.misshapen.append(f"{key}: {value.shape}, expected {tuple(shape)}")
                return np.zeros(shape, np.float32)
            value = value.reshape(shape)
        value = np.ascontiguousarray(value, dtype=np.float32)
        if not np.isfinite(value).all():
            raise ConversionError(f"{key} contains NaN or infinite values")
        return value

    def note_zero_weights(self, name: str, weight: np.ndarray) -> None:
        """PyTorch's sign(0) = 0 has no 1-bit form (the engine uses +1): count where it happens."""
        zeros = int(np.count_nonzero(weight == 0))
        if zeros:
            self.zero_weights[name] = zeros

    def finish(self) -> None:
        """Raise ConversionError listing every missing, misshapen and unexpected key; warn about
        binary weights that are exactly 0."""
        unexpected = sorted(k for k in self.state if k not in self.used and not k.endswith(self.OPTIONAL_SUFFIXES))
        problems = []
        if self.missing:
            problems.append(f"missing keys ({len(self.missing)}): " + ", ".join(self.missing))
        if self.misshapen:
            problems.append(f"wrong shapes ({len(self.misshapen)}): " + ", ".join(self.misshapen))
        if unexpected:
            problems.append(f"unexpected keys ({len(unexpected)}): " + ", ".join(unexpected))
        if problems:
            raise ConversionError(f"checkpoint does not match arch {self.arch!r}:\n  " + "\n  ".join(problems))
        if self.zero_weights:
            where = ", ".join(f"{name} ({n})" for name, n in self.zero_weights.items())
            warnings.warn(
                f"binary weights exactly 0, which PyTorch's sign maps to 0 and xnorinfer to +1: {where}", stacklevel=3
            )

"""Argument checks shared by every public kernel: bad input gets a clear exception, never a crash
in C or a silently wrong result."""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np

# Scanning every activation for NaN/Inf costs a pass over memory per layer. The graph executor
# checks a model's input once and runs its layers inside `trusted()`, which skips those scans.
_scan_values = contextvars.ContextVar("xnorinfer_scan_values", default=True)


@contextlib.contextmanager
def trusted():
    """Within this block `tensor(..., finite=True)` checks types and shapes but not values."""
    token = _scan_values.set(False)
    try:
        yield
    finally:
        _scan_values.reset(token)


def scanning() -> bool:
    """False inside `trusted()`: whole-tensor value checks are skipped there."""
    return _scan_values.get()


def tensor(x, name: str, dtype, ndim: int | tuple[int, ...], *, finite: bool = False) -> np.ndarray:
    """Returns x if it is a C-contiguous ndarray of `dtype` and rank `ndim` (one of them, for a
    tuple); raises TypeError or ValueError naming the argument otherwise."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {x.dtype.name}")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if x.ndim not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{name} must have {want} dimensions, got shape {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if finite and x.dtype.kind == "f" and _scan_values.get() and not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a and b start at the same address: one bound call's output is another's input."""
    return a.__array_interface__["data"][0] == b.__array_interface__["data"][0]


def channel_vector(v, name: str, channels: int, *, finite: bool = True) -> np.ndarray | None:
    """None, or a float32 vector of `channels` values (a (1, C, 1, 1) PyTorch parameter is fine)."""
    if v is None:
        return None
    v = np.asarray(v)
    if v.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be numeric, got dtype {v.dtype.name}")
    if v.size != channels or (v.ndim > 1 and max(v.shape) != channels):
        raise ValueError(f"{name} must hold one value per channel ({channels}), got shape {v.shape}")
    v = np.ascontiguousarray(v.reshape(channels), dtype=np.float32)
    if finite and not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return v


def output(out, shape, dtype) -> np.ndarray:
    """A new array for a layer's output, or the given `out` checked to be one (C-contiguous)."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    out = tensor(out, "out", dtype, len(shape))
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got {out.shape}")
    return out


def positive_pair(v, name: str) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1 (kernel size, stride)."""
    pair = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(pair) != 2 or not all(isinstance(p, (int, np.integer)) and p >= 1 for p in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {v!r}")
    return int(pair[0]), int(pair[1])


def padding4(v, name: str = "padding") -> tuple[int, int, int, int]:
    """Padding as (top, bottom, left, right) from an int, (vertical, horizontal) or 4 ints."""
    if isinstance(v, (int, np.integer)):
        pads = (v,) * 4
    else:
        pads = tuple(v)
        if len(pads) == 2:
            pads = (pads[0], pads[0], pads[1], pads[1])
    if len(pads) != 4 or not all(isinstance(p, (int, np.integer)) and p >= 0 for p in pads):
        raise ValueError(f"{name} must be an int >= 0, (vertical, horizontal) or (top, bottom, left, right), got {v!r}")
    return tuple(int(p) for p in pads)


def output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, what: str) -> int:
    """Output length of a window sliding over a padded axis (PyTorch's floor rule)."""
    span = size + pad_before + pad_after - kernel
    if span < 0:
        raise ValueError(
            f"{what}: kernel {kernel} is larger than the padded input ({size} + {pad_before} + {pad_after})"
        )
    return span // stride + 1

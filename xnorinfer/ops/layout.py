"""Layers that move values without arithmetic: strided slices, constant padding and channel
shuffles (NHWC, batch first). Shapes follow PyTorch's x[:, c0:c1:cs, h0:h1:hs, w0:w1:ws],
F.pad(value=v) and ShuffleNet's view-transpose-view channel shuffle."""

from __future__ import annotations

import numpy as np

from . import _validate as _v

__all__ = ["strided_slice", "pad", "channel_shuffle"]


def _activation(x) -> np.ndarray:
    return _v.tensor(x, "x", np.float32, tuple(range(2, 5)))


def strided_slice(x, start, stop, step) -> np.ndarray:
    """x[:, start[0]:stop[0]:step[0], ...] over every axis after the batch; a copy."""
    x = _activation(x)
    dims = x.ndim - 1
    if not len(start) == len(stop) == len(step) == dims:
        raise ValueError(f"start, stop and step need {dims} entries each for shape {x.shape}")
    if any(s < 1 for s in step) or any(not 0 <= a < b for a, b in zip(start, stop)):
        raise ValueError(f"a slice needs 0 <= start < stop and step >= 1, got {start}, {stop}, {step}")
    index = (slice(None),) + tuple(slice(a, b, s) for a, b, s in zip(start, stop, step))
    return np.ascontiguousarray(x[index])


def pad(x, before, after, value: float = 0.0) -> np.ndarray:
    """x with `before[i]` and `after[i]` entries of `value` around each axis after the batch."""
    x = _activation(x)
    dims = x.ndim - 1
    if not len(before) == len(after) == dims or min(*before, *after) < 0:
        raise ValueError(f"before and after need {dims} non-negative entries each for shape {x.shape}")
    if not np.isfinite(value):
        raise ValueError(f"value must be finite, got {value!r}")
    widths = [(0, 0)] + list(zip(before, after))
    return np.pad(x, widths, constant_values=np.float32(value))


def channel_shuffle(x, groups: int) -> np.ndarray:
    """ShuffleNet's shuffle of the last axis: with C = groups * k, output channel j * groups + i
    is input channel i * k + j (PyTorch: view(N, g, k, H, W).transpose(1, 2).reshape(N, C, H, W))."""
    x = _activation(x)
    c = x.shape[-1]
    if not isinstance(groups, int) or groups < 1 or c % groups:
        raise ValueError(f"groups must be a positive int dividing the {c} channels, got {groups!r}")
    lead = x.shape[:-1]
    return np.ascontiguousarray(x.reshape(lead + (groups, c // groups)).swapaxes(-1, -2).reshape(x.shape))

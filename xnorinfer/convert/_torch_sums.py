"""Float32 sums in the order PyTorch's CPU kernels add, so a NumPy-only conversion rounds
exactly as the model's own PyTorch code did (a weight whose centred value is within an ulp of 0
gets the same sign).

What is reproduced (torch 2.x, aten/src/ATen/native/cpu/SumKernel.cpp, `cascade_sum`):
- ``sum``/``mean`` over a dim: the reduced dim comes first in the TensorIterator and is added by
  one of four loops, picked by strides and the SIMD width W (8 floats, see SIMD_WIDTH):
  - contiguous reduction of >= W elements: W-wide vectors summed by `row_sum` (4 interleaved
    partial sums, each a `multi_row_sum` cascade), then the tail elements, then the W lanes;
  - strided reduction with >= W contiguous outputs: the first multiple of 4W outputs by
    `multi_row_sum`, the others by `row_sum`, lane by lane;
  - otherwise the scalar loops: contiguous -> `row_sum`; strided -> `multi_row_sum` for the
    outputs in whole groups of 4, `row_sum` for the rest.
  ``mean`` is that sum divided by the count (float32 division).
- ``norm(1, dim)`` (linalg_vector_norm, `binary_kernel_reduce` with `NormOneOps`): a plain
  running sum of |x| from 0, in index order.
Each output is added by one thread in this order whatever the thread count, as long as there is
more than one output (true of every weight here)."""

from __future__ import annotations

import numpy as np

F32 = np.float32


# Floats per Vectorized<float> in the sum kernel torch runs. Always 8 on x86: sum_stub is
# registered with REGISTER_DISPATCH, which leaves the AVX-512 slot empty, so AVX-512 machines run
# the AVX2 build (measured: AVX-512 and ATEN_CPU_CAPABILITY=avx2 give the same bits), and the
# DEFAULT build's vectors are 32 bytes too. Not verified on ARM.
SIMD_WIDTH = 8


def _ceil_log2(x: int) -> int:
    return 1 if x <= 2 else (x - 1).bit_length()


def _multi_row_sum(x: np.ndarray) -> np.ndarray:
    """Sum over axis 0 with torch's 4-level cascade: rows are added into level 0 in blocks of
    2**p (p >= 4); after each block level 0 moves up into level 1, and a level moves on up when
    its block count fills. Other axes are independent lanes."""
    size = x.shape[0]
    levels = 4
    power = max(4, _ceil_log2(size) // levels)
    step, mask = 1 << power, (1 << power) - 1
    acc = np.zeros((levels,) + x.shape[1:], F32)
    i = 0
    while i + step <= size:
        for _ in range(step):
            acc[0] += x[i]
            i += 1
        for j in range(1, levels):
            acc[j] += acc[j - 1]
            acc[j - 1] = 0
            if i & (mask << (j * power)):
                break
    for rest in range(i, size):
        acc[0] += x[rest]
    for j in range(1, levels):
        acc[0] += acc[j]
    return acc[0]


def _row_sum(x: np.ndarray) -> np.ndarray:
    """Sum over axis 0 as 4 interleaved partial sums (row i into partial i % 4), each a cascade;
    the rows past the last group of 4 go into partial 0; then partial 0 += 1, 2, 3."""
    size = x.shape[0]
    whole = size // 4
    partial = _multi_row_sum(x[: whole * 4].reshape((whole, 4) + x.shape[1:]))
    for i in range(whole * 4, size):
        partial[0] += x[i]
    for k in range(1, 4):
        partial[0] += partial[k]
    return partial[0]


def _contiguous_sum(rows: np.ndarray, width: int) -> np.ndarray:
    """Sum of each row of (outputs, n), the reduced elements adjacent in memory."""
    n = rows.shape[1]
    x = np.ascontiguousarray(rows.T)  # (n, outputs): axis 0 reduced, outputs as lanes
    if n < width:
        return _row_sum(x)
    vecs = n // width
    lanes = _row_sum(x[: vecs * width].reshape(vecs, width, -1))  # (width, outputs)
    total = np.zeros(x.shape[1], F32)
    for k in range(vecs * width, n):
        total += x[k]
    for k in range(width):
        total += lanes[k]
    return total


def _strided_sum(x: np.ndarray, width: int) -> np.ndarray:
    """x (reduced, outer, inner) -> (outer, inner): sums over axis 0, where each outer index's
    `inner` outputs are adjacent in memory and their reduced elements `inner` apart. Which loop adds
    an output depends only on its inner index, so all outer indices go through together."""
    inner = x.shape[2]
    group = 4 * width if inner >= width else 4
    split = inner // group * group
    out = np.empty(x.shape[1:], F32)
    if split:
        out[:, :split] = _multi_row_sum(x[:, :, :split])
    if split < inner:
        out[:, split:] = _row_sum(x[:, :, split:])
    return out


def sum_dim1(w: np.ndarray, width: int = SIMD_WIDTH) -> np.ndarray:
    """torch's ``w.sum(1, keepdim=True)`` for a C-contiguous float32 array of 2+ dims."""
    w = np.ascontiguousarray(w, F32)
    outer, reduced = w.shape[0], w.shape[1]
    inner = int(np.prod(w.shape[2:], dtype=np.int64))
    keep = (outer, 1) + w.shape[2:]
    if inner == 1:
        return _contiguous_sum(w.reshape(outer, reduced), width).reshape(keep)
    x = np.ascontiguousarray(w.reshape(outer, reduced, inner).transpose(1, 0, 2))
    return _strided_sum(x, width).reshape(keep)


def mean_dim1(w: np.ndarray, width: int = SIMD_WIDTH) -> np.ndarray:
    """torch's ``w.mean(1, keepdim=True)``: the sum above, divided by the count in float32."""
    return (sum_dim1(w, width) / F32(w.shape[1])).astype(F32)


def abs_sum_last(w: np.ndarray) -> np.ndarray:
    """torch's ``w.norm(1, -1, keepdim=True)``: |x| added in index order from 0."""
    w = np.asarray(w, F32)
    total = np.zeros(w.shape[:-1] + (1,), F32)
    for k in range(w.shape[-1]):
        total += np.abs(w[..., k : k + 1])
    return total


def mean_last(w: np.ndarray, width: int = SIMD_WIDTH) -> np.ndarray:
    """torch's ``w.mean(-1, keepdim=True)``: that sum divided by the count in float32."""
    return (sum_last(w, width) / F32(w.shape[-1])).astype(F32)


def torch_or_none():
    """The torch module when it is installed: its own arithmetic is the reference."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def sum_last(w: np.ndarray, width: int = SIMD_WIDTH) -> np.ndarray:
    """torch's ``w.sum(-1, keepdim=True)`` (a contiguous reduction)."""
    w = np.ascontiguousarray(w, F32)
    rows = w.reshape(-1, w.shape[-1])
    return _contiguous_sum(rows, width).reshape(w.shape[:-1] + (1,))

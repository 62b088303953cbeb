"""Float (non-binary) layers of binary networks: stem and head convolutions, batch norm, PReLU /
RPReLU, pooling, shortcuts.

NumPy, and C kernels for the direct convolution and pooling (csrc/float_ops.c). Activations are
float32 NHWC (batch first, channels last); weights use PyTorch's layouts so converted checkpoints
need no reshuffling. Results match PyTorch's float32 CPU ops up to rounding. Every function
validates its arguments (see ``_validate``) and returns a new C-contiguous float32 array; the
``bind_*`` forms check once and return a call that recomputes into fixed buffers (the executor's).
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import _core
from .._runtime import blas_single_threaded
from . import _validate as _v
from .binary import zero_to_code

__all__ = [
    "conv2d",
    "dense",
    "DenseWeights",
    "batch_norm",
    "prelu",
    "rprelu",
    "relu",
    "clamp",
    "sign",
    "softmax",
    "log_softmax",
    "add",
    "concat",
    "avg_pool2d",
    "max_pool2d",
    "global_avg_pool",
]


# ---- argument helpers ---------------------------------------------------------------------------


def _activation(x, name: str = "x", min_ndim: int = 2) -> np.ndarray:
    """A finite float32 C-contiguous array of rank >= min_ndim (channels on the last axis)."""
    if isinstance(x, np.ndarray) and x.ndim < min_ndim:
        # type and dtype problems are reported first, as _validate.tensor does for fixed ranks
        _v.tensor(x, name, np.float32, x.ndim)
        raise ValueError(f"{name} must have at least {min_ndim} dimensions (..., C), got shape {x.shape}")
    return _v.tensor(x, name, np.float32, getattr(x, "ndim", min_ndim), finite=True)


def _positive_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return int(v)


def _pool_padding(v) -> tuple[int, int]:
    """Symmetric pooling padding: an int or (vertical, horizontal), like PyTorch's pool layers."""
    if not isinstance(v, (int, np.integer)):
        try:
            pair = tuple(v)
        except TypeError:
            pair = ()
        if len(pair) != 2:
            raise ValueError(f"padding must be an int >= 0 or (vertical, horizontal), got {v!r}")
    top, _, left, _ = _v.padding4(v)
    return top, left


def _pooled_size(size: int, k: int, s: int, p: int, ceil_mode: bool, what: str) -> int:
    """PyTorch's pooling output length (pooling_output_shape), dilation 1."""
    out = _v.output_size(size, k, s, p, p, what)
    if ceil_mode and (size + 2 * p - k) % s:
        out += 1
        # PyTorch drops a last window that would start in the right padding: it would hold no input
        if (out - 1) * s >= size + p:
            out -= 1
    return out


def _pool_setup(x, kernel, stride, padding, ceil_mode, what):
    x = _v.tensor(x, "x", np.float32, 4, finite=True)
    kh, kw = _v.positive_pair(kernel, "kernel")
    sh, sw = _v.positive_pair((kh, kw) if stride is None else stride, "stride")
    ph, pw = _pool_padding(padding)
    if 2 * ph > kh or 2 * pw > kw:
        # PyTorch rejects this too; beyond it a window could lie entirely in the padding
        raise ValueError(f"{what}: padding ({ph}, {pw}) must be at most half the kernel ({kh}, {kw})")
    _, h, w, _ = x.shape
    ho = _pooled_size(h, kh, sh, ph, bool(ceil_mode), f"{what} (height)")
    wo = _pooled_size(w, kw, sw, pw, bool(ceil_mode), f"{what} (width)")
    return x, (kh, kw), (sh, sw), (ph, pw), (ho, wo)


# ---- layers -------------------------------------------------------------------------------------


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1, scale=None, relu=False) -> np.ndarray:
    """2-D convolution (cross-correlation) of NHWC ``x`` with a PyTorch-layout weight
    (O, C/groups, kh, kw), zero padding, floor output size: torch.nn.functional.conv2d semantics.
    ``padding`` is an int, (vertical, horizontal) or (top, bottom, left, right). ``scale`` (per
    output channel) multiplies the sums before ``bias`` is added: a folded BatchNorm; ``relu``
    applies max(., 0) last. Returns (N, Ho, Wo, O)."""
    run, out = bind_conv2d(x, weight, bias, stride, padding, groups, scale, relu)
    run()
    return out


def bind_conv2d(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    groups=1,
    scale=None,
    relu=False,
    out=None,
    packed=None,
    pack_bias=None,
    pack_zero_to="one",
):
    """`conv2d` checked once: (run, out), run() recomputing into out from x's current values.

    `packed`: also write the next binary layer's input, pack_signs(out, pack_bias,
    zero_to=pack_zero_to), into this uint64 (N, Ho, Wo, words) array from each output row while it
    is in cache (groups=1 only)."""
    x = _v.tensor(x, "x", np.float32, 4, finite=True)
    weight = _v.tensor(weight, "weight", np.float32, 4, finite=True)
    n, h, w, c = x.shape
    o, cg, kh, kw = weight.shape
    groups = _positive_int(groups, "groups")
    if c % groups or o % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({c}) and output channels ({o})")
    if cg * groups != c:
        raise ValueError(
            f"weight shape {weight.shape} does not fit x with {c} channels and groups={groups}: "
            f"expected (O, {c // groups}, kh, kw)"
        )
    if o == 0 or kh == 0 or kw == 0:
        raise ValueError(f"weight shape {weight.shape} has an empty dimension")
    bias = _v.channel_vector(bias, "bias", o)
    scale = _v.channel_vector(scale, "scale", o)
    sh, sw = _v.positive_pair(stride, "stride")
    pt, pb, pl, pr = _v.padding4(padding)
    ho = _v.output_size(h, kh, sh, pt, pb, "conv2d (height)")
    wo = _v.output_size(w, kw, sw, pl, pr, "conv2d (width)")
    out = _v.output(out, (n, ho, wo, o), np.float32)
    if packed is not None:
        packed = _v.tensor(packed, "packed", np.uint64, 4)
        if packed.shape != (n, ho, wo, (o + 63) // 64) or groups != 1:
            raise ValueError(
                f"packed must be the ({n}, {ho}, {wo}, {(o + 63) // 64}) signs of an output without "
                f"groups, got {packed.shape} with groups={groups}"
            )
        packed = packed.reshape(-1, packed.shape[3])
        pack_bias = _v.channel_vector(pack_bias, "pack_bias", o)
    pack_mode = zero_to_code(pack_zero_to, "pack_zero_to")
    if n == 0:
        return (lambda: None), out
    if groups == 1:
        hwio = np.zeros((kh, kw, c, _core.conv2d_padded_outputs(o)), np.float32)  # the kernel's layout
        hwio[..., :o] = weight.transpose(2, 3, 1, 0)
        geometry = dict(
            n=n, h=h, w=w, c=c, o=o, kh=kh, kw=kw, sh=sh, sw=sw, pad_t=pt, pad_l=pl, ho=ho, wo=wo, relu=int(bool(relu))
        )
        return functools.partial(_core.conv2d, geometry, x, hwio, scale, bias, out, packed, pack_bias, pack_mode), out

    def grouped():
        # im2col with (kh, kw, C/groups) reduction order: the copy reads runs of channels, which
        # are contiguous in NHWC; one batched matmul covers all groups
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        win = sliding_window_view(xp, (kh, kw), axis=(1, 2))
        win = win[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw]  # (N, Ho, Wo, C, kh, kw) view
        win = win.reshape(n, ho, wo, groups, cg, kh, kw)
        cols = win.transpose(3, 0, 1, 2, 5, 6, 4).reshape(groups, n * ho * wo, kh * kw * cg)
        wmat = weight.reshape(groups, o // groups, cg, kh, kw).transpose(0, 3, 4, 2, 1)
        with blas_single_threaded():
            acc = np.matmul(cols, wmat.reshape(groups, kh * kw * cg, o // groups)).transpose(1, 0, 2)
        out.reshape(n * ho * wo, groups, o // groups)[...] = acc
        if scale is not None:
            np.multiply(out, scale, out=out)
        if bias is not None:
            np.add(out, bias, out=out)
        if relu:
            _relu_inplace(out)

    return grouped, out


def dense(x, weight, bias=None) -> np.ndarray:
    """Fully connected layer like torch.nn.Linear: x (N, I), weight (O, I) -> x @ weight.T + bias.
    weight may be DenseWeights made from them, which lays them out for the kernel once instead of
    on every call."""
    run, out = bind_dense(x, weight, bias)
    run()
    return out


class DenseWeights:
    """A dense layer's (O, I) float weights checked once; the kernel reads them as they are
    (row-major, csrc/float_ops.h), so a model's layer holds no second copy."""

    def __init__(self, weight):
        self.weight = _v.tensor(weight, "weight", np.float32, 2, finite=True)
        self.shape = self.weight.shape


def bind_dense(x, weight, bias=None, out=None):
    """`dense` checked once: (run, out). weight: (O, I) floats, or DenseWeights made from them
    (a model's layer lays its weights out once)."""
    x = _v.tensor(x, "x", np.float32, 2, finite=True)
    weights = weight if isinstance(weight, DenseWeights) else DenseWeights(weight)
    o, features = weights.shape
    if features != x.shape[1]:
        raise ValueError(
            f"weight shape {weights.shape} does not fit x with {x.shape[1]} features: expected (O, {x.shape[1]})"
        )
    bias = _v.channel_vector(bias, "bias", o)
    out = _v.output(out, (x.shape[0], o), np.float32)
    if out.size == 0 or x.shape[1] == 0:

        def empty():
            out[...] = 0 if bias is None else bias

        return empty, out
    return functools.partial(_core.dense, x, weights.weight, bias, out), out


def batch_norm(x, mean, var, gamma=None, beta=None, eps=1e-5) -> np.ndarray:
    """Inference batch norm over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta, with
    gamma = 1 and beta = 0 when omitted."""
    x = _activation(x)
    c = x.shape[-1]
    if mean is None or var is None:
        raise ValueError("batch_norm needs the running mean and var (got None)")
    mean = _v.channel_vector(mean, "mean", c)
    var = _v.channel_vector(var, "var", c)
    gamma = _v.channel_vector(gamma, "gamma", c)
    beta = _v.channel_vector(beta, "beta", c)
    if (
        isinstance(eps, bool)
        or not isinstance(eps, (int, float, np.integer, np.floating))
        or not (np.isfinite(eps) and eps >= 0)
    ):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    denom = var.astype(np.float64) + float(eps)
    if (denom <= 0).any():
        raise ValueError("var + eps must be positive in every channel")
    # one per-channel factor in float64, rounded once: the same value as PyTorch's float math up to
    # an ulp, and two passes over x instead of four
    scale = 1.0 / np.sqrt(denom)
    if gamma is not None:
        scale = scale * gamma
    out = x - mean
    out *= scale.astype(np.float32)
    if beta is not None:
        out += beta
    return out


def prelu(x, slope) -> np.ndarray:
    """Per-channel PReLU over the last axis: x where x >= 0, slope * x elsewhere."""
    x = _activation(x)
    slope = _v.channel_vector(slope, "slope", x.shape[-1])
    return np.where(x >= 0, x, x * slope)


def rprelu(x, gamma, slope, zeta) -> np.ndarray:
    """ReActNet RPReLU, per channel (last axis): prelu(x - gamma, slope) + zeta."""
    x = _activation(x)
    c = x.shape[-1]
    gamma = _v.channel_vector(gamma, "gamma", c)
    slope = _v.channel_vector(slope, "slope", c)
    zeta = _v.channel_vector(zeta, "zeta", c)
    if gamma is None or slope is None or zeta is None:
        raise ValueError("rprelu needs gamma, slope and zeta (got None)")
    shifted = x - gamma
    out = np.where(shifted >= 0, shifted, shifted * slope)
    out += zeta
    return out


def _relu_inplace(x):
    """x = 0 where x < 0, in place: PyTorch's relu, which keeps -0.0 and NaN as they are (the C
    kernels' `v < 0 ? 0 : v`). Not np.maximum, whose sign of max(-0.0, 0) depends on the NumPy
    version and the CPU (+0.0 with NumPy 2 on x86, -0.0 with 1.24 on armhf)."""
    np.copyto(x, np.float32(0), where=x < 0)
    return x


def relu(x) -> np.ndarray:
    """max(x, 0), elementwise, as PyTorch: relu(-0.0) is -0.0 and NaN stays NaN."""
    x = _activation(x)
    return _relu_inplace(x.copy())


def clamp(x, lo=None, hi=None) -> np.ndarray:
    """min(max(x, lo), hi) elementwise (PyTorch's clamp / hardtanh); either bound may be None."""
    x = _activation(x)
    for name, bound in (("lo", lo), ("hi", hi)):
        if bound is not None and not np.isfinite(bound):
            raise ValueError(f"{name} must be finite or None, got {bound!r}")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"lo ({lo}) must not exceed hi ({hi})")
    # x < lo -> lo, x > hi -> hi, else x itself (-0.0 and NaN included), as PyTorch's clamp; np.clip's
    # sign of an equal zero varies with the NumPy version and the bounds given.
    out = x.copy()
    if lo is not None:
        np.copyto(out, np.float32(lo), where=x < np.float32(lo))
    if hi is not None:
        np.copyto(out, np.float32(hi), where=out > np.float32(hi))
    return out


SIGN_ZERO = ("zero", "one", "minus_one")


def sign(x, bias=None, zero_to: str = "zero") -> np.ndarray:
    """sign(x + bias) as float32 +-1, per channel bias over the last axis. zero_to says what an exact
    zero gives: "zero" is torch.sign (0), "one" is torch.where(v >= 0, 1, -1), "minus_one"
    torch.where(v > 0, 1, -1). -0.0 counts as zero."""
    x = _activation(x)
    if zero_to not in SIGN_ZERO:
        raise ValueError(f"zero_to must be one of {SIGN_ZERO}, got {zero_to!r}")
    bias = _v.channel_vector(bias, "bias", x.shape[-1])
    v = x + bias if bias is not None else x
    out = np.sign(v).astype(np.float32)
    if zero_to != "zero":
        out[v == 0] = 1.0 if zero_to == "one" else -1.0
    return out


def softmax(x) -> np.ndarray:
    """Softmax over the last axis, as PyTorch computes it (shifted by the maximum)."""
    x = _activation(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x) -> np.ndarray:
    """log(softmax(x)) over the last axis: x - max - log(sum(exp(x - max)))."""
    x = _activation(x)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def add(a, b) -> np.ndarray:
    """Elementwise a + b of two activations of the same shape (residual shortcut)."""
    a = _activation(a, "a")
    b = _activation(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return a + b


def concat(xs) -> np.ndarray:
    """Concatenates a list / tuple of activations along the channel (last) axis; all other
    dimensions must agree."""
    if not isinstance(xs, (list, tuple)):
        raise TypeError(f"xs must be a list or tuple of numpy arrays, got {type(xs).__name__}")
    if not xs:
        raise ValueError("xs must hold at least one array")
    xs = [_activation(t, f"xs[{i}]") for i, t in enumerate(xs)]
    lead = xs[0].shape[:-1]
    for i, t in enumerate(xs[1:], 1):
        if t.shape[:-1] != lead:
            raise ValueError(f"xs[{i}] has shape {t.shape}; all arrays must share the leading dimensions {lead}")
    return np.concatenate(xs, axis=-1)


def avg_pool2d(x, kernel, stride=None, padding=0, count_include_pad=True, ceil_mode=False) -> np.ndarray:
    """Average pooling of NHWC ``x`` with torch.nn.functional.avg_pool2d semantics: stride defaults
    to kernel, symmetric zero padding (int or pair, at most half the kernel). The divisor counts the
    padded zeros when ``count_include_pad`` but never the positions past the padding that
    ``ceil_mode`` windows reach; without it, only positions inside the input count."""
    run, out = bind_pool2d("avg", x, kernel, stride, padding, count_include_pad, ceil_mode)
    run()
    return out


def max_pool2d(x, kernel, stride=None, padding=0, ceil_mode=False) -> np.ndarray:
    """Max pooling of NHWC ``x`` with torch.nn.functional.max_pool2d semantics (dilation 1): stride
    defaults to kernel, symmetric padding (at most half the kernel) that never wins."""
    run, out = bind_pool2d("max", x, kernel, stride, padding, ceil_mode=ceil_mode)
    run()
    return out


def bind_pool2d(kind, x, kernel, stride=None, padding=0, count_include_pad=True, ceil_mode=False, out=None):
    """`avg_pool2d` (kind 'avg') or `max_pool2d` ('max') checked once: (run, out)."""
    what = f"{kind}_pool2d"
    x, (kh, kw), (sh, sw), (ph, pw), (ho, wo) = _pool_setup(x, kernel, stride, padding, ceil_mode, what)
    n, h, w, c = x.shape
    out = _v.output(out, (n, ho, wo, c), np.float32)

    def windows(size, k, s, p, n_out):
        """Each window's first and past-the-end input index, clipped to the input, and its
        divisor: PyTorch counts padding but not the positions past it that ceil_mode reaches."""
        start = np.arange(n_out) * s - p
        end = np.minimum(start + k, size + p)
        lo, hi = np.maximum(start, 0), np.minimum(end, size)
        return lo.astype(np.int32), hi.astype(np.int32), (end - start if count_include_pad else hi - lo)

    y0, y1, dy = windows(h, kh, sh, ph, ho)
    x0, x1, dx = windows(w, kw, sw, pw, wo)
    divisor = np.ascontiguousarray(np.outer(dy, dx), dtype=np.float32).reshape(-1)
    if n == 0 or c == 0:
        return (lambda: None), out
    return functools.partial(_core.pool2d, kind == "max", x, y0, y1, x0, x1, divisor, out), out


def nchw_to_nhwc(x) -> np.ndarray:
    """A float32 (N, C, H, W) batch, PyTorch's layout, as a new (N, H, W, C) one, the kernels'."""
    x = _v.tensor(x, "x", np.float32, 4)
    out = np.empty((x.shape[0], x.shape[2], x.shape[3], x.shape[1]), np.float32)
    _core.nchw_to_nhwc(x, out)
    return out


def bind_conv2d_max_pool(conv, pool):
    """One call for a conv2d bound by `bind_conv2d` and the max pooling of its output bound by
    `bind_pool2d`: the conv output is computed a few rows at a time and pooled while they are in
    cache. The same values as calling conv, then pool; conv's output array is not written. The
    conv has no groups and packs no signs."""
    if not (
        isinstance(conv, functools.partial)
        and conv.func is _core.conv2d
        and isinstance(pool, functools.partial)
        and pool.func is _core.pool2d
    ):
        raise TypeError("bind_conv2d_max_pool takes a conv2d and a max pooling bound by bind_conv2d and bind_pool2d")
    geometry, x, hwio, scale, bias, conv_out, packed, _, _ = conv.args
    is_max, pool_in, y0, y1, x0, x1, _, out = pool.args
    if not is_max or packed is not None or pool_in.shape != conv_out.shape or not _v.same_memory(pool_in, conv_out):
        raise ValueError(
            "bind_conv2d_max_pool: the pooling must be a max pooling of the conv's output, "
            "and the conv must not pack signs"
        )
    return functools.partial(_core.conv2d_max_pool, geometry, x, hwio, scale, bias, y0, y1, x0, x1, out)


def global_avg_pool(x) -> np.ndarray:
    """Mean over H and W: (N, H, W, C) -> (N, C), summed in float64 (a float32 sum over a large
    feature map drifts)."""
    run, out = bind_global_avg_pool(x)
    run()
    return out


def bind_global_avg_pool(x, out=None):
    """`global_avg_pool` checked once: (run, out)."""
    x = _v.tensor(x, "x", np.float32, 4, finite=True)
    n, h, w, c = x.shape
    if h * w == 0:
        raise ValueError(f"x has no pixels to average, shape {x.shape}")
    out = _v.output(out, (n, c), np.float32)
    if out.size == 0:
        return (lambda: None), out
    return functools.partial(_core.global_avg_pool, x.reshape(n, h * w, c), out), out

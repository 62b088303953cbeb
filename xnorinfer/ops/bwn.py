"""Binary-weight layers (BWN): float activations, weights alpha[o] * sign(W).

The weights stay 1 bit each: a layer keeps its packed words and the same bits re-laid for its
kernel (lanes: 16 output channels' 4-bit codes side by side) plus alpha, and the C kernels
(csrc/bwn.h) read the bits directly: both layers look up each group of 4 weight bits in a table of
its 4 inputs' signed sums, built once and shared by every output channel. alpha (with a folded
BatchNorm) and the bias are applied in the kernels' epilogue."""

from __future__ import annotations

import functools

import numpy as np

from .. import _core
from . import _validate as check
from .binary import _tail_bits_set, pack_signs, packed_words, unpack_signs


def _alpha(alpha, channels):
    alpha = check.channel_vector(alpha, "alpha", channels)
    return np.ones(channels, np.float32) if alpha is None else alpha


class BWNConvWeights:
    """alpha[o] * sign(W) for a convolution; `packed` is uint64 (O, kh, kw, words), see pack_signs."""

    def __init__(self, packed: np.ndarray, alpha, in_channels: int, groups: int = 1):
        packed = check.tensor(packed, "packed weights", np.uint64, 4)
        if groups < 1 or in_channels < 1 or in_channels % groups or packed.shape[0] % groups:
            raise ValueError(
                f"groups ({groups}) must divide in_channels ({in_channels}) and out_channels ({packed.shape[0]})"
            )
        o, kh, kw, words = packed.shape
        if 0 in packed.shape:
            raise ValueError(f"packed weights have an empty dimension: {packed.shape}")
        cg = in_channels // groups
        if words != packed_words(cg):
            raise ValueError(f"{cg} input channels per group pack into {packed_words(cg)} words, weights have {words}")
        self.packed = packed
        self.alpha = _alpha(alpha, o)
        self.in_channels, self.out_channels, self.groups = in_channels, o, groups
        self.kernel_size = (kh, kw)
        # the kernel's layout of the same bits: 16 output channels' codes of 4 bits side by side
        self._lanes = np.empty(_core.bwn_conv_lane_words(in_channels, groups, o, kh, kw), np.uint32)
        _core.bwn_conv_lanes(packed, in_channels, groups, self._lanes)

    @property
    def weight(self) -> np.ndarray:
        """alpha[o] * sign(W) as float32 (O, C / groups, kh, kw), computed on each access: a
        convenience for inspection, not used by inference (which reads the bits)."""
        signs = unpack_signs(self.packed, self.in_channels // self.groups)
        return np.ascontiguousarray((signs * self.alpha[:, None, None, None]).transpose(0, 3, 1, 2))

    @classmethod
    def from_float(cls, weight: np.ndarray, groups: int = 1, alpha=None) -> BWNConvWeights:
        """From float weights (O, C / groups, kh, kw); alpha defaults to mean(|W[o]|)."""
        weight = check.tensor(weight, "weight", np.float32, 4, finite=True)
        if alpha is None:
            alpha = np.abs(weight).mean(axis=(1, 2, 3))
        packed = pack_signs(np.ascontiguousarray(weight.transpose(0, 2, 3, 1)))
        return cls(packed, alpha, weight.shape[1] * groups, groups)


class BWNDenseWeights:
    """alpha[o] * sign(W) for a dense layer; `packed` is uint64 (out_features, words)."""

    def __init__(self, packed: np.ndarray, alpha, in_features: int):
        packed = check.tensor(packed, "packed weights", np.uint64, 2)
        if in_features < 1 or packed.shape[1] != packed_words(in_features):
            raise ValueError(
                f"{in_features} input features pack into {packed_words(max(in_features, 1))} words, "
                f"weights have {packed.shape[1]}"
            )
        if _tail_bits_set(packed, in_features, 1):
            raise ValueError("packed weights have bits set past the last input feature")
        self.packed = packed
        self.alpha = _alpha(alpha, packed.shape[0])
        self.in_channels, self.out_channels = in_features, packed.shape[0]
        # the kernel's layout of the same bits: 16 outputs' codes of 4 bits side by side
        self._lanes = np.empty(_core.bwn_dense_lane_words(in_features, packed.shape[0]), np.uint32)
        _core.bwn_dense_lanes(packed, in_features, self._lanes)

    @property
    def weight(self) -> np.ndarray:
        """alpha[o] * sign(W) as float32 (O, I), computed on each access; not used by inference."""
        return np.ascontiguousarray(unpack_signs(self.packed, self.in_channels) * self.alpha[:, None])

    @classmethod
    def from_float(cls, weight: np.ndarray, alpha=None) -> BWNDenseWeights:
        """From float weights (out_features, in_features); alpha defaults to mean(|W[o]|)."""
        weight = check.tensor(weight, "weight", np.float32, 2, finite=True)
        if alpha is None:
            alpha = np.abs(weight).mean(axis=1)
        return cls(pack_signs(weight), alpha, weight.shape[1])


def bwn_conv2d(
    x: np.ndarray, weights: BWNConvWeights, bias=None, stride=1, padding=0, relu=False, in_scale=None, in_shift=None
) -> np.ndarray:
    """Float convolution of NHWC x with binary weights (zero padding, like PyTorch), then
    max(., 0) if relu (PyTorch's relu: -0.0 stays -0.0). With in_scale and in_shift (one value per
    input channel) the conv reads in_scale * x + in_shift instead of x, padding still 0: a
    BatchNorm before the conv, folded."""
    run, out = bind_bwn_conv2d(x, weights, bias, stride, padding, relu=relu, in_scale=in_scale, in_shift=in_shift)
    run()
    return out


def bind_bwn_conv2d(
    x, weights: BWNConvWeights, bias=None, stride=1, padding=0, out=None, relu=False, in_scale=None, in_shift=None
):
    """`bwn_conv2d` checked once: (run, out), run() recomputing into out from x's current values."""
    if not isinstance(weights, BWNConvWeights):
        raise TypeError(f"weights must be BWNConvWeights, got {type(weights).__name__}")
    x = check.tensor(x, "x", np.float32, 4, finite=True)
    n, h, w, c = x.shape
    if c != weights.in_channels:
        raise ValueError(f"x has {c} channels, the weights expect {weights.in_channels}")
    o, (kh, kw) = weights.out_channels, weights.kernel_size
    bias = check.channel_vector(bias, "bias", o)
    in_scale = check.channel_vector(in_scale, "in_scale", c)
    in_shift = check.channel_vector(in_shift, "in_shift", c)
    if (in_scale is None) != (in_shift is None):
        raise ValueError("in_scale and in_shift go together")
    sh, sw = check.positive_pair(stride, "stride")
    pt, pb, pl, pr = check.padding4(padding)
    ho = check.output_size(h, kh, sh, pt, pb, "bwn_conv2d (height)")
    wo = check.output_size(w, kw, sw, pl, pr, "bwn_conv2d (width)")
    out = check.output(out, (n, ho, wo, o), np.float32)
    if out.size == 0:
        return (lambda: None), out
    geometry = dict(
        n=n, h=h, w=w, c=c, groups=weights.groups, o=o, kh=kh, kw=kw, sh=sh, sw=sw, pad_t=pt, pad_l=pl, ho=ho, wo=wo
    )
    run = functools.partial(
        _core.bwn_conv2d, geometry, x, weights._lanes, weights.alpha, bias, out, bool(relu), in_scale, in_shift
    )
    return run, out


def bwn_dense(x: np.ndarray, weights: BWNDenseWeights, bias=None) -> np.ndarray:
    """Float dense layer (N, I) -> (N, O) with binary weights."""
    run, out = bind_bwn_dense(x, weights, bias)
    run()
    return out


def bind_bwn_dense(x, weights: BWNDenseWeights, bias=None, out=None):
    """`bwn_dense` checked once: (run, out)."""
    if not isinstance(weights, BWNDenseWeights):
        raise TypeError(f"weights must be BWNDenseWeights, got {type(weights).__name__}")
    x = check.tensor(x, "x", np.float32, 2, finite=True)
    if x.shape[1] != weights.in_channels:
        raise ValueError(f"x has {x.shape[1]} features, the weights expect {weights.in_channels}")
    bias = check.channel_vector(bias, "bias", weights.out_channels)
    out = check.output(out, (x.shape[0], weights.out_channels), np.float32)
    if out.size == 0:
        return (lambda: None), out
    return functools.partial(_core.bwn_dense, x, weights._lanes, weights.alpha, bias, out), out

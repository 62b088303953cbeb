"""Binary-weight layers (BWN): float activations, weights alpha[o] * sign(W).

Weights are stored 1 bit each plus one float per output channel; they are expanded to float once,
when the layer is built, so that inference runs on NumPy's float GEMM."""

from __future__ import annotations

import numpy as np

from . import _validate as check
from .binary import pack_signs, unpack_signs
from .float_ops import conv2d, dense


class BWNConvWeights:
    """alpha[o] * sign(W) for a convolution; `packed` is uint64 (O, kh, kw, words), see pack_signs."""

    def __init__(self, packed: np.ndarray, alpha, in_channels: int, groups: int = 1):
        packed = check.tensor(packed, "packed weights", np.uint64, 4)
        if groups < 1 or in_channels % groups or packed.shape[0] % groups:
            raise ValueError(f"groups ({groups}) must divide in_channels ({in_channels}) and "
                             f"out_channels ({packed.shape[0]})")
        self.packed = packed
        self.alpha = check.channel_vector(alpha, "alpha", packed.shape[0])
        self.in_channels, self.out_channels, self.groups = in_channels, packed.shape[0], groups
        self.kernel_size = packed.shape[1:3]
        signs = unpack_signs(packed, in_channels // groups)  # raises if the words do not fit
        self.weight = np.ascontiguousarray(
            (signs * self.alpha[:, None, None, None]).transpose(0, 3, 1, 2))

    @classmethod
    def from_float(cls, weight: np.ndarray, groups: int = 1, alpha=None) -> "BWNConvWeights":
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
        self.packed = packed
        self.alpha = check.channel_vector(alpha, "alpha", packed.shape[0])
        self.in_channels, self.out_channels = in_features, packed.shape[0]
        self.weight = np.ascontiguousarray(unpack_signs(packed, in_features) * self.alpha[:, None])

    @classmethod
    def from_float(cls, weight: np.ndarray, alpha=None) -> "BWNDenseWeights":
        """From float weights (out_features, in_features); alpha defaults to mean(|W[o]|)."""
        weight = check.tensor(weight, "weight", np.float32, 2, finite=True)
        if alpha is None:
            alpha = np.abs(weight).mean(axis=1)
        return cls(pack_signs(weight), alpha, weight.shape[1])


def bwn_conv2d(x: np.ndarray, weights: BWNConvWeights, bias=None, stride=1, padding=0) -> np.ndarray:
    """Float convolution of NHWC x with binary weights (zero padding, like PyTorch)."""
    if not isinstance(weights, BWNConvWeights):
        raise TypeError(f"weights must be BWNConvWeights, got {type(weights).__name__}")
    return conv2d(x, weights.weight, bias, stride=stride, padding=padding, groups=weights.groups)


def bwn_dense(x: np.ndarray, weights: BWNDenseWeights, bias=None) -> np.ndarray:
    """Float dense layer (N, I) -> (N, O) with binary weights."""
    if not isinstance(weights, BWNDenseWeights):
        raise TypeError(f"weights must be BWNDenseWeights, got {type(weights).__name__}")
    return dense(x, weights.weight, bias)

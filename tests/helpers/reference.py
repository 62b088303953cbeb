"""Plain NumPy float references, written independently of the kernels: explicit loops over output
positions on a padded +-1 float tensor, no bit tricks."""

from __future__ import annotations

import numpy as np


def sign_pm1(x, bias=None, zero_to="one"):
    """The engine's binarization: -1 where x + bias < 0, else +1 (so sign(0) = +1); with
    zero_to="minus_one", -1 where x + bias <= 0. The sum is taken in float64, so this is the sign of
    the exact sum (rounding keeps a sign, and a float64 sum of two float32 values is 0 only when the
    exact one is): independent of the float32 sum whose sign the kernels take."""
    v = np.asarray(x, np.float64)
    if bias is not None:
        v = v + np.asarray(bias, np.float32).astype(np.float64)
    negative = v <= 0 if zero_to == "minus_one" else v < 0
    return np.where(negative, -1.0, 1.0).astype(np.float32)


def pad_nhwc(x, pads, value):
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def conv2d_nhwc(x, weight, stride, pads, groups=1, pad_value=0.0):
    """Direct convolution: x (N, H, W, C) float64, weight (O, C/groups, kh, kw) -> (N, Ho, Wo, O)."""
    x = pad_nhwc(np.asarray(x, np.float64), pads, pad_value)
    weight = np.asarray(weight, np.float64)
    n, hp, wp, c = x.shape
    o, cg, kh, kw = weight.shape
    sh, sw = stride
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    og = o // groups
    out = np.zeros((n, ho, wo, o))
    for g in range(groups):
        wg = weight[g * og : (g + 1) * og]
        for i in range(ho):
            for j in range(wo):
                patch = x[:, i * sh : i * sh + kh, j * sw : j * sw + kw, g * cg : (g + 1) * cg]
                out[:, i, j, g * og : (g + 1) * og] = np.einsum("nhwc,ochw->no", patch, wg)
    return out


def epilogue(dot, scale=None, bias=None, residual=None, rprelu=None):
    """act(scale * dot + bias + residual) per output channel (last axis)."""
    v = np.asarray(dot, np.float64)
    if scale is not None:
        v = v * scale
    if bias is not None:
        v = v + bias
    if residual is not None:
        v = v + residual
    if rprelu is not None:
        gamma, slope, zeta = (np.asarray(p, np.float64) for p in rprelu)
        v = v - gamma
        v = np.where(v >= 0, v, v * slope) + zeta
    return v

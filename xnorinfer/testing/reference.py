"""The oracle: a float64 NumPy interpreter of a model's stored graph (before any fusion), with
PyTorch's semantics. It reads only the graph's nodes and parameters and shares no code with the
engine's kernels or passes: a bug there cannot hide here too.

Each op is one entry of REFERENCE_OPS, keyed by op name. A new op needs one function

    @reference_op("channel_shuffle", terms=lambda node, shapes: 0)
    def _channel_shuffle(node, xs, magnitude):
        ...  # xs: float64 NHWC inputs (batch first); return the float64 output

(channel_shuffle is below, with the importer's other ops.)

`terms(node, input_shapes)` is the number of terms the op sums per output value (0 for ops that
only move or select values); it feeds the rounding bound of the near-tie rule. With magnitude=True
the inputs are upper bounds of |value| and the op must return an upper bound of the sum of the
absolute values of its terms (parameters taken as |p|, subtractions as additions): compare uses it
to bound how far a float32 evaluation, in any order, can land from the float64 value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..graph import Graph, Node

LAYOUTS = ("NCHW", "NHWC")
CHUNK = 32  # images interpreted at once by reference_predict: bounds the float64 im2col buffers


@dataclass(frozen=True)
class ReferenceOp:
    run: Callable  # run(node, inputs, magnitude) -> float64 array
    terms: Callable  # terms(node, input shapes) -> summed terms per output value
    sign_point: bool = False  # outputs +-1 decided by a threshold (the near-tie rule applies)


REFERENCE_OPS: dict[str, ReferenceOp] = {}


def reference_op(name: str, terms=lambda node, shapes: 0, sign_point: bool = False):
    """Register the float64 semantics of op `name` (see the module docstring)."""

    def register(run):
        REFERENCE_OPS[name] = ReferenceOp(run, terms, sign_point)
        return run

    return register


# ---- running a graph ----------------------------------------------------------------------------


def to_nhwc(x, layout: str = "NCHW") -> np.ndarray:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be a 4-D batch ({layout}), got shape {x.shape}")
    return x.transpose(0, 2, 3, 1) if layout == "NCHW" else x


def from_nhwc(t: np.ndarray, layout: str) -> np.ndarray:
    """A tensor of the graph (NHWC maps, (N, C) vectors) in the caller's layout."""
    return t.transpose(0, 3, 1, 2) if t.ndim == 4 and layout == "NCHW" else t


def _graph(model) -> Graph:
    return model.graph if hasattr(model, "graph") else model


def run_graph(
    graph: Graph, x_nhwc: np.ndarray, overrides: dict | None = None, magnitude: bool = False
) -> dict[str, np.ndarray]:
    """{tensor name: float64 NHWC value} of every tensor, the input included. `overrides` replaces
    what a node computes by the given values (downstream nodes read those). With magnitude=True,
    x and every value are upper bounds of |value| (see the module docstring)."""
    values = {graph.input: np.asarray(x_nhwc, np.float64)}
    overrides = overrides or {}
    for node in graph.nodes:
        op = REFERENCE_OPS.get(node.op)
        if op is None:
            raise NotImplementedError(
                f"node {node.name!r}: the reference interpreter has no op {node.op!r} "
                "(add it to xnorinfer.testing.reference.REFERENCE_OPS)"
            )
        out = overrides.get(node.output)
        if out is None:
            out = op.run(node, [values[i] for i in node.inputs], magnitude)
        values[node.output] = np.asarray(out, np.float64)
    return values


def reference_trace(model, x, *, layout: str = "NCHW") -> dict[str, np.ndarray]:
    """{node name: float64 output} of every node of `model`'s stored graph for the float batch x,
    maps in `layout` (like Model.trace), sign outputs as +-1."""
    graph = _graph(model)
    values = run_graph(graph, to_nhwc(x, layout))
    return {node.name: from_nhwc(values[node.output], layout) for node in graph.nodes}


def reference_predict(model, x, *, layout: str = "NCHW") -> np.ndarray:
    """The float64 output of `model`'s stored graph for the float batch x (N, C, H, W), or
    (N, H, W, C) with layout="NHWC": what the engine's predict should return, up to float32
    rounding and sign decisions at near ties."""
    graph = _graph(model)
    x = to_nhwc(x, layout)
    parts = [run_graph(graph, x[i : i + CHUNK])[graph.output] for i in range(0, max(len(x), 1), CHUNK)]
    return np.concatenate(parts)


# ---- helpers ------------------------------------------------------------------------------------


def _p(node: Node, key: str, magnitude: bool, default=None):
    """Parameter `key` as float64 (its absolute value in magnitude runs), or `default`."""
    p = node.params.get(key)
    if p is None:
        return default
    p = p.astype(np.float64)
    return np.abs(p) if magnitude else p


def _signs_from_bits(words: np.ndarray, channels: int) -> np.ndarray:
    """+-1 float64 (..., channels) from packed words (..., W): channel c is bit c % 64 of word
    c // 64, a set bit is -1 (the .xnr format's layout, decoded here independently)."""
    shifts = np.arange(64, dtype=np.uint64)
    bits = (words[..., None] >> shifts) & np.uint64(1)
    bits = bits.reshape(words.shape[:-1] + (-1,))[..., :channels]
    return 1.0 - 2.0 * bits.astype(np.float64)


def _pad(x, pads, value):
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _correlate(x, weight, stride, groups):
    """PyTorch's conv2d (cross-correlation, no padding) of NHWC x with an OIHW weight."""
    o, cg, kh, kw = weight.shape
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, :: stride[0], :: stride[1]]  # N,Ho,Wo,C,kh,kw
    og = o // groups
    parts = [
        np.tensordot(
            windows[..., g * cg : (g + 1) * cg, :, :], weight[g * og : (g + 1) * og], axes=([3, 4, 5], [1, 2, 3])
        )
        for g in range(groups)
    ]
    return np.concatenate(parts, axis=-1)


def _channelwise(y, node, magnitude, scale="scale", bias="bias"):
    s, b = _p(node, scale, magnitude), _p(node, bias, magnitude)
    if s is not None:
        y = y * s
    if b is not None:
        y = y + b
    return y


def _prelu(x, slope, magnitude):
    if magnitude:  # |prelu(v)| <= |v| * max(1, |slope|)
        return x * np.maximum(1.0, slope)
    return np.where(x >= 0, x, x * slope)


def _rprelu(y, node, magnitude):
    """ReActNet's RPReLU epilogue, prelu(y - gamma, slope) + zeta, when the node has one."""
    if "rp_gamma" not in node.params:
        return y
    gamma, slope, zeta = (_p(node, k, magnitude) for k in ("rp_gamma", "rp_slope", "rp_zeta"))
    shifted = y + gamma if magnitude else y - gamma
    return _prelu(shifted, slope, magnitude) + zeta


def _window_terms(node, shapes):
    weight = node.params.get("weight")
    if weight is not None:
        return int(np.prod(weight.shape[1:])) + 2  # products, bias, scale
    bits = node.params["weight_bits"]
    groups = node.attrs.get("groups", 1)
    per_tap = node.attrs.get("in_channels", node.attrs.get("in_features", 0)) // groups
    folded = 2 if "in_scale" in node.params else 0  # a BWN conv's input affine: a multiply, an add
    return int(np.prod(bits.shape[1:-1])) * per_tap + 2 + folded


# ---- float layers -------------------------------------------------------------------------------


@reference_op("conv2d", terms=_window_terms)
def _conv2d(node, xs, magnitude):
    a = node.attrs
    x = _pad(xs[0], a["padding"], 0.0)
    y = _correlate(x, _p(node, "weight", magnitude), a["stride"], a.get("groups", 1))
    y = _channelwise(y, node, magnitude)
    return np.maximum(y, 0.0) if a.get("relu", False) else y


@reference_op("dense", terms=lambda node, shapes: node.params["weight"].shape[1] + 1)
def _dense(node, xs, magnitude):
    return _channelwise(xs[0] @ _p(node, "weight", magnitude).T, node, magnitude, scale=None)


def _bwn_weight(node, magnitude, channels):
    signs = _signs_from_bits(node.params["weight_bits"], channels)
    alpha = _p(node, "alpha", magnitude)
    w = np.abs(signs) if magnitude else signs
    return w * alpha.reshape((-1,) + (1,) * (w.ndim - 1))


@reference_op("bwn_conv2d", terms=_window_terms)
def _bwn_conv2d(node, xs, magnitude):
    a = node.attrs
    groups = a.get("groups", 1)
    w = _bwn_weight(node, magnitude, a["in_channels"] // groups).transpose(0, 3, 1, 2)
    x = xs[0]
    if "in_scale" in node.params:  # a folded BatchNorm before the conv (padding stays 0)
        scale, shift = _p(node, "in_scale", magnitude), _p(node, "in_shift", magnitude)
        x = x * scale + shift
    y = _correlate(_pad(x, a["padding"], 0.0), w, a["stride"], groups)
    y = _channelwise(y, node, magnitude, scale=None)
    return np.maximum(y, 0.0) if a.get("relu", False) else y


@reference_op("bwn_dense", terms=lambda node, shapes: node.attrs["in_features"] + 1)
def _bwn_dense(node, xs, magnitude):
    w = _bwn_weight(node, magnitude, node.attrs["in_features"])
    return _channelwise(xs[0] @ w.T, node, magnitude, scale=None)


@reference_op("batch_norm", terms=lambda node, shapes: 4)
def _batch_norm(node, xs, magnitude):
    c = xs[0].shape[-1]
    inv_std = 1.0 / np.sqrt(node.params["var"].astype(np.float64) + node.attrs.get("eps", 1e-5))
    gamma, beta = _p(node, "gamma", magnitude, np.ones(c)), _p(node, "beta", magnitude, np.zeros(c))
    mean = _p(node, "mean", magnitude)
    centred = xs[0] + mean if magnitude else xs[0] - mean
    return centred * (inv_std * gamma) + beta


@reference_op("affine", terms=lambda node, shapes: 2)
def _affine(node, xs, magnitude):
    return _channelwise(xs[0], node, magnitude)


@reference_op("prelu", terms=lambda node, shapes: 1)
def _prelu_op(node, xs, magnitude):
    return _prelu(xs[0], _p(node, "slope", magnitude), magnitude)


@reference_op("rprelu", terms=lambda node, shapes: 3)
def _rprelu_op(node, xs, magnitude):
    return _rprelu(xs[0], node, magnitude)


@reference_op("relu")
def _relu(node, xs, magnitude):
    return np.maximum(xs[0], 0.0)


@reference_op("add", terms=lambda node, shapes: 2)
def _add(node, xs, magnitude):
    return xs[0] + xs[1]


@reference_op("concat")
def _concat(node, xs, magnitude):
    return np.concatenate(xs, axis=-1)


@reference_op("flatten")
def _flatten(node, xs, magnitude):
    x = xs[0]
    if node.attrs.get("order", "chw") == "chw":  # PyTorch flattens NCHW
        x = x.transpose(0, 3, 1, 2)
    return x.reshape(len(x), -1)


@reference_op("global_avg_pool", terms=lambda node, shapes: shapes[0][1] * shapes[0][2] + 1)
def _global_avg_pool(node, xs, magnitude):
    return xs[0].mean(axis=(1, 2))


# ---- pooling with PyTorch's output size and divisor ------------------------------------------------


def _pool_geometry(size, k, s, p, ceil_mode):
    """(outputs, extra positions past the right padding that ceil-mode windows reach)."""
    span = size + 2 * p - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # a window starting in the right padding is dropped
        out -= 1
    return out, max(0, (out - 1) * s + k - (size + 2 * p))


def _pool(node, x, fill):
    """(windows (N, Ho, Wo, C, kh, kw) over x padded with `fill`, padded 0/1 map of what counts
    for count_include_pad=True and False)."""
    a = node.attrs
    (kh, kw), (ph, pw) = a["kernel"], a.get("padding", [0, 0])
    sh, sw = a.get("stride", a["kernel"])
    ceil = a.get("ceil_mode", False)
    (ho, eh), (wo, ew) = (_pool_geometry(x.shape[1], kh, sh, ph, ceil), _pool_geometry(x.shape[2], kw, sw, pw, ceil))
    pads = (ph, ph + eh, pw, pw + ew)
    windows = sliding_window_view(_pad(x, pads, fill), (kh, kw), axis=(1, 2))[:, ::sh, ::sw][:, :ho, :wo]
    inside = _pad(np.ones((1,) + x.shape[1:3] + (1,)), pads, 0.0)
    padded = _pad(np.ones((1,) + x.shape[1:3] + (1,)), (ph, ph, pw, pw), 1.0)
    padded = np.pad(padded, ((0, 0), (0, eh), (0, ew), (0, 0)))
    count = [
        sliding_window_view(m, (kh, kw), axis=(1, 2))[:, ::sh, ::sw][:, :ho, :wo].sum(axis=(-2, -1))
        for m in (padded, inside)
    ]
    return windows, count


@reference_op("avg_pool2d", terms=lambda node, shapes: int(np.prod(node.attrs["kernel"])) + 1)
def _avg_pool2d(node, xs, magnitude):
    windows, (with_pad, without_pad) = _pool(node, xs[0], 0.0)
    divisor = with_pad if node.attrs.get("count_include_pad", True) else without_pad
    return windows.sum(axis=(-2, -1)) / divisor


@reference_op("max_pool2d")
def _max_pool2d(node, xs, magnitude):
    windows, _ = _pool(node, xs[0], -np.inf)
    return windows.max(axis=(-2, -1))


# ---- the importer's ops: signs as floats, clamps, softmax heads, layout -------------------------


@reference_op("sign", terms=lambda node, shapes: 1 + ("bias" in node.params), sign_point=True)
def _sign(node, xs, magnitude):
    if magnitude:
        return np.ones_like(xs[0])
    v = pre_sign(node, xs[0])
    zero = {"zero": 0.0, "one": 1.0, "minus_one": -1.0}[node.attrs.get("zero_to", "zero")]
    return np.where(v > 0, 1.0, np.where(v < 0, -1.0, zero))


@reference_op("clamp")
def _clamp(node, xs, magnitude):
    lo, hi = node.attrs.get("min"), node.attrs.get("max")
    if magnitude:  # |clamp(x)| <= |x| when the range holds 0, else <= max(|x|, |bounds|)
        holds_zero = (lo is None or lo <= 0) and (hi is None or hi >= 0)
        return xs[0] if holds_zero else np.maximum(xs[0], max(abs(b) for b in (lo, hi) if b is not None))
    x = xs[0]
    if lo is not None:
        x = np.where(x < lo, lo, x)
    if hi is not None:
        x = np.where(x > hi, hi, x)
    return x


def _softmax_terms(node, shapes):
    return 2 * shapes[0][-1] + 2


@reference_op("softmax", terms=_softmax_terms)
def _softmax(node, xs, magnitude):
    if magnitude:
        return np.ones_like(xs[0])
    e = np.exp(xs[0] - xs[0].max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@reference_op("log_softmax", terms=_softmax_terms)
def _log_softmax(node, xs, magnitude):
    x = xs[0]
    if magnitude:
        return x + np.log(x.shape[-1]) + 2 * x.max(axis=-1, keepdims=True)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@reference_op("strided_slice")
def _strided_slice(node, xs, magnitude):
    a = node.attrs
    return xs[0][(slice(None),) + tuple(slice(*bounds) for bounds in zip(a["start"], a["stop"], a["step"]))]


@reference_op("pad")
def _pad_op(node, xs, magnitude):
    a = node.attrs
    value = abs(a.get("value") or 0.0) if magnitude else (a.get("value") or 0.0)
    return np.pad(xs[0], [(0, 0)] + list(zip(a["before"], a["after"])), constant_values=value)


@reference_op("channel_shuffle")
def _channel_shuffle(node, xs, magnitude):
    x, g = xs[0], node.attrs["groups"]
    c = x.shape[-1]
    out = np.empty_like(x)
    for i in range(g):  # output channel j * g + i is input channel i * (c / g) + j
        out[..., i::g] = x[..., i * (c // g) : (i + 1) * (c // g)]
    return out


# ---- binary layers ------------------------------------------------------------------------------


@reference_op("pack_signs", terms=lambda node, shapes: 1 + ("bias" in node.params), sign_point=True)
def _pack_signs(node, xs, magnitude):
    if magnitude:  # a sign is exact: its +-1 carries no rounding
        return np.ones_like(xs[0])
    v = pre_sign(node, xs[0])
    minus = v <= 0 if node.attrs.get("zero_to", "one") == "minus_one" else v < 0
    return np.where(minus, -1.0, 1.0)


def pre_sign(node: Node, x: np.ndarray) -> np.ndarray:
    """The float64 value a sign node thresholds at 0: x + bias."""
    bias = node.params.get("bias")
    return x if bias is None else x + bias.astype(np.float64)


PAD_TAPS = {"zero": 0.0, "one": 1.0, "minus_one": -1.0}  # what a padded tap of a +-1 map holds


def _binary_epilogue(dot, node, xs, magnitude):
    y = _channelwise(dot, node, magnitude)
    if len(xs) > 1:
        y = y + xs[1]
    return _rprelu(y, node, magnitude)


@reference_op("bconv2d", terms=lambda node, shapes: 3 + 3 * ("rp_gamma" in node.params))
def _bconv2d(node, xs, magnitude):
    a = node.attrs
    groups = a.get("groups", 1)
    w = _signs_from_bits(node.params["weight_bits"], a["in_channels"] // groups).transpose(0, 3, 1, 2)
    pad = PAD_TAPS[a.get("pad_value", "zero")]
    x = xs[0]
    if magnitude:  # the popcount is exact; its magnitude is the number of nonzero taps
        x, w, pad = np.abs(x), np.abs(w), abs(pad)
    dot = _correlate(_pad(x, a["padding"], pad), w, a["stride"], groups)
    return _binary_epilogue(dot, node, xs, magnitude)


@reference_op("bdense", terms=lambda node, shapes: 3 + 3 * ("rp_gamma" in node.params))
def _bdense(node, xs, magnitude):
    w = _signs_from_bits(node.params["weight_bits"], node.attrs["in_features"])
    x = xs[0]
    if magnitude:
        x, w = np.abs(x), np.abs(w)
    return _binary_epilogue(x @ w.T, node, xs, magnitude)

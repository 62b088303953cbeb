"""How each ATen operator of an exported module lowers to engine ops (see torch_module).

A handler takes the importer, the torch.fx node, the node's value on the example input and the
node's arguments (dynamic tensors as `Value`s, constants as torch tensors or Python values) and
returns a Value whose `build` emits engine nodes when something needs them. Handlers raise
_Unsupported for what the engine cannot run exactly; the importer lists every such node."""

from __future__ import annotations

import numpy as np

from ._layers import weight_bits
from .torch_module import SignInfo, Value, _Multi, _Unsupported

HANDLERS: dict = {}


def handles(*names):
    def register(fn):
        for name in names:
            HANDLERS[name] = fn
        return fn

    return register


# ---- helpers -----------------------------------------------------------------------------------


def _np(t) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


def _is_const(v) -> bool:
    return not isinstance(v, (Value, _Multi))


def _rank(v: Value) -> int:
    return v.example.ndim


def _need_value(v, what="input") -> Value:
    if not isinstance(v, Value):
        raise _Unsupported(f"the {what} must be a tensor computed from the input")
    if v.example.ndim not in (2, 4):
        raise _Unsupported(f"tensors of rank {v.example.ndim} are not supported (only (N, C, H, W) and (N, F))")
    return v


def _need_map(v) -> Value:
    v = _need_value(v)
    if _rank(v) != 4 or v.vector:
        raise _Unsupported("expects an (N, C, H, W) feature map")
    return v


def _channels(v: Value) -> int:
    return v.example.shape[1]


def _per_channel(const, v: Value, what: str) -> np.ndarray:
    """A constant broadcast against v that holds one value per channel: (C,) float32. Parameters
    arrive in any broadcastable shape, (1, C, 1, 1) or already expanded to the example's shape."""
    import torch

    c = _channels(v)
    t = torch.as_tensor(const, dtype=torch.float32)
    if t.ndim > v.example.ndim:
        raise _Unsupported(f"{what} of shape {tuple(t.shape)} has more dimensions than {tuple(v.example.shape)}")
    t = t.reshape((1,) * (v.example.ndim - t.ndim) + tuple(t.shape))
    try:
        full = (
            t.expand(v.example.shape[:1] + t.shape[1:2] + v.example.shape[2:])
            if t.shape[1] == c
            else t.expand(v.example.shape)
        )
    except RuntimeError:
        raise _Unsupported(f"{what} of shape {tuple(t.shape)} does not broadcast to {tuple(v.example.shape)}") from None
    index = (0, slice(None)) + (0,) * (full.ndim - 2)
    per_channel = full[index]
    if not bool((full == per_channel.reshape((1, c) + (1,) * (full.ndim - 2))).all()):
        raise _Unsupported(f"{what} of shape {tuple(t.shape)} varies along more than the channels")
    return _np(per_channel)


def _scalar(const) -> float | None:
    import torch

    if isinstance(const, (int, float)) and not isinstance(const, bool):
        return float(const)
    if isinstance(const, torch.Tensor) and const.numel() >= 1:
        flat = const.reshape(-1)
        if bool((flat == flat[0]).all()):
            return float(flat[0])
    return None


def _pairs(v, n=2) -> list[int]:
    if isinstance(v, int):
        return [v] * n
    v = list(v)
    return v * n if len(v) == 1 else v


def _derive(x: Value, example, build, **facts) -> Value:
    return Value(example, build=build, **facts)


def _map_signs(imp, node, ex, x: Value, emit, source_example):
    """A layout op applied to signs is the signs of the layout op applied to their source (they
    commute with any elementwise function, and max with monotonic ones): the packer keeps reading
    the source. `source_example` is the op applied to the source's example value."""
    s = x.sign
    src = s.source
    moved = Value(source_example, build=lambda: emit(src.tensor, "src"), nonneg=src.nonneg)
    sign = SignInfo(moved, s.zero_to, s.levels, s.exact, s.materialize, None)
    return Value(ex, build=lambda: emit(x.tensor, None), nonneg=x.nonneg, sign=sign)


def _name(node) -> str:
    target = node.target
    packet = getattr(target, "_overloadpacket", None)
    return packet.__name__ if packet is not None else getattr(target, "__name__", str(target))


# ---- identities and constants --------------------------------------------------------------------


@handles("alias", "detach", "clone", "contiguous", "lift_fresh_copy", "_assert_tensor_metadata")
def _identity(imp, node, ex, x, *rest, **kwargs):
    return x


@handles("dropout", "feature_dropout", "alpha_dropout")
def _dropout(imp, node, ex, x, p=0.5, train=False, *rest):
    if train:
        raise _Unsupported("dropout in training mode: call module.eval()")
    return x


@handles("_to_copy", "to", "type_as")
def _to(imp, node, ex, x, *args, **kwargs):
    import torch

    if ex.dtype == torch.float32 and x.example.dtype == torch.float32:
        return x
    # a mask turned into floats (Bi-Real's STE polynomial): fine as long as nothing needs it
    return Value(ex, build=_fails(f"conversion from {x.example.dtype} to {ex.dtype}: the engine computes in float32"))


@handles("ones_like", "zeros_like", "full_like", "empty_like", "new_ones", "new_zeros", "new_full", "sym_size", "size")
def _shape_only(imp, node, ex, *args, **kwargs):
    return ex  # depends on the input's shape only: a constant for a fixed example


@handles("expand", "expand_as")
def _expand(imp, node, ex, x, *rest):
    if _is_const(x):
        return x  # a parameter broadcast against the input: the consumer broadcasts it
    if tuple(ex.shape) == tuple(x.example.shape):
        return x
    raise _Unsupported("expanding an activation to a larger shape")


@handles("getitem")
def _getitem(imp, node, ex, x, index):
    if isinstance(x, _Multi) and index == 0:
        return x.first
    if isinstance(x, tuple):
        return x[index]
    raise _Unsupported("only the first output of a multi-output op is supported")


# ---- convolution and dense -------------------------------------------------------------------------


def binary_alpha(weight: np.ndarray):
    """(alpha per output channel, exact zeros): alpha when every weight of channel o is +-alpha[o]."""
    flat = np.abs(weight.reshape(len(weight), -1))
    top = flat.max(axis=1)
    zeros = int((flat == 0).sum())
    nonzero_equal = np.all((flat == top[:, None]) | (flat == 0), axis=1)
    if np.all(top > 0) and np.all(nonzero_equal):
        return (top.astype(np.float32) if zeros == 0 else None), zeros
    return None, 0


@handles("conv2d", "convolution")
def _conv(imp, node, ex, x, w, b=None, stride=1, padding=0, dilation=1, *rest):
    if _name(node) == "convolution":
        transposed, groups = rest[0], rest[2]
        if transposed:
            raise _Unsupported("transposed convolution")
    else:
        groups = rest[0] if rest else 1
    x = _need_map(x)
    if not _is_const(w) or (b is not None and not _is_const(b)):
        raise _Unsupported("convolution weights must be parameters (or computed from parameters only)")
    if w.ndim != 4:
        raise _Unsupported(f"{w.ndim - 2}-D convolution")
    if any(d != 1 for d in _pairs(dilation)):
        raise _Unsupported(f"dilation {list(_pairs(dilation))}")
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same" and all(s == 1 for s in _pairs(stride)) and all(k % 2 for k in w.shape[2:]):
            padding = [(k - 1) // 2 for k in w.shape[2:]]
        else:
            raise _Unsupported(f"padding={padding!r} with stride {stride} and kernel {tuple(w.shape[2:])}")
    ph, pw = _pairs(padding)
    geometry = dict(stride=list(_pairs(stride)), padding=[ph, ph, pw, pw], groups=int(groups))
    weight = _np(w)
    bias = None if b is None else _np(b)
    return _lower_linear(imp, node, ex, x, weight, bias, geometry)


@handles("linear")
def _linear(imp, node, ex, x, w, b=None):
    x = _need_value(x)
    if _rank(x) != 2:
        raise _Unsupported("linear on a tensor that is not (N, features)")
    if not _is_const(w) or (b is not None and not _is_const(b)):
        raise _Unsupported("linear weights must be parameters (or computed from parameters only)")
    return _lower_linear(imp, node, ex, x, _np(w), None if b is None else _np(b), None)


def _lower_linear(imp, node, ex, x: Value, weight, bias, geometry):
    """conv (geometry given) or dense: XNOR if binary weights read signs, BWN if binary weights
    read floats, float otherwise."""
    conv = geometry is not None
    alpha, zeros = binary_alpha(weight)
    layer = imp.names.of(node)
    if alpha is None and zeros:
        imp.notes.append(
            f"{layer}: {zeros} weight(s) are exactly 0 among +-alpha ones: imported as a float "
            "layer (a 1-bit weight cannot be 0)"
        )
    in_channels = weight.shape[1] * (geometry["groups"] if conv else 1)

    if alpha is not None and x.sign is not None:
        plan = _xnor_plan(x.sign, geometry)
        if plan is not None:
            return Value(ex, build=lambda: _emit_xnor(imp, node, x.sign, weight, alpha, bias, geometry, plan))

    def build():
        src = x.tensor
        if alpha is not None:
            if conv:
                attrs = dict(geometry, in_channels=in_channels)
                return imp.add(
                    node, "bwn_conv2d", [src], attrs, weight_bits=weight_bits(weight), alpha=alpha, bias=bias
                )
            return imp.add(
                node,
                "bwn_dense",
                [src],
                {"in_features": in_channels},
                weight_bits=weight_bits(weight),
                alpha=alpha,
                bias=bias,
            )
        if conv:
            return imp.add(node, "conv2d", [src], geometry, weight=weight, bias=bias)
        return imp.add(node, "dense", [src], weight=weight, bias=bias)

    return Value(ex, build=build)


# pad_value of the binary conv for the value its padded taps hold, by levels of the signs:
# +-1 signs padded with v contribute v * w; {0, 1} signs are (1 + S) / 2, so a padded 0 is S = -1.
_PAD_VALUE = {"pm1": {0.0: "zero", 1.0: "one", -1.0: "minus_one"}, "01": {0.0: "minus_one", 1.0: "one"}}


def _xnor_plan(sign: SignInfo, geometry):
    """(padding, pad_value) for a binary conv / dense reading `sign`, or None if it cannot be exact
    in bits (then it runs as BWN on the float signs)."""
    if geometry is None:
        return ([], None) if sign.pad is None else None
    padding, value = geometry["padding"], 0.0
    if sign.pad is not None:
        if any(padding):
            return None
        padding, value = list(sign.pad[:4]), float(sign.pad[4])
    pad_value = _PAD_VALUE[sign.levels].get(value)
    return None if pad_value is None else (padding, pad_value)


def _emit_xnor(imp, node, sign: SignInfo, weight, alpha, bias, geometry, plan) -> str:
    src = sign.source
    layer = imp.names.of(node)
    if not sign.exact:
        zeros = int((src.example == 0).sum())
        if zeros:
            imp.notes.append(
                f"{layer}: its sign input was exactly 0 at {zeros} of {src.example.numel()} positions "
                "on the example input; PyTorch's sign gives 0 there, the 1-bit engine +1"
            )
    groups = geometry["groups"] if geometry else 1
    pack_attrs = {"groups": groups}
    if sign.zero_to != "one":
        pack_attrs["zero_to"] = sign.zero_to
    packed = imp.add(node, "pack_signs", [src.tensor], pack_attrs, suffix="sign")
    in_channels = weight.shape[1] * groups
    scale = alpha.astype(np.float64)
    shift = np.zeros(len(weight)) if bias is None else bias.astype(np.float64)
    if sign.levels == "01":
        # sum over taps of w * (1 + s) / 2 = (sum w + sum w * s) / 2, the padded taps included
        signs_sum = np.where(weight.reshape(len(weight), -1) < 0, -1.0, 1.0).sum(axis=1)
        shift = shift + scale * signs_sum / 2
        scale = scale / 2
    affine = not (np.all(scale == 1) and np.all(shift == 0))
    suffix = "conv" if affine else None
    if geometry is not None:
        padding, pad_value = plan
        attrs = dict(geometry, padding=padding, in_channels=in_channels, pad_value=pad_value)
        out = imp.add(node, "bconv2d", [packed], attrs, suffix=suffix, weight_bits=weight_bits(weight))
    else:
        out = imp.add(
            node, "bdense", [packed], {"in_features": in_channels}, suffix=suffix, weight_bits=weight_bits(weight)
        )
    if affine:
        out = imp.add(node, "affine", [out], scale=scale.astype(np.float32), bias=shift.astype(np.float32))
    return out


# ---- normalisation and activations -----------------------------------------------------------------


@handles("batch_norm")
def _batch_norm(imp, node, ex, x, w, b, mean, var, training, momentum, eps, *rest):
    return _lower_bn(imp, node, ex, x, w, b, mean, var, training, eps)


@handles("_native_batch_norm_legit_no_training")
def _batch_norm_eval(imp, node, ex, x, w, b, mean, var, momentum, eps):
    return _Multi(ex, _lower_bn(imp, node, ex[0], x, w, b, mean, var, False, eps))


def _lower_bn(imp, node, ex, x, w, b, mean, var, training, eps):
    x = _need_value(x)
    if training or mean is None:
        raise _Unsupported("batch norm in training mode (batch statistics): call module.eval()")
    params = dict(mean=_np(mean), var=_np(var), gamma=None if w is None else _np(w), beta=None if b is None else _np(b))
    return Value(ex, build=lambda: imp.add(node, "batch_norm", [x.tensor], {"eps": float(eps)}, **params))


@handles("relu")
def _relu(imp, node, ex, x):
    x = _need_value(x)
    return Value(ex, build=lambda: imp.add(node, "relu", [x.tensor]), nonneg=True)


@handles("hardtanh", "clamp", "clamp_min", "clamp_max", "relu6")
def _clamp(imp, node, ex, x, lo=None, hi=None, *rest):
    name = _name(node)
    x = _need_value(x)
    if name == "hardtanh":
        lo, hi = (-1.0 if lo is None else lo), (1.0 if hi is None else hi)
    elif name == "clamp_max":
        lo, hi = None, lo
    elif name == "relu6":
        lo, hi = 0.0, 6.0
    lo, hi = (None if v is None else _scalar(v) for v in (lo, hi))
    facts = dict(nonneg=x.nonneg or (lo is not None and lo >= 0))
    out = Value(ex, build=lambda: imp.add(node, "clamp", [x.tensor], {"min": lo, "max": hi}), **facts)
    if (lo is None or lo < 0) and (hi is None or hi > 0):
        out.pending = ("keeps_sign", x)  # sign(clamp(x)) = sign(x): hardtanh before a sign is dropped
    return out


@handles("leaky_relu")
def _leaky_relu(imp, node, ex, x, slope=0.01):
    x = _need_value(x)
    slopes = np.full(_channels(x), slope, np.float32)
    return Value(ex, build=lambda: imp.add(node, "prelu", [x.tensor], slope=slopes))


@handles("prelu", "_prelu_kernel")
def _prelu(imp, node, ex, x, w):
    x = _need_value(x)
    c = _channels(x)
    if not _is_const(w) or w.numel() not in (1, c):
        raise _Unsupported("PReLU slopes must be parameters, one or one per channel")
    slopes = np.full(c, float(w.reshape(-1)[0]), np.float32) if w.numel() == 1 else _np(w.reshape(c))
    return Value(ex, build=lambda: imp.add(node, "prelu", [x.tensor], slope=slopes))


# ---- signs -------------------------------------------------------------------------------------------


def _materialize(imp, node, sign: SignInfo, source: Value) -> str:
    op, zero_to = sign.materialize
    out = imp.add(node, "sign", [source.tensor], {"zero_to": zero_to}, suffix="float" if sign.levels == "01" else None)
    if sign.levels == "01" and zero_to != "zero":
        c = _channels(source)
        out = imp.add(node, "affine", [out], scale=np.full(c, 0.5, np.float32), bias=np.full(c, 0.5, np.float32))
    return out


def _sign_value(imp, node, ex, source: Value, zero_to, levels, exact, materialize) -> Value:
    sign = SignInfo(source, zero_to, levels, exact, materialize)
    value = Value(ex, nonneg=levels == "01", sign=sign)
    value.build = lambda: _materialize(imp, node, sign, source)
    return value


@handles("sign")
def _sign(imp, node, ex, x):
    x = _need_value(x)
    if x.sign is not None:
        return x  # sign of signs
    if x.pending and x.pending[0] == "keeps_sign":
        x = x.pending[1]
    if x.nonneg:
        # {0, 1}: H = (1 + S) / 2 with S = -1 iff x <= 0, exact for +0.0 and -0.0
        return _sign_value(imp, node, ex, x, "minus_one", "01", True, ("sign", "zero"))
    return _sign_value(imp, node, ex, x, "one", "pm1", False, ("sign", "zero"))


_COMPARE = {"ge": (">=",), "gt": (">",), "le": ("<=",), "lt": ("<",)}


@handles("ge", "gt", "le", "lt")
def _compare(imp, node, ex, x, other):
    x = _need_value(x)
    threshold = _scalar(other) if _is_const(other) else None
    if threshold is None:
        raise _Unsupported("comparison with anything but a constant")
    name = _name(node)
    value = Value(ex)
    value.pending = ("compare", x, name, threshold)

    def fail():
        raise _Unsupported("a comparison result used as a tensor (only torch.where(x >= 0, a, b) is supported)")

    value.build = fail
    return value


@handles("where")
def _where(imp, node, ex, cond, a, b):
    if not isinstance(cond, Value) or not cond.pending or cond.pending[0] != "compare":
        raise _Unsupported("torch.where with a condition other than a comparison of an activation with a constant")
    _, x, op, threshold = cond.pending
    hi, lo = _scalar(a), _scalar(b)
    if hi is None or lo is None or {hi, lo} not in ({1.0, -1.0}, {1.0, 0.0}):
        raise _Unsupported("torch.where(cond, a, b) with values other than +-1 or 0/1")
    levels = "pm1" if -1.0 in (hi, lo) else "01"
    # S = +1 where the value is the high one; the condition is x <op> t
    positive_when_true = hi == 1.0
    if op in ("le", "lt"):
        positive_when_true = not positive_when_true
        op = {"le": "gt", "lt": "ge"}[op]  # cond false <=> x > t (for le) or x >= t (for lt)
    source = x
    if not positive_when_true:
        raise _Unsupported("torch.where giving the high value below the threshold")
    if threshold != 0:
        shift = np.full(_channels(x), -threshold, np.float32)
        source = Value(
            x.example - threshold, build=lambda: imp.add(node, "affine", [x.tensor], suffix="shift", bias=shift)
        )
    zero_to = "one" if op == "ge" else "minus_one"
    return _sign_value(imp, node, ex, source, zero_to, levels, True, ("sign", zero_to))


# ---- arithmetic --------------------------------------------------------------------------------------


def _affine(imp, node, ex, x: Value, scale=None, bias=None, **facts) -> Value:
    params = {k: v for k, v in (("scale", scale), ("bias", bias)) if v is not None}
    return Value(ex, build=lambda: imp.add(node, "affine", [x.tensor], **params), **facts)


@handles("add")
def _add(imp, node, ex, x, y, alpha=1):
    if alpha != 1:
        raise _Unsupported("add with alpha != 1")
    if _is_const(x):
        x, y = y, x
    x = _need_value(x)
    if _is_const(y):
        return _affine(imp, node, ex, x, bias=_per_channel(y, x, "addend"))
    y = _need_value(y)
    for a, b in ((x, y), (y, x)):
        if a.pending and a.pending[0] == "ste" and a.pending[2] is b:
            return a.pending[1]  # s.detach() - p.detach() + p: the straight-through sign s
    if tuple(x.example.shape) != tuple(y.example.shape):
        raise _Unsupported(f"adding tensors of shapes {tuple(x.example.shape)} and {tuple(y.example.shape)}")
    return Value(ex, build=lambda: imp.add(node, "add", [x.tensor, y.tensor]), nonneg=x.nonneg and y.nonneg)


@handles("sub", "rsub")
def _sub(imp, node, ex, x, y, alpha=1):
    if alpha != 1:
        raise _Unsupported("sub with alpha != 1")
    if _name(node) == "rsub":
        x, y = y, x
    if _is_const(y):
        x = _need_value(x)
        return _affine(imp, node, ex, x, bias=-_per_channel(y, x, "subtrahend"))
    y = _need_value(y)
    if _is_const(x):
        c = _channels(y)
        return _affine(imp, node, ex, y, scale=np.full(c, -1, np.float32), bias=_per_channel(x, y, "minuend"))
    x = _need_value(x)

    def build():
        c = _channels(y)
        negated = imp.add(node, "affine", [y.tensor], suffix="neg", scale=np.full(c, -1, np.float32))
        return imp.add(node, "add", [x.tensor, negated])

    value = Value(ex, build=build)
    if x.sign is not None:
        value.pending = ("ste", x, y)
    return value


@handles("neg")
def _neg(imp, node, ex, x):
    x = _need_value(x)
    return _affine(imp, node, ex, x, scale=np.full(_channels(x), -1, np.float32))


@handles("mul")
def _mul(imp, node, ex, x, y):
    if _is_const(x):
        x, y = y, x
    x = _need_value(x)
    if not _is_const(y):
        raise _Unsupported("multiplying two activations")
    scale = _per_channel(y, x, "factor")
    if np.all(scale == 1):
        return x  # x * 1 is x exactly (BinaryNet's sign(x / scale) * scale with scale 1)
    return _affine(imp, node, ex, x, scale=scale, nonneg=x.nonneg and bool(np.all(scale >= 0)))


@handles("div")
def _div(imp, node, ex, x, y, *rest, **kwargs):
    x = _need_value(x)
    if not _is_const(y) or rest or kwargs.get("rounding_mode"):
        raise _Unsupported("division by anything but a constant")
    divisor = _per_channel(y, x, "divisor")
    if np.all(divisor == 1):
        return x
    scale = np.float32(1) / divisor
    return _affine(imp, node, ex, x, scale=scale, nonneg=x.nonneg and bool(np.all(scale >= 0)))


@handles("log_softmax", "_log_softmax", "softmax", "_softmax")
def _softmax(imp, node, ex, x, dim, *rest):
    x = _need_value(x)
    if _rank(x) != 2 or dim % 2 != 1:
        raise _Unsupported("softmax over anything but the features of an (N, F) tensor")
    op = "log_softmax" if "log" in _name(node) else "softmax"
    return Value(ex, build=lambda: imp.add(node, op, [x.tensor]))


# ---- pooling -------------------------------------------------------------------------------------------


@handles("max_pool2d", "max_pool2d_with_indices")
def _max_pool(imp, node, ex, x, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
    x = _need_map(x)
    if any(d != 1 for d in _pairs(dilation)):
        raise _Unsupported("dilated max pooling")
    k = _pairs(kernel)
    attrs = {
        "kernel": k,
        "stride": _pairs(stride) if stride else k,
        "padding": _pairs(padding),
        "ceil_mode": bool(ceil_mode),
    }
    multi = _name(node) == "max_pool2d_with_indices"
    out_ex = ex[0] if multi else ex

    def emit(src, suffix):
        return imp.add(node, "max_pool2d", [src], attrs, suffix=suffix)

    if x.sign is not None and x.sign.pad is None:
        moved = imp.reapply(node, x.sign.source.example)
        value = _map_signs(imp, node, out_ex, x, emit, moved[0] if multi else moved)
    else:
        value = Value(out_ex, build=lambda: emit(x.tensor, None), nonneg=x.nonneg)
    return _Multi(ex, value) if multi else value


@handles("avg_pool2d")
def _avg_pool(
    imp, node, ex, x, kernel, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    x = _need_map(x)
    if divisor_override is not None:
        raise _Unsupported("avg_pool2d with divisor_override")
    k = _pairs(kernel)
    attrs = {
        "kernel": k,
        "stride": _pairs(stride) if stride else k,
        "padding": _pairs(padding),
        "ceil_mode": bool(ceil_mode),
        "count_include_pad": bool(count_include_pad),
    }
    return Value(ex, build=lambda: imp.add(node, "avg_pool2d", [x.tensor], attrs), nonneg=x.nonneg)


def _global_pool(imp, node, ex, x, keepdim):
    return Value(ex, build=lambda: imp.add(node, "global_avg_pool", [x.tensor]), nonneg=x.nonneg, vector=keepdim)


@handles("adaptive_avg_pool2d", "_adaptive_avg_pool2d")
def _adaptive_avg_pool(imp, node, ex, x, output_size):
    x = _need_map(x)
    oh, ow = _pairs(output_size)
    h, w = x.example.shape[2:]
    if (oh, ow) == (1, 1):
        return _global_pool(imp, node, ex, x, keepdim=True)
    if h % oh or w % ow:
        raise _Unsupported(f"adaptive average pooling {h}x{w} -> {oh}x{ow} with uneven windows")
    k = [h // oh, w // ow]
    attrs = {"kernel": k, "stride": k, "padding": [0, 0], "ceil_mode": False, "count_include_pad": True}
    return Value(ex, build=lambda: imp.add(node, "avg_pool2d", [x.tensor], attrs), nonneg=x.nonneg)


@handles("mean")
def _mean(imp, node, ex, x, dims=None, keepdim=False, *rest, **kwargs):
    x = _need_map(x)
    if dims is None or sorted(d % 4 for d in dims) != [2, 3]:
        raise _Unsupported(f"mean over dims {dims} (only the spatial mean is supported)")
    return _global_pool(imp, node, ex, x, keepdim=bool(keepdim))


# ---- layout --------------------------------------------------------------------------------------------

_ENGINE_AXIS = {4: {1: 2, 2: 0, 3: 1}, 2: {1: 0}}


@handles("cat", "concat")
def _cat(imp, node, ex, xs, dim=0):
    if not all(isinstance(x, Value) for x in xs):
        raise _Unsupported("concatenating an activation with a constant")
    xs = [_need_value(x) for x in xs]
    rank = _rank(xs[0])
    if dim % rank != 1 or any(x.vector for x in xs):
        raise _Unsupported(f"concatenation along dim {dim} (only channels)")
    signs = [x.sign for x in xs]
    nonneg = all(x.nonneg for x in xs)

    def emit(names, suffix):
        return imp.add(node, "concat", names, suffix=suffix)

    value = Value(ex, build=lambda: emit([x.tensor for x in xs], None), nonneg=nonneg)
    first = signs[0]
    if all(
        s is not None
        and s.pad is None
        and (s.zero_to, s.levels, s.materialize) == (first.zero_to, first.levels, first.materialize)
        for s in signs
    ):
        sources = [s.source for s in signs]
        moved_example = imp.reapply(node, [s.example for s in sources])
        moved = Value(
            moved_example, build=lambda: emit([s.tensor for s in sources], "src"), nonneg=all(s.nonneg for s in sources)
        )
        value.sign = SignInfo(moved, first.zero_to, first.levels, all(s.exact for s in signs), first.materialize)
    return value


@handles("pad", "constant_pad_nd")
def _pad(imp, node, ex, x, pads, mode="constant", value=None):
    x = _need_value(x)
    if _name(node) == "constant_pad_nd":
        mode, value = "constant", mode if not isinstance(mode, str) else 0.0
    if mode != "constant":
        raise _Unsupported(f"padding mode {mode!r}")
    value = 0.0 if value is None else float(value)
    pads = list(pads) + [0] * (2 * _rank(x) - len(pads))
    if min(pads) < 0 or any(pads[2 * (_rank(x) - 1) :]):
        raise _Unsupported("negative padding or padding of the batch")
    if _rank(x) == 4:
        (wl, wr, ht, hb, cb, ca) = pads[:6]
        before, after = [ht, wl, cb], [hb, wr, ca]
    else:
        before, after = [pads[0]], [pads[1]]
    s = x.sign
    if (
        s is not None
        and s.pad is None
        and _rank(x) == 4
        and before[2] == after[2] == 0
        and value in _PAD_VALUE[s.levels]
    ):
        # padded signs feeding a binary conv become its padding (pad_value), see _xnor_plan
        sign = SignInfo(s.source, s.zero_to, s.levels, s.exact, s.materialize, (ht, hb, wl, wr, value))
        out = Value(ex, nonneg=x.nonneg and value >= 0, sign=sign)
    else:
        out = Value(ex, nonneg=x.nonneg and value >= 0)
    out.build = lambda: imp.add(node, "pad", [x.tensor], {"before": before, "after": after, "value": value})
    return out


@handles("slice")
def _slice(imp, node, ex, x, dim=0, start=None, end=None, step=1):
    x = _need_value(x)
    rank = _rank(x)
    size = x.example.shape[dim]
    start, end, _ = slice(start, end, step).indices(size)
    if start == 0 and end >= size and step == 1:
        return x
    dim %= rank
    if dim == 0 or x.vector:
        raise _Unsupported("slicing the batch dimension")
    axis = _ENGINE_AXIS[rank][dim]
    shape = [x.example.shape[d] for d in ((2, 3, 1) if rank == 4 else (1,))]
    first, stop, steps = [0] * len(shape), list(shape), [1] * len(shape)
    first[axis], stop[axis], steps[axis] = start, end, step
    if end <= start:
        raise _Unsupported("an empty slice")
    source = x
    if x.pending and x.pending[0] == "slice":
        # x[:, :, ::2][:, :, :, ::2] (option-A shortcuts): one strided slice of the first's input
        source, first0, _, steps0 = x.pending[1:]
        stop = [
            a + (b - 1) * s + 1
            for a, b, s in zip(first0, [f + (e - f - 1) // t * t + 1 for f, e, t in zip(first, stop, steps)], steps0)
        ]
        first = [a + f * s for a, f, s in zip(first0, first, steps0)]
        steps = [s * t for s, t in zip(steps0, steps)]
    attrs = {"start": first, "stop": stop, "step": steps}

    def emit(src, suffix):
        return imp.add(node, "strided_slice", [src], attrs, suffix=suffix)

    if x.sign is not None and x.sign.pad is None:
        return _map_signs(imp, node, ex, x, emit, imp.reapply(node, x.sign.source.example))
    value = Value(ex, build=lambda: emit(source.tensor, None), nonneg=x.nonneg)
    value.pending = ("slice", source, first, stop, steps)
    return value


@handles("view", "reshape", "_unsafe_view", "flatten")
def _view(imp, node, ex, x, *shape):
    x = _need_any(x)
    src, dst = tuple(x.example.shape), tuple(ex.shape)
    if src == dst:
        return x
    if x.pending and x.pending[0] == "shuffle" and x.pending[2] == "transposed" and len(dst) == 4:
        groups, inner = x.pending[1], x.pending[3]
        if tuple(inner.example.shape) == dst:
            return _layout(imp, node, ex, inner, "channel_shuffle", {"groups": groups})
    if len(src) == 4 and len(dst) == 5 and dst[0] == src[0] and dst[1] * dst[2] == src[1] and dst[3:] == src[2:]:
        value = Value(ex, build=_fails("a 5-D view that is not part of a channel shuffle"))
        value.pending = ("shuffle", dst[1], "split", x)
        return value
    if len(src) == 4 and len(dst) == 2 and dst[0] == src[0]:
        if x.vector:
            return Value(ex, build=lambda: x.tensor, nonneg=x.nonneg, sign=x.sign)
        return _layout(imp, node, ex, x, "flatten", {"order": "chw"})
    raise _Unsupported(f"reshaping {src} to {dst}")


@handles("transpose")
def _transpose(imp, node, ex, x, d0, d1):
    x = _need_any(x)
    if x.pending and x.pending[0] == "shuffle" and x.pending[2] == "split" and sorted((d0 % 5, d1 % 5)) == [1, 2]:
        value = Value(ex, build=_fails("a transpose that is not part of a channel shuffle"))
        value.pending = ("shuffle", x.pending[1], "transposed", x.pending[3])
        return value
    raise _Unsupported(f"transposing dims {d0} and {d1}")


def _need_any(x) -> Value:
    if not isinstance(x, Value):
        raise _Unsupported("the input must be a tensor computed from the input")
    return x


def _fails(message):
    def fail():
        raise _Unsupported(message)

    return fail


def _layout(imp, node, ex, x: Value, op, attrs) -> Value:
    """A layout op; on signs it moves their source (signs commute with it)."""

    def emit(src, suffix):
        return imp.add(node, op, [src], attrs, suffix=suffix)

    if x.sign is not None and x.sign.pad is None:
        return _map_signs(imp, node, ex, x, emit, imp.reapply(node, x.sign.source.example))
    return Value(ex, build=lambda: emit(x.tensor, None), nonneg=x.nonneg)

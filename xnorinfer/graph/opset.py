"""The operators a graph may use: for each, its inputs, parameters, attribute checks, shape
inference and how it runs (on the kernels in xnorinfer.ops).

Every check here is what stands between a corrupt or hand-edited model file and the C kernels, so
each op validates every attribute and parameter shape it uses and raises GraphError naming the node."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import ops
from ..ops import _validate
from ..ops.float_ops import _pooled_size
from .ir import GraphError, Node, TensorInfo

RPRELU = ("rp_gamma", "rp_slope", "rp_zeta")


REQUIRED = object()  # an Attr default: the attribute must be given


@dataclass(frozen=True)
class Attr:
    """One attribute of an op: its JSON type, range and default. The same table checks files on
    load (format.load), graphs in memory (infer_shapes) and is printed in docs/file-format.md, so
    a new attribute is one line in its op's `register(..., attrs=...)`."""

    kind: str  # "int", "ints" (a list of `count` ints), "bool", "float" or "str"
    default: object = REQUIRED
    minimum: float = 0  # ints and floats: the smallest value allowed
    count: int | None = 1  # ints: the list's length (None: any; the op checks it against a rank)
    choices: tuple = ()  # str: the values allowed

    def problem(self, value) -> str | None:
        """Why `value` does not fit, or None."""
        if value is None and self.default is None:
            return None  # an optional attribute written as null
        if self.kind == "int" and not _is_int(value, self.minimum):
            return f"must be an int in [{self.minimum}, {MAX_ATTR}]"
        if self.kind == "ints" and not (
            isinstance(value, (list, tuple))
            and (self.count is None or len(value) == self.count)
            and all(_is_int(v, self.minimum) for v in value)
        ):
            return f"must be a list of {self.count or 'one per axis,'} ints in [{self.minimum}, {MAX_ATTR}]"
        if self.kind == "bool" and not isinstance(value, bool):
            return "must be true or false"
        if self.kind == "float" and not (
            isinstance(value, (int, float, np.floating))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= self.minimum
        ):
            return f"must be a {self.type_text()}"
        if self.kind == "str" and value not in self.choices:
            return f"must be one of {', '.join(map(repr, self.choices))}"
        return None

    def type_text(self) -> str:
        return {
            "int": f"int >= {self.minimum}",
            "ints": f"{self.count or 'rank'} ints >= {self.minimum}",
            "bool": "bool",
            "float": "finite number" if self.minimum == -math.inf else f"finite number >= {self.minimum}",
            "str": "one of " + ", ".join(map(json.dumps, self.choices)),
        }[self.kind]

    def default_text(self) -> str:
        if self.default is REQUIRED:
            return "required"
        return f"default {json.dumps(self.default)}" if self.default is not None else "optional"

    def describe(self) -> str:
        return f"{self.type_text()}, {self.default_text()}"


def Int(minimum=1, default=REQUIRED) -> Attr:
    return Attr("int", default, minimum)


def Ints(count, minimum=0, default=REQUIRED) -> Attr:
    return Attr("ints", default, minimum, count)


def Bool(default) -> Attr:
    return Attr("bool", default)


def Float(minimum, default) -> Attr:
    return Attr("float", default, minimum)


def Choice(choices, default) -> Attr:
    return Attr("str", default, choices=tuple(choices))


def _unknown_channels(node, in_channels):
    return None


def _no_macs(node, out):
    return 0, 0


@dataclass(frozen=True)
class OpSpec:
    arity: tuple[int, int]  # min and max number of inputs
    required: tuple[str, ...]  # parameter names
    optional: tuple[str, ...]
    infer: Callable[[Node, list[TensorInfo]], TensorInfo]
    # compile(node) -> run(*inputs) -> array, or a Bound: bind(inputs, out, **fused) -> a
    # no-argument callable computing into out. The executor binds each layer once per input shape
    # (arguments checked once) and then calls only that.
    compile: Callable[[Node], Callable]
    attrs: dict = field(default_factory=dict)  # name -> Attr: every attribute the op knows
    # channels(node, its inputs' channels, None where unknown) -> its output's channels where a
    # layer's weights, a per-channel op's input or a concat's parts fix them, else None: the passes
    # split per-channel parameters by them without running shape inference (and split nothing else).
    channels: Callable[[Node, list], int | None] = _unknown_channels
    # macs(node, its output's TensorInfo) -> (binary, float) multiply-accumulates of one image.
    macs: Callable[[Node, TensorInfo], tuple[int, int]] = _no_macs
    # bind_block(first, rest) -> one call running the bound layer `first` (of this op) with the
    # bound layers `rest` that a pass grouped with it as a block; None: the op leads no block.
    bind_block: Callable | None = None


OPS: dict[str, OpSpec] = {}


class Bound:
    """What compile returns for an op that computes into a preallocated output: bind(inputs, out,
    **fused) -> a no-argument callable."""

    __slots__ = ("bind",)

    def __init__(self, bind):
        self.bind = bind


def register(
    name,
    infer,
    compile_,
    arity=(1, 1),
    required=(),
    optional=(),
    attrs=None,
    channels=_unknown_channels,
    macs=_no_macs,
    bind_block=None,
):
    """Add an operator: infer(node, input infos) -> output info; compile_(node) -> run or Bound;
    attrs: {name: Attr} (an attribute not listed is refused); channels, macs, bind_block: as in
    OpSpec."""
    OPS[name] = OpSpec(
        arity, tuple(required), tuple(optional), infer, compile_, dict(attrs or {}), channels, macs, bind_block
    )


def channel_counts(graph) -> dict[str, int | None]:
    """{tensor: channels} by the op table's `channels`, None where that does not fix them (the
    graph input's too)."""
    counts = {graph.input: None}
    for node in graph.nodes:
        counts[node.output] = OPS[node.op].channels(node, [counts.get(name) for name in node.inputs])
    return counts


def node_macs(node, infos) -> tuple[int, int]:
    """(binary, float) multiply-accumulates of one node for one image (infos: infer_shapes')."""
    return OPS[node.op].macs(node, infos[node.output])


# ---- per-op facts shared by several ops ----------------------------------------------------------


def _input_channels(node, in_channels):
    return in_channels[0]


def _weight_rows(key):
    def channels(node, in_channels):
        return node.params[key].shape[0]

    return channels


def _pixels(out: TensorInfo) -> int:
    return math.prod(out.shape[:-1]) if len(out.shape) > 1 else 1


def _conv_macs(binary: bool):
    """A conv with `weight_bits` (O, kh, kw, words): each output sums kh * kw * C / groups products."""

    def macs(node, out):
        o, kh, kw, _ = node.params["weight_bits"].shape
        count = _pixels(out) * o * kh * kw * (node.attrs["in_channels"] // node.attrs.get("groups", 1))
        return (count, 0) if binary else (0, count)

    return macs


def _dense_macs(binary: bool):
    def macs(node, out):
        count = node.params["weight_bits"].shape[0] * node.attrs["in_features"]
        return (count, 0) if binary else (0, count)

    return macs


def _float_weight_macs(node, out):
    return 0, int(node.params["weight"].size) * _pixels(out)


# ---- attribute and parameter helpers -----------------------------------------------------------


def _fail(node: Node, message: str) -> GraphError:
    return GraphError(f"node {node.name!r} ({node.op}): {message}")


MAX_ATTR = 2**31 - 1  # the kernels take sizes, strides and paddings as C ints


def _is_int(v, minimum) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and minimum <= v <= MAX_ATTR


class UnknownAttributeError(GraphError):
    """An attribute this version's op set does not know: a newer writer's, or a corrupt file."""


def check_attrs(node: Node) -> None:
    """Every attribute of the node known to its op and of its type and range; the required ones
    present. Raises GraphError naming the node and attribute."""
    table = OPS[node.op].attrs
    for key in node.attrs:
        if key not in table:
            known = ", ".join(table) or "none"
            raise UnknownAttributeError(f"node {node.name!r} ({node.op}): unknown attribute {key!r} (known: {known})")
    for key, spec in table.items():
        if key not in node.attrs:
            if spec.default is REQUIRED:
                raise _fail(node, f"attribute {key!r} is missing ({spec.describe()})")
            continue
        problem = spec.problem(node.attrs[key])
        if problem:
            raise _fail(node, f"attribute {key!r} {problem}, got {node.attrs[key]!r}")


def _attr(node, key):
    """The attribute's value, or its op's default (check_attrs has vetted it)."""
    value = node.attrs.get(key, OPS[node.op].attrs[key].default)
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else value


def _param(node, key, dtype, shape) -> np.ndarray | None:
    """The parameter, checked for dtype and shape (None entries of `shape` are free)."""
    p = node.params.get(key)
    if p is None:
        return None
    if p.dtype != np.dtype(dtype):
        raise _fail(node, f"parameter {key!r} must be {np.dtype(dtype).name}, got {p.dtype.name}")
    if p.ndim != len(shape) or any(want is not None and want != got for want, got in zip(shape, p.shape)):
        want = "x".join("?" if s is None else str(s) for s in shape)
        raise _fail(node, f"parameter {key!r} must have shape {want}, got {'x'.join(map(str, p.shape))}")
    if p.size == 0:
        raise _fail(node, f"parameter {key!r} is empty ({'x'.join(map(str, p.shape))})")
    if p.dtype.kind == "f" and not np.isfinite(p).all():
        raise _fail(node, f"parameter {key!r} contains NaN or infinite values")
    return p


def _no_tail_bits(node, bits, channels):
    if ops.binary._tail_bits_set(bits, channels, 1):
        raise _fail(node, "binary weights have bits set past the last input channel")


def _float_map(node, info: TensorInfo, rank=3) -> TensorInfo:
    if info.packed or len(info.shape) != rank:
        kind = "a float (H, W, C) map" if rank == 3 else "a float vector"
        raise _fail(node, f"expects {kind}, got {info}")
    return info


def _channel_params(node, channels, names):
    for key in names:
        _param(node, key, np.float32, (channels,))


def _spatial_out(node, h, w, k, stride, pads):
    try:
        return (
            _validate.output_size(h, k[0], stride[0], pads[0], pads[1], node.name),
            _validate.output_size(w, k[1], stride[1], pads[2], pads[3], node.name),
        )
    except ValueError as exc:
        raise _fail(node, str(exc)) from None


def _rprelu(node):
    present = [k in node.params for k in RPRELU]
    if any(present) and not all(present):
        raise _fail(node, f"needs all of {RPRELU} or none")
    return tuple(node.params[k] for k in RPRELU) if all(present) else None


# Attributes several ops share.
GROUPS = Int(1, default=1)
STRIDE2, PADDING4 = Ints(2, minimum=1), Ints(4)


# ---- float convolution and dense ---------------------------------------------------------------


def _infer_conv(node, ins):
    h, w, c = _float_map(node, ins[0]).shape
    groups = _attr(node, "groups")
    weight = node.params.get("weight")
    if weight is None or weight.ndim != 4:
        raise _fail(node, "parameter 'weight' must be (O, C / groups, kh, kw)")
    o, cg, kh, kw = weight.shape
    _param(node, "weight", np.float32, (o, c // groups, kh, kw))
    if c % groups or o % groups or cg * groups != c:
        raise _fail(node, f"weight {weight.shape} does not fit {c} input channels in {groups} groups")
    _channel_params(node, o, ["scale", "bias"])
    return TensorInfo(_spatial_out(node, h, w, (kh, kw), _attr(node, "stride"), _attr(node, "padding")) + (o,))


def _compile_conv(node):
    p = node.params
    args = dict(
        bias=p.get("bias"),
        stride=_attr(node, "stride"),
        padding=_attr(node, "padding"),
        groups=_attr(node, "groups"),
        scale=p.get("scale"),
        relu=_attr(node, "relu"),
    )
    return Bound(lambda ins, out, **fused: ops.float_ops.bind_conv2d(ins[0], p["weight"], out=out, **args, **fused)[0])


register(
    "conv2d",
    _infer_conv,
    _compile_conv,
    required=["weight"],
    optional=["scale", "bias"],
    attrs={"stride": STRIDE2, "padding": PADDING4, "groups": GROUPS, "relu": Bool(False)},
    channels=_weight_rows("weight"),
    macs=_float_weight_macs,
    bind_block=lambda conv, rest: ops.float_ops.bind_conv2d_max_pool(conv, *rest),
)


def _infer_dense(node, ins):
    (i,) = _float_map(node, ins[0], rank=1).shape
    weight = _param(node, "weight", np.float32, (None, i))
    _channel_params(node, weight.shape[0], ["bias"])
    return TensorInfo((weight.shape[0],))


def _compile_dense(node):
    weight, bias = ops.float_ops.DenseWeights(node.params["weight"]), node.params.get("bias")
    return Bound(lambda ins, out: ops.float_ops.bind_dense(ins[0], weight, bias, out)[0])


register(
    "dense",
    _infer_dense,
    _compile_dense,
    required=["weight"],
    optional=["bias"],
    channels=_weight_rows("weight"),
    macs=_float_weight_macs,
)


# ---- BWN: float activations, 1-bit weights -------------------------------------------------------


def _infer_bwn_conv(node, ins):
    h, w, c = _float_map(node, ins[0]).shape
    groups = _attr(node, "groups")
    if _attr(node, "in_channels") != c or c % groups:
        raise _fail(node, f"attribute in_channels must be the input's {c} channels, divisible by groups")
    bits = _param(node, "weight_bits", np.uint64, (None, None, None, ops.packed_words(c // groups)))
    o, kh, kw, _ = bits.shape
    _channel_params(node, o, ["alpha", "bias"])
    _channel_params(node, c, ["in_scale", "in_shift"])
    if ("in_scale" in node.params) != ("in_shift" in node.params):
        raise _fail(node, "parameters in_scale and in_shift go together")
    return TensorInfo(_spatial_out(node, h, w, (kh, kw), _attr(node, "stride"), _attr(node, "padding")) + (o,))


def _compile_bwn_conv(node):
    p, a = node.params, node.attrs
    weights = ops.BWNConvWeights(p["weight_bits"], p["alpha"], a["in_channels"], _attr(node, "groups"))
    args = (p.get("bias"), _attr(node, "stride"), _attr(node, "padding"))
    kwargs = dict(relu=_attr(node, "relu"), in_scale=p.get("in_scale"), in_shift=p.get("in_shift"))
    return Bound(lambda ins, out: ops.bwn.bind_bwn_conv2d(ins[0], weights, *args, out=out, **kwargs)[0])


register(
    "bwn_conv2d",
    _infer_bwn_conv,
    _compile_bwn_conv,
    required=["weight_bits", "alpha"],
    optional=["bias", "in_scale", "in_shift"],
    attrs={"in_channels": Int(), "stride": STRIDE2, "padding": PADDING4, "groups": GROUPS, "relu": Bool(False)},
    channels=_weight_rows("weight_bits"),
    macs=_conv_macs(binary=False),
)


def _infer_bwn_dense(node, ins):
    (i,) = _float_map(node, ins[0], rank=1).shape
    if _attr(node, "in_features") != i:
        raise _fail(node, f"attribute in_features must be the input's {i} features")
    bits = _param(node, "weight_bits", np.uint64, (None, ops.packed_words(i)))
    _channel_params(node, bits.shape[0], ["alpha", "bias"])
    return TensorInfo((bits.shape[0],))


def _compile_bwn_dense(node):
    p = node.params
    weights = ops.BWNDenseWeights(p["weight_bits"], p["alpha"], node.attrs["in_features"])
    return Bound(lambda ins, out: ops.bwn.bind_bwn_dense(ins[0], weights, p.get("bias"), out)[0])


register(
    "bwn_dense",
    _infer_bwn_dense,
    _compile_bwn_dense,
    required=["weight_bits", "alpha"],
    optional=["bias"],
    attrs={"in_features": Int()},
    channels=_weight_rows("weight_bits"),
    macs=_dense_macs(binary=False),
)


# ---- binary layers ------------------------------------------------------------------------------


def _infer_pack(node, ins):
    info = ins[0]
    if info.packed:
        raise _fail(node, f"expects a float tensor, got {info}")
    c, groups = info.shape[-1], _attr(node, "groups")
    if c % groups:
        raise _fail(node, f"groups ({groups}) must divide the {c} channels")
    _channel_params(node, c, ["bias"])
    return TensorInfo(info.shape[:-1] + (ops.packed_words(c, groups),), packed_channels=c, groups=groups)


def pack_zero_to(node) -> str:
    """A pack_signs node's zero_to: "one" (x + bias = 0 packs as +1, the default) or "minus_one"."""
    return _attr(node, "zero_to")


def _compile_pack(node):
    bias, groups, mode = node.params.get("bias"), _attr(node, "groups"), _attr(node, "zero_to")
    return Bound(lambda ins, out: ops.binary.bind_pack_signs(ins[0], bias, groups, out, zero_to=mode)[0])


register(
    "pack_signs",
    _infer_pack,
    _compile_pack,
    optional=["bias"],
    attrs={"groups": GROUPS, "zero_to": Choice(ops.binary.ZERO_TO, "one")},
)


def _infer_bconv(node, ins):
    x = ins[0]
    groups = _attr(node, "groups")
    if not x.packed or len(x.shape) != 3:
        raise _fail(node, f"expects a bit-packed (H, W, words) map, got {x}")
    c = x.packed_channels
    if _attr(node, "in_channels") != c or x.groups != groups:
        raise _fail(node, f"in_channels/groups must match the packed input ({c} channels, {x.groups} groups)")
    bits = _param(node, "weight_bits", np.uint64, (None, None, None, ops.packed_words(c // groups)))
    o, kh, kw, _ = bits.shape
    if o % groups:
        raise _fail(node, f"groups ({groups}) must divide the {o} output channels")
    _no_tail_bits(node, bits, c // groups)
    _channel_params(node, o, ["scale", "bias", *RPRELU])
    _rprelu(node)
    out = TensorInfo(
        _spatial_out(node, x.shape[0], x.shape[1], (kh, kw), _attr(node, "stride"), _attr(node, "padding")) + (o,)
    )
    if len(ins) == 2 and ins[1] != out:
        raise _fail(node, f"residual {ins[1]} must match the output {out}")
    return out


def _compile_bconv(node):
    p, a = node.params, node.attrs
    weights = ops.BinaryConvWeights(p["weight_bits"], a["in_channels"], _attr(node, "groups"))
    args = dict(
        stride=_attr(node, "stride"),
        padding=_attr(node, "padding"),
        pad_value=_attr(node, "pad_value"),
        scale=p.get("scale"),
        bias=p.get("bias"),
        rprelu=_rprelu(node),
    )
    return Bound(
        lambda ins, out, **fused: ops.binary.bind_bconv2d(
            ins[0], weights, residual=ins[1] if len(ins) > 1 else None, out=out, **args, **fused
        )[0]
    )


register(
    "bconv2d",
    _infer_bconv,
    _compile_bconv,
    arity=(1, 2),
    required=["weight_bits"],
    optional=["scale", "bias", *RPRELU],
    attrs={
        "in_channels": Int(),
        "stride": STRIDE2,
        "padding": PADDING4,
        "groups": GROUPS,
        "pad_value": Choice(ops.binary.PAD_VALUES, "zero"),
    },
    channels=_weight_rows("weight_bits"),
    macs=_conv_macs(binary=True),
    bind_block=ops.binary.bind_bconv2d_block,
)


def _infer_bdense(node, ins):
    x = ins[0]
    if not x.packed or len(x.shape) != 1:
        raise _fail(node, f"expects a bit-packed vector, got {x}")
    if _attr(node, "in_features") != x.packed_channels or x.groups != 1:
        raise _fail(node, f"attribute in_features must be the input's {x.packed_channels} features")
    bits = _param(node, "weight_bits", np.uint64, (None, ops.packed_words(x.packed_channels)))
    _no_tail_bits(node, bits, x.packed_channels)
    _channel_params(node, bits.shape[0], ["scale", "bias", *RPRELU])
    _rprelu(node)
    return TensorInfo((bits.shape[0],))


def _compile_bdense(node):
    p = node.params
    weights = ops.BinaryDenseWeights(p["weight_bits"], node.attrs["in_features"])
    return lambda x, out=None: ops.bdense(x, weights, p.get("scale"), p.get("bias"), rprelu=_rprelu(node))


register(
    "bdense",
    _infer_bdense,
    _compile_bdense,
    required=["weight_bits"],
    optional=["scale", "bias", *RPRELU],
    attrs={"in_features": Int()},
    channels=_weight_rows("weight_bits"),
    macs=_dense_macs(binary=True),
)


# ---- per-channel and element-wise float ops ----------------------------------------------------


def _elementwise(names):
    def infer(node, ins):
        info = ins[0]
        if info.packed:
            raise _fail(node, f"expects a float tensor, got {info}")
        _channel_params(node, info.shape[-1], names)
        return info

    return infer


def _infer_batch_norm(node, ins):
    info = _elementwise(["mean", "var", "gamma", "beta"])(node, ins)
    if np.any(node.params["var"] + _attr(node, "eps") <= 0):
        raise _fail(node, "var + eps must be positive")
    return info


def _compile_batch_norm(node):
    p = node.params
    return lambda x, out=None: ops.batch_norm(
        x, p["mean"], p["var"], p.get("gamma"), p.get("beta"), float(_attr(node, "eps"))
    )


register(
    "batch_norm",
    _infer_batch_norm,
    _compile_batch_norm,
    required=["mean", "var"],
    optional=["gamma", "beta"],
    attrs={"eps": Float(0, 1e-5)},
    channels=_input_channels,
)


def _infer_affine(node, ins):
    if not node.params:
        raise _fail(node, "needs a 'scale' or a 'bias' parameter")
    return _elementwise(["scale", "bias"])(node, ins)


def _run_affine(node):
    scale, bias = node.params.get("scale"), node.params.get("bias")

    def run(x, out=None):
        _validate.tensor(x, "x", np.float32, tuple(range(1, 9)), finite=True)
        y = x * scale if scale is not None else x.copy()
        if bias is not None:
            y += bias
        return y

    return run


register("affine", _infer_affine, _run_affine, optional=["scale", "bias"], channels=_input_channels)
register(
    "prelu",
    _elementwise(["slope"]),
    lambda node: lambda x, out=None: ops.prelu(x, node.params["slope"]),
    required=["slope"],
    channels=_input_channels,
)
register(
    "rprelu",
    _elementwise(RPRELU),
    lambda node: lambda x, out=None: ops.rprelu(x, *_rprelu(node)),
    required=list(RPRELU),
    channels=_input_channels,
)
register("relu", _elementwise([]), lambda node: lambda x, out=None: ops.relu(x), channels=_input_channels)


def _infer_clamp(node, ins):
    lo, hi = _attr(node, "min"), _attr(node, "max")
    if lo is not None and hi is not None and lo > hi:
        raise _fail(node, f"min ({lo}) exceeds max ({hi})")
    return _elementwise([])(node, ins)


ANY_NUMBER = Float(-math.inf, None)
register(
    "clamp",
    _infer_clamp,
    lambda node: lambda x, out=None: ops.clamp(x, _attr(node, "min"), _attr(node, "max")),
    attrs={"min": ANY_NUMBER, "max": ANY_NUMBER},
)
register(
    "sign",
    _elementwise(["bias"]),
    lambda node: lambda x, out=None: ops.sign(x, node.params.get("bias"), _attr(node, "zero_to")),
    optional=["bias"],
    attrs={"zero_to": Choice(ops.float_ops.SIGN_ZERO, "zero")},
)
register("softmax", lambda node, ins: _float_map(node, ins[0], rank=1), lambda node: lambda x, out=None: ops.softmax(x))
register(
    "log_softmax",
    lambda node, ins: _float_map(node, ins[0], rank=1),
    lambda node: lambda x, out=None: ops.log_softmax(x),
)


# ---- layout: slices, padding, channel shuffle ---------------------------------------------------


def _per_axis(node, info, keys):
    """The attributes, one int per axis of the (unbatched) input."""
    if info.packed:
        raise _fail(node, f"expects a float tensor, got {info}")
    values = [_attr(node, key) for key in keys]
    for key, value in zip(keys, values):
        if len(value) != len(info.shape):
            raise _fail(node, f"attribute {key!r} needs one entry per axis of {info}, got {list(value)}")
    return values


def _infer_slice(node, ins):
    start, stop, step = _per_axis(node, ins[0], ("start", "stop", "step"))
    if any(not a < b <= d for a, b, d in zip(start, stop, ins[0].shape)):
        raise _fail(node, f"slice {list(start)}:{list(stop)} does not fit {ins[0]}")
    return TensorInfo(tuple(-(-(b - a) // s) for a, b, s in zip(start, stop, step)))


def _infer_pad(node, ins):
    before, after = _per_axis(node, ins[0], ("before", "after"))
    return TensorInfo(tuple(d + a + b for d, a, b in zip(ins[0].shape, before, after)))


def _infer_channel_shuffle(node, ins):
    info = _elementwise([])(node, ins)
    if info.shape[-1] % _attr(node, "groups"):
        raise _fail(node, f"groups must divide the {info.shape[-1]} channels")
    return info


AXES = Ints(None)
register(
    "strided_slice",
    _infer_slice,
    lambda node: (
        lambda x, out=None: ops.strided_slice(x, _attr(node, "start"), _attr(node, "stop"), _attr(node, "step"))
    ),
    attrs={"start": AXES, "stop": Ints(None, minimum=1), "step": Ints(None, minimum=1)},
)
register(
    "pad",
    _infer_pad,
    lambda node: lambda x, out=None: ops.pad(x, _attr(node, "before"), _attr(node, "after"), _attr(node, "value")),
    attrs={"before": AXES, "after": AXES, "value": Float(-math.inf, 0.0)},
)
register(
    "channel_shuffle",
    _infer_channel_shuffle,
    lambda node: lambda x, out=None: ops.channel_shuffle(x, _attr(node, "groups")),
    attrs={"groups": Int(1)},
)


def _infer_add(node, ins):
    if ins[0] != ins[1] or ins[0].packed:
        raise _fail(node, f"adds two float tensors of one shape, got {ins[0]} and {ins[1]}")
    return ins[0]


register("add", _infer_add, lambda node: lambda a, b, out=None: ops.add(a, b), arity=(2, 2), channels=_input_channels)


def _infer_concat(node, ins):
    if any(i.packed or i.shape[:-1] != ins[0].shape[:-1] for i in ins):
        raise _fail(node, f"concatenates float tensors that differ only in channels, got {', '.join(map(str, ins))}")
    return TensorInfo(ins[0].shape[:-1] + (sum(i.shape[-1] for i in ins),))


def _compile_concat(node):
    return Bound(lambda ins, out: lambda: np.concatenate(ins, axis=-1, out=out))


def _concat_channels(node, in_channels):
    return None if None in in_channels else sum(in_channels)


register("concat", _infer_concat, _compile_concat, arity=(2, 64), channels=_concat_channels)


# ---- pooling and reshaping ----------------------------------------------------------------------


def _pool(kind):
    def infer(node, ins):
        h, w, c = _float_map(node, ins[0]).shape
        k, p, ceil = _attr(node, "kernel"), _attr(node, "padding"), _attr(node, "ceil_mode")
        s = _attr(node, "stride") or k
        if 2 * p[0] > k[0] or 2 * p[1] > k[1]:
            raise _fail(node, "padding must be at most half the kernel")
        try:
            return TensorInfo(
                (
                    _pooled_size(h, k[0], s[0], p[0], ceil, node.name),
                    _pooled_size(w, k[1], s[1], p[1], ceil, node.name),
                    c,
                )
            )
        except ValueError as exc:
            raise _fail(node, str(exc)) from None

    def compile_(node):
        k = _attr(node, "kernel")
        common = dict(
            stride=_attr(node, "stride") or k, padding=_attr(node, "padding"), ceil_mode=_attr(node, "ceil_mode")
        )
        if kind == "avg":
            common["count_include_pad"] = _attr(node, "count_include_pad")
        return Bound(lambda ins, out: ops.float_ops.bind_pool2d(kind, ins[0], k, out=out, **common)[0])

    return infer, compile_


POOL_ATTRS = {
    "kernel": Ints(2, minimum=1),
    "stride": Ints(2, minimum=1, default=None),  # None: the kernel
    "padding": Ints(2, default=[0, 0]),
    "ceil_mode": Bool(False),
}
register("avg_pool2d", *_pool("avg"), attrs=dict(POOL_ATTRS, count_include_pad=Bool(True)))
register("max_pool2d", *_pool("max"), attrs=POOL_ATTRS)


def _compile_global_avg_pool(node):
    return Bound(lambda ins, out: ops.float_ops.bind_global_avg_pool(ins[0], out)[0])


register(
    "global_avg_pool", lambda node, ins: TensorInfo((_float_map(node, ins[0]).shape[-1],)), _compile_global_avg_pool
)


def _infer_flatten(node, ins):
    h, w, c = _float_map(node, ins[0]).shape
    return TensorInfo((h * w * c,))


def _compile_flatten(node):
    # Always a copy: the executor recycles its input's buffer, which a view would still share.
    if _attr(node, "order") == "hwc":
        return lambda x, out=None: x.reshape(x.shape[0], -1).copy()
    # PyTorch flattens NCHW: channel-major, so a following Linear's weights keep their layout.
    return lambda x, out=None: x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1).copy()


# chw: PyTorch's order, so a following Linear's weights keep their layout.
register("flatten", _infer_flatten, _compile_flatten, attrs={"order": Choice(("chw", "hwc"), "chw")})


# ---- docs ---------------------------------------------------------------------------------------


def attribute_table() -> str:
    """The op set's attributes as a Markdown table (docs/file-format.md holds a copy, which a
    test keeps equal): `python -c "from xnorinfer.graph.opset import attribute_table as t; print(t())"`."""
    rows = ["| op | attribute | type and range | default |", "| --- | --- | --- | --- |"]
    for op, spec in OPS.items():
        for key, attr in spec.attrs.items():
            rows.append(f"| `{op}` | `{key}` | {attr.type_text()} | {attr.default_text().replace('default ', '')} |")
        if not spec.attrs:
            rows.append(f"| `{op}` | (none) | | |")
    return "\n".join(rows)


# ---- whole-graph checks -------------------------------------------------------------------------


def infer_shapes(graph, input_shape=None) -> dict[str, TensorInfo]:
    """Checks every node and returns the TensorInfo of every tensor; raises GraphError."""
    shape = tuple(input_shape or graph.input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d >= 1 for d in shape):
        raise GraphError(f"graph input shape must be (H, W, C) positive ints, got {shape}")
    infos = {graph.input: TensorInfo(shape)}
    names = {graph.input}
    for node in graph.nodes:
        spec = OPS.get(node.op)
        if spec is None:
            raise GraphError(f"node {node.name!r}: unknown op {node.op!r}")
        if node.output in names:
            raise GraphError(f"node {node.name!r}: tensor {node.output!r} is written twice")
        if not spec.arity[0] <= len(node.inputs) <= spec.arity[1]:
            raise _fail(node, f"takes {spec.arity[0]}..{spec.arity[1]} inputs, got {len(node.inputs)}")
        missing = [i for i in node.inputs if i not in infos]
        if missing:
            raise _fail(node, f"reads {missing} before anything writes them")
        check_attrs(node)
        unknown = set(node.params) - set(spec.required) - set(spec.optional)
        absent = set(spec.required) - set(node.params)
        if unknown or absent:
            raise _fail(node, f"unexpected parameters {sorted(unknown)}, missing {sorted(absent)}")
        infos[node.output] = spec.infer(node, [infos[i] for i in node.inputs])
        names.add(node.output)
    if graph.output not in infos:
        raise GraphError(f"graph output {graph.output!r} is not written by any node")
    return infos

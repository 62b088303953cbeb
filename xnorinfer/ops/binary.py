"""Binary layers: sign bit packing and XNOR-popcount convolution / dense on packed activations.

Packed layout: NHWC with the channel axis replaced by words; see `pack_signs`. A set bit is -1,
a clear bit +1, and x packs as -1 iff x + bias < 0, so +0.0 and -0.0 both become +1 (PyTorch's
sign(0) = 0 has no 1-bit form; exact zeros are rare in float activations). With
zero_to="minus_one" x packs as -1 iff x + bias <= 0: for a sign input that is >= 0 (a ReLU
output), PyTorch's {0, 1} activations are exactly (1 + S) / 2 of those signs S."""

from __future__ import annotations

import numpy as np

from .. import _core
from . import _validate as check

PAD_VALUES = ("zero", "one", "minus_one")
_PAD_TAP = {"zero": 0, "one": 1, "minus_one": -1}  # the value of a padded tap, as the kernel takes it
ZERO_TO = tuple(_core.ZERO_TO)  # the sign an exact zero x + bias packs as


def zero_to_code(zero_to, name="zero_to") -> int:
    """The kernels' code of a zero_to value (0 for "one", 1 for "minus_one"); raises ValueError."""
    if not isinstance(zero_to, str) or zero_to not in ZERO_TO:
        raise ValueError(f"{name} must be one of {ZERO_TO}, got {zero_to!r}")
    return _core.ZERO_TO[zero_to]


def packed_words(channels: int, groups: int = 1) -> int:
    """uint64 words per pixel for `channels` channels in `groups` groups."""
    if channels < 1 or groups < 1 or channels % groups:
        raise ValueError(f"channels ({channels}) must be a positive multiple of groups ({groups})")
    return groups * (-(-(channels // groups) // 64))


def pack_signs(x: np.ndarray, bias=None, groups: int = 1, out=None, *, zero_to: str = "one") -> np.ndarray:
    """Pack the signs of x (or of x + bias: ReActNet's RSign) along the last axis.

    x: float32 (..., C). Returns uint64 (..., packed_words(C, groups)): each group's channels start
    a new word, channel c of a group sits in bit c % 64 of word c // 64, unused bits are 0; a set
    bit is -1. zero_to="one": -1 iff x + bias < 0 (+0.0 and -0.0 pack as +1); "minus_one": -1 iff
    x + bias <= 0 (both zeros pack as -1, positive denormals as +1). Decided exactly on the float
    sum: rounding keeps its sign, and it is zero only when x = -bias. NaN raises ValueError.
    `out`, if given, is a C-contiguous uint64 array of that shape to write into."""
    run, out = bind_pack_signs(x, bias, groups, out, zero_to=zero_to)
    run()
    return out


def bind_pack_signs(x: np.ndarray, bias=None, groups: int = 1, out=None, *, zero_to: str = "one"):
    """`pack_signs` checked once: returns (run, out), where run() packs x's current values into
    out. The graph executor binds each layer to its buffers once and then only calls run()."""
    x = check.tensor(x, "x", np.float32, tuple(range(1, 9)))
    c = x.shape[-1]
    words = packed_words(c, groups)
    bias = check.channel_vector(bias, "bias", c)
    mode = zero_to_code(zero_to)
    out = check.output(out, x.shape[:-1] + (words,), np.uint64)
    rows, packed = x.reshape(-1, c), out.reshape(-1, words)

    def run():
        nans = _core.pack_signs(rows, bias, groups, mode, packed)
        if nans:
            raise ValueError(f"x contains {nans} NaN value(s): their sign is undefined")

    return run, out


def unpack_signs(packed: np.ndarray, channels: int, groups: int = 1) -> np.ndarray:
    """Inverse of `pack_signs`: float32 (..., channels) of +1 and -1."""
    packed = check.tensor(packed, "packed", np.uint64, tuple(range(1, 9)))
    words = packed_words(channels, groups)
    if packed.shape[-1] != words:
        raise ValueError(f"{channels} channels in {groups} group(s) pack into {words} words, got {packed.shape[-1]}")
    out = np.empty(packed.shape[:-1] + (channels,), dtype=np.float32)
    _core.unpack_signs(packed.reshape(-1, words), groups, out.reshape(-1, channels))
    return out


class BinaryConvWeights:
    """Weights of a binary convolution: 1 bit each, laid out once for the micro-kernels.

    `packed` (the storage form) is uint64 (out_channels, kh, kw, words per group): the signs of
    each output channel's weights packed along its input channels, as `pack_signs` does."""

    def __init__(self, packed: np.ndarray, in_channels: int, groups: int = 1):
        packed = check.tensor(packed, "packed weights", np.uint64, 4)
        o, kh, kw, words = packed.shape
        if 0 in packed.shape:
            raise ValueError(f"packed weights have an empty dimension: {packed.shape}")
        if groups < 1 or in_channels % groups or o % groups:
            raise ValueError(f"groups ({groups}) must divide in_channels ({in_channels}) and out_channels ({o})")
        if words != packed_words(in_channels // groups):
            raise ValueError(
                f"{in_channels // groups} input channels per group pack into "
                f"{packed_words(in_channels // groups)} words, weights have {words}"
            )
        cg = in_channels // groups
        if _tail_bits_set(packed, cg, 1):
            raise ValueError("packed weights have bits set past the last input channel")
        self.packed = packed
        self.in_channels, self.out_channels, self.groups = in_channels, o, groups
        self.kernel_size = (kh, kw)
        self._blocked = np.empty(_core.bconv_blocked_words(o, groups, cg, kh, kw), np.uint64)
        self._tap_popcount = np.empty(kh * kw * o, np.int32)
        _core.bconv_prepare_weights(packed.reshape(o, -1), groups, cg, kh, kw, self._blocked, self._tap_popcount)

    @classmethod
    def from_float(cls, weight: np.ndarray, groups: int = 1) -> BinaryConvWeights:
        """From latent float weights in PyTorch layout (O, C / groups, kh, kw): sign(w), w < 0 -> -1."""
        weight = check.tensor(weight, "weight", np.float32, 4, finite=True)
        ohwi = np.ascontiguousarray(weight.transpose(0, 2, 3, 1))
        return cls(pack_signs(ohwi), weight.shape[1] * groups, groups)

    def to_float(self) -> np.ndarray:
        """The +-1 weights in PyTorch layout (O, C / groups, kh, kw)."""
        ohwi = unpack_signs(self.packed, self.in_channels // self.groups)
        return np.ascontiguousarray(ohwi.transpose(0, 3, 1, 2))

    def __repr__(self) -> str:
        kh, kw = self.kernel_size
        return (
            f"{type(self).__name__}({self.out_channels}x{self.in_channels // self.groups}x{kh}x{kw}"
            f", groups={self.groups})"
        )


class BinaryDenseWeights(BinaryConvWeights):
    """Weights of a binary dense layer: a 1x1 binary convolution over (batch, 1, 1, words)."""

    def __init__(self, packed: np.ndarray, in_features: int):
        packed = check.tensor(packed, "packed weights", np.uint64, 2)
        super().__init__(packed.reshape(packed.shape[0], 1, 1, packed.shape[1]), in_features)
        self.packed = packed

    @classmethod
    def from_float(cls, weight: np.ndarray) -> BinaryDenseWeights:
        """From latent float weights in PyTorch layout (out_features, in_features)."""
        weight = check.tensor(weight, "weight", np.float32, 2, finite=True)
        return cls(pack_signs(weight), weight.shape[1])

    def to_float(self) -> np.ndarray:
        return unpack_signs(self.packed, self.in_channels)


def bconv2d(
    x: np.ndarray,
    weights: BinaryConvWeights,
    stride=1,
    padding=0,
    pad_value: str = "zero",
    scale=None,
    bias=None,
    residual=None,
    rprelu=None,
    out=None,
) -> np.ndarray:
    """Binary convolution of packed activations, returning float32 (N, Ho, Wo, O).

    out = act(scale[o] * dot + bias[o] + residual), dot the +-1 dot product over the window and
    act RPReLU when `rprelu = (gamma, slope, zeta)`: PReLU(v - gamma, slope) + zeta per channel.
    pad_value 'zero': a padded tap contributes 0 (PyTorch F.conv2d on a +-1 tensor padded with 0);
    'one': padded taps are +1; 'minus_one': they are -1 (the {0, 1} activations (1 + S) / 2 of
    pack_signs(zero_to="minus_one") padded with 0). padding: int, (vertical, horizontal) or (top, bottom, left, right).
    `out`, if given, is a float32 array of the output's shape to write into: C-contiguous, or a
    channel slice big[..., c0:c1] of a C-contiguous NHWC array (how a concat is built in place)."""
    run, out = bind_bconv2d(x, weights, stride, padding, pad_value, scale, bias, residual, rprelu, out)
    run()
    return out


def bind_bconv2d(
    x: np.ndarray,
    weights: BinaryConvWeights,
    stride=1,
    padding=0,
    pad_value: str = "zero",
    scale=None,
    bias=None,
    residual=None,
    rprelu=None,
    out=None,
    packed=None,
    first_channel=0,
    pack_bias=None,
    float_out=True,
    pack_zero_to="one",
):
    """`bconv2d` checked once: returns (run, out), where run() convolves x's current bits into out
    (the arguments are bound to these arrays; see `bind_pack_signs`).

    `packed`: also write the next layer's input, pack_signs(out, pack_bias, zero_to=pack_zero_to),
    from the same values into channels [first_channel, first_channel + O) of this uint64
    (N, Ho, Wo, words) array. A word this call starts in the middle of (first_channel not a
    multiple of 64) gets its bits ORed into what is there; every other word it touches is stored
    whole, zeros past its last channel: a concat's parts pack one array together when run in
    channel order. With float_out=False only `packed` is written (out is then None): the float
    values never reach memory."""
    x = check.tensor(x, "x", np.uint64, 4)
    if not isinstance(weights, BinaryConvWeights):
        raise TypeError(f"weights must be BinaryConvWeights, got {type(weights).__name__}")
    if pad_value not in PAD_VALUES:
        raise ValueError(f"pad_value must be one of {PAD_VALUES}, got {pad_value!r}")
    n, h, w, words = x.shape
    words_needed = packed_words(weights.in_channels, weights.groups)
    if words != words_needed:
        raise ValueError(
            f"x has {words} words per pixel; weights for {weights.in_channels} input channels in "
            f"{weights.groups} group(s) need {words_needed}"
        )
    if check.scanning() and _tail_bits_set(x, weights.in_channels // weights.groups, weights.groups):
        raise ValueError("x has bits set past the last channel of a group: not packed by pack_signs?")
    kh, kw = weights.kernel_size
    sh, sw = check.positive_pair(stride, "stride")
    pt, pb, pl, pr = check.padding4(padding)
    ho = check.output_size(h, kh, sh, pt, pb, "bconv2d height")
    wo = check.output_size(w, kw, sw, pl, pr, "bconv2d width")
    o = weights.out_channels
    if float_out:
        out, out_stride = _channel_slice(out, (n, ho, wo, o))
    elif packed is None:
        raise ValueError("float_out=False needs a packed output")
    else:
        out, out_stride = None, o
    if packed is not None:
        packed = check.tensor(packed, "packed", np.uint64, 4)
        if packed.shape[:3] != (n, ho, wo) or not 0 <= first_channel <= 64 * packed.shape[3] - o:
            raise ValueError(
                f"packed {packed.shape} cannot hold channels {first_channel}..{first_channel + o} "
                f"of an ({n}, {ho}, {wo}) output"
            )
        if weights.groups != 1:
            raise ValueError("a packed output is for convolutions without groups")
        pack_bias = check.channel_vector(pack_bias, "pack_bias", o)
    pack_mode = zero_to_code(pack_zero_to, "pack_zero_to")
    if n == 0:
        return (lambda: None), out
    if residual is not None:
        residual = check.tensor(residual, "residual", np.float32, 4, finite=True)
        if residual.shape != (n, ho, wo, o):
            raise ValueError(f"residual must have the output's shape {(n, ho, wo, o)}, got {residual.shape}")
        if out is not None and np.may_share_memory(residual, out):
            raise ValueError("out must not overlap residual (the kernel reads one while writing the other)")
    gamma, slope, zeta = _rprelu_params(rprelu, o)
    geometry = dict(
        n=n,
        h=h,
        w=w,
        c=weights.in_channels,
        groups=weights.groups,
        o=o,
        kh=kh,
        kw=kw,
        sh=sh,
        sw=sw,
        pad_t=pt,
        pad_b=pb,
        pad_l=pl,
        pad_r=pr,
        pad_value=_PAD_TAP[pad_value],
        ho=ho,
        wo=wo,
    )
    return _core.BConvCall(
        geometry=geometry,
        x=x.reshape(-1),
        blocked=weights._blocked,
        tap_popcount=weights._tap_popcount,
        out=out,
        out_stride=out_stride,
        scale=check.channel_vector(scale, "scale", o),
        bias=check.channel_vector(bias, "bias", o),
        residual=None if residual is None else residual.reshape(-1),
        rp_gamma=gamma,
        rp_slope=slope,
        rp_zeta=zeta,
        packed=None if packed is None else packed.reshape(-1, packed.shape[3]),
        first_bit=first_channel,
        pack_bias=pack_bias,
        pack_zero_to=pack_mode,
    ), out


def bind_bconv2d_block(first, rest):
    """Runs the bound convolution `first`, then the bound pointwise ones `rest` that read its output
    (as their packed input and their residual), tile by tile: first's output stays in cache and
    never reaches memory (with too few tiles for the threads, they run one after the other). The
    same values and bits as calling first, then each of rest. first and rest come from
    bind_bconv2d: first without groups, with a float output (its own array) and its packed signs
    from channel 0; rest 1x1, without stride, padding or groups, with first's channels in and out,
    reading those signs as x and those floats as residual."""
    if not isinstance(first, _core.BConvCall) or not all(isinstance(r, _core.BConvCall) for r in rest):
        raise TypeError("bind_bconv2d_block takes convolutions bound by bind_bconv2d")
    if not 1 <= len(rest) <= _core.BLOCK_MAX_REST:
        raise ValueError(f"a block has 1 to {_core.BLOCK_MAX_REST} pointwise convolutions, got {len(rest)}")
    a, head = first.geometry, first
    if a["groups"] != 1 or head.out is None or head.out_stride != a["o"] or head.packed is None or head.first_bit:
        raise ValueError("a block's first convolution has no groups, a float output and a packed output")
    for r in rest:
        b = r.geometry
        if (
            (b["n"], b["h"], b["w"], b["c"], b["o"]) != (a["n"], a["ho"], a["wo"], a["o"], a["o"])
            or (b["groups"], b["kh"], b["kw"], b["sh"], b["sw"]) != (1,) * 5
            or any(b[k] for k in ("pad_t", "pad_b", "pad_l", "pad_r"))
        ):
            raise ValueError(f"{b} is not a pointwise convolution of the block's output {a}")
        if not check.same_memory(r.x, head.packed) or r.residual is None or not check.same_memory(r.residual, head.out):
            raise ValueError("a block's pointwise convolutions read its first one's signs and floats")
    rest = list(rest)
    return lambda: _core.bconv2d_block(first, rest)


def bdense(x: np.ndarray, weights: BinaryDenseWeights, scale=None, bias=None, residual=None, rprelu=None) -> np.ndarray:
    """Binary dense layer on packed rows x (N, words): float32 (N, out_features), epilogue as bconv2d."""
    x = check.tensor(x, "x", np.uint64, 2)
    if not isinstance(weights, BinaryDenseWeights):
        raise TypeError(f"weights must be BinaryDenseWeights, got {type(weights).__name__}")
    if residual is not None:
        residual = check.tensor(residual, "residual", np.float32, 2)
        residual = residual.reshape(residual.shape[0], 1, 1, residual.shape[1])
    out = bconv2d(
        x.reshape(x.shape[0], 1, 1, x.shape[1]), weights, scale=scale, bias=bias, residual=residual, rprelu=rprelu
    )
    return out.reshape(x.shape[0], weights.out_channels)


def _tail_bits_set(packed: np.ndarray, channels_per_group: int, groups: int) -> bool:
    """True if any word past a group's last channel has a bit set (such bits would count)."""
    if channels_per_group % 64 == 0:
        return False
    words = packed.shape[-1] // groups
    last = packed.reshape(-1, groups, words)[:, :, -1]
    return bool(np.any(last >> np.uint64(channels_per_group % 64)))


def _channel_slice(out, shape) -> tuple[np.ndarray, int]:
    """(out, floats between its pixels): a new array, or a given one that is C-contiguous or a
    channel slice of a C-contiguous NHWC array (its pixels evenly spaced)."""
    if out is None:
        return np.empty(shape, dtype=np.float32), shape[3]
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != tuple(shape):
        raise ValueError(
            f"out must be a float32 array of shape {tuple(shape)}, got "
            f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}"
        )
    n, ho, wo, o = shape
    item = out.itemsize
    if n == 0:
        return out, o
    pixel = out.strides[2] if wo > 1 else out.strides[1] if ho > 1 else out.strides[0] if n > 1 else o * item
    evenly = (
        (out.strides[3] == item or o == 1)
        and pixel >= o * item
        and pixel % item == 0
        and (ho == 1 or out.strides[1] == pixel * wo)
        and (n == 1 or out.strides[0] == pixel * wo * ho)
    )
    if not evenly or not out.flags.writeable:
        raise ValueError("out must be writeable and C-contiguous, or a channel slice of a C-contiguous NHWC array")
    return out, pixel // item


def _rprelu_params(rprelu, channels: int):
    if rprelu is None:
        return None, None, None
    if len(rprelu) != 3:
        raise ValueError("rprelu must be a (gamma, slope, zeta) triple")
    return tuple(
        check.channel_vector(v, name, channels)
        for v, name in zip(rprelu, ("rprelu gamma", "rprelu slope", "rprelu zeta"))
    )

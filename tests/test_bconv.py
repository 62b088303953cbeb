import numpy as np
import pytest
from helpers import run_everywhere
from helpers.reference import conv2d_nhwc, epilogue, sign_pm1
from hypothesis import given, settings
from hypothesis import strategies as st

from xnorinfer.ops import BinaryConvWeights, BinaryDenseWeights, bconv2d, bdense, pack_signs, unpack_signs

CHANNELS = [1, 3, 31, 32, 63, 64, 65, 127, 200, 520]
PAD_TAP = {"zero": 0.0, "one": 1.0, "minus_one": -1.0}  # what a padded tap of the +-1 input is


def random_pm1(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


def check_everywhere(fn, want, exact=True):
    """fn() under every ISA and thread count equals `want`, and all runs are bit-identical."""
    results = run_everywhere(fn)
    first = next(iter(results.values()))
    for config, got in results.items():
        np.testing.assert_array_equal(got, first, err_msg=f"{config} differs from {next(iter(results))}")
        if exact:
            np.testing.assert_array_equal(got, want, err_msg=str(config))
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4, err_msg=str(config))


@st.composite
def conv_cases(draw, channels=tuple(CHANNELS[:8]), pad_values=tuple(PAD_TAP)):
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    cg = draw(st.sampled_from(channels))
    og = draw(st.integers(1, 40))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, kh - pads[0] - pads[1]), 9))
    w = draw(st.integers(max(1, kw - pads[2] - pads[3]), 9))
    n = draw(st.integers(1, 3))
    pad_value = draw(st.sampled_from(pad_values))
    seed = draw(st.integers(0, 2**32 - 1))
    return dict(
        n=n,
        h=h,
        w=w,
        c=cg * groups,
        o=og * groups,
        k=(kh, kw),
        stride=(sh, sw),
        pads=pads,
        groups=groups,
        pad_value=pad_value,
        seed=seed,
    )


def make_conv(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["c"])).astype(np.float32)
    w = rng.standard_normal((case["o"], case["c"] // case["groups"]) + case["k"]).astype(np.float32)
    return rng, x, w


def reference_dot(case, x, w):
    return conv2d_nhwc(
        sign_pm1(x), sign_pm1(w), case["stride"], case["pads"], case["groups"], pad_value=PAD_TAP[case["pad_value"]]
    )


@settings(max_examples=80, deadline=None)
@given(conv_cases())
def test_bconv2d_equals_float_reference(case):
    _, x, w = make_conv(case)
    weights = BinaryConvWeights.from_float(w, groups=case["groups"])
    xp = pack_signs(x, groups=case["groups"])
    want = reference_dot(case, x, w)
    check_everywhere(lambda: bconv2d(xp, weights, case["stride"], case["pads"], case["pad_value"]), want)


@settings(max_examples=80, deadline=None)
@given(conv_cases(channels=(1, 3, 63, 65, 200), pad_values=("minus_one",)))
def test_bconv2d_minus_one_padding_equals_float_reference(case):
    """pad_value="minus_one": a padded tap contributes -1 * w (the kernel reads +1 there and takes
    twice the weights' popcount back): kernels 1-5, strides 1-3, each border padded 0-2 on its own,
    groups, batches; every ISA, 1 and 2 threads, bit for bit."""
    _, x, w = make_conv(case)
    weights = BinaryConvWeights.from_float(w, groups=case["groups"])
    xp = pack_signs(x, groups=case["groups"])
    want = reference_dot(case, x, w)
    check_everywhere(lambda: bconv2d(xp, weights, case["stride"], case["pads"], "minus_one"), want)


@settings(max_examples=60, deadline=None)
@given(conv_cases(channels=(1, 3, 63, 65, 200), pad_values=("zero",)))
def test_zero_one_activations_run_exactly_as_half_a_minus_one_padded_conv(case):
    """What the two modes are for: PyTorch's sign of a ReLU output is H in {0, 1} (sign(0) = 0), and
    F.conv2d(H, W) zero-padded is 0.5 * (bconv(S) + sum of W) with S = 2H - 1 =
    pack_signs(x, zero_to="minus_one") and padded taps -1 (a padded 0 of H): the epilogue's scale
    0.5 and bias 0.5 * sum(W) per output channel, exact; every ISA, 1 and 2 threads."""
    rng, x, w = make_conv(case)
    x = np.where(x > 0, x, np.where(rng.random(x.shape) < 0.5, 0.0, -0.0)).astype(np.float32)  # a ReLU's zeros
    h = np.sign(x)
    w_pm1 = sign_pm1(w)
    want = conv2d_nhwc(h, w_pm1, case["stride"], case["pads"], case["groups"], pad_value=0.0)
    weights = BinaryConvWeights.from_float(w, groups=case["groups"])
    scale = np.full(case["o"], 0.5, np.float32)
    bias = (0.5 * w_pm1.reshape(case["o"], -1).sum(axis=1)).astype(np.float32)
    s = pack_signs(x, groups=case["groups"], zero_to="minus_one")
    check_everywhere(
        lambda: bconv2d(s, weights, case["stride"], case["pads"], "minus_one", scale=scale, bias=bias), want
    )


def test_padding_values_differ_only_at_borders():
    x = np.ones((1, 4, 4, 5), dtype=np.float32)
    weights = BinaryConvWeights.from_float(np.ones((1, 5, 3, 3), dtype=np.float32))
    minus = bconv2d(pack_signs(x), weights, padding=1, pad_value="minus_one")[0, :, :, 0]
    np.testing.assert_array_equal(minus, [[-5, 15, 15, -5], [15, 45, 45, 15], [15, 45, 45, 15], [-5, 15, 15, -5]])
    with pytest.raises(ValueError, match="pad_value"):
        bconv2d(pack_signs(x), weights, padding=1, pad_value="minus")


@settings(max_examples=40, deadline=None)
@given(conv_cases(), st.booleans(), st.booleans())
def test_bconv2d_fused_epilogue(case, with_residual, with_rprelu):
    rng, x, w = make_conv(case)
    o = case["o"]
    weights = BinaryConvWeights.from_float(w, groups=case["groups"])
    xp = pack_signs(x, groups=case["groups"])
    dot = reference_dot(case, x, w)
    scale = rng.uniform(0.01, 2, o).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    residual = rng.standard_normal(dot.shape).astype(np.float32) if with_residual else None
    rprelu = tuple(rng.standard_normal(o).astype(np.float32) for _ in range(3)) if with_rprelu else None
    want = epilogue(dot, scale, bias, residual, rprelu)
    check_everywhere(
        lambda: bconv2d(
            xp,
            weights,
            case["stride"],
            case["pads"],
            case["pad_value"],
            scale=scale,
            bias=bias,
            residual=residual,
            rprelu=rprelu,
        ),
        want,
        exact=False,
    )


@pytest.mark.parametrize("c", CHANNELS)
def test_bconv2d_awkward_channels_on_a_large_map(c):
    # 3x3 with padding 1 over a map larger than a pixel tile, 70 outputs: every kernel tail.
    rng = np.random.default_rng(c)
    x = rng.standard_normal((2, 13, 11, c)).astype(np.float32)
    w = rng.standard_normal((70, c, 3, 3)).astype(np.float32)
    weights = BinaryConvWeights.from_float(w)
    want = conv2d_nhwc(sign_pm1(x), sign_pm1(w), (1, 1), (1, 1, 1, 1))
    check_everywhere(lambda: bconv2d(pack_signs(x), weights, 1, 1), want)


def test_bconv2d_reactnet_sized_layer_with_stride():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 28, 28, 128)).astype(np.float32)
    w = rng.standard_normal((256, 128, 3, 3)).astype(np.float32)
    weights = BinaryConvWeights.from_float(w)
    want = conv2d_nhwc(sign_pm1(x), sign_pm1(w), (2, 2), (1, 1, 1, 1))
    check_everywhere(lambda: bconv2d(pack_signs(x), weights, 2, 1), want)


def test_zero_padding_differs_from_one_padding_only_at_borders():
    x = np.ones((1, 4, 4, 5), dtype=np.float32)
    weights = BinaryConvWeights.from_float(np.ones((1, 5, 3, 3), dtype=np.float32))
    zero = bconv2d(pack_signs(x), weights, padding=1, pad_value="zero")[0, :, :, 0]
    one = bconv2d(pack_signs(x), weights, padding=1, pad_value="one")[0, :, :, 0]
    np.testing.assert_array_equal(one, np.full((4, 4), 45.0))
    np.testing.assert_array_equal(zero, [[20, 30, 30, 20], [30, 45, 45, 30], [30, 45, 45, 30], [20, 30, 30, 20]])


def test_weights_round_trip_to_float():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((7, 65, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(BinaryConvWeights.from_float(w).to_float(), sign_pm1(w))
    d = rng.standard_normal((5, 200)).astype(np.float32)
    np.testing.assert_array_equal(BinaryDenseWeights.from_float(d).to_float(), sign_pm1(d))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.sampled_from(CHANNELS), st.integers(1, 75), st.integers(0, 2**32 - 1), st.booleans())
def test_bdense_equals_float_reference(n, i, o, seed, with_epilogue):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, i)).astype(np.float32)
    w = rng.standard_normal((o, i)).astype(np.float32)
    weights = BinaryDenseWeights.from_float(w)
    dot = sign_pm1(x).astype(np.float64) @ sign_pm1(w).T.astype(np.float64)
    if with_epilogue:
        scale, bias = rng.uniform(0.1, 1, o).astype(np.float32), rng.standard_normal(o).astype(np.float32)
        rprelu = tuple(rng.standard_normal(o).astype(np.float32) for _ in range(3))
        check_everywhere(
            lambda: bdense(pack_signs(x), weights, scale, bias, rprelu=rprelu),
            epilogue(dot, scale, bias, None, rprelu),
            exact=False,
        )
    else:
        check_everywhere(lambda: bdense(pack_signs(x), weights), dot)


@pytest.mark.parametrize("n, side", [(1, 5), (2, 4), (3, 1)])
def test_bconv2d_writes_into_a_channel_slice(n, side):
    # How a concat of binary convs is built in place: each writes its channels of the wide tensor.
    rng = np.random.default_rng(side)
    x = pack_signs(rng.standard_normal((n, side, side, 70)).astype(np.float32))
    weights = BinaryConvWeights.from_float(rng.standard_normal((9, 70, 3, 3)).astype(np.float32))
    residual = rng.standard_normal((n, side, side, 9)).astype(np.float32)
    want = bconv2d(x, weights, 1, 1, residual=residual)
    wide = np.full((n, side, side, 20), 7.0, np.float32)

    def fill():
        wide[...] = 7.0
        bconv2d(x, weights, 1, 1, residual=residual, out=wide[..., 5:14])
        return wide.copy()

    for got in run_everywhere(fill).values():
        np.testing.assert_array_equal(got[..., 5:14], want)
        assert (got[..., :5] == 7).all() and (got[..., 14:] == 7).all()


# ---- signs of the output packed by the convolution itself ---------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    cin=st.sampled_from(CHANNELS[:8]),
    o=st.sampled_from([1, 3, 63, 64, 65, 200, 520]),
    k=st.integers(1, 3),
    stride=st.integers(1, 2),
    offset_words=st.integers(0, 2),
    float_out=st.booleans(),
    with_residual=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_packed_output_equals_pack_signs_of_the_output(cin, o, k, stride, offset_words, float_out, with_residual, seed):
    """A convolution that packs its output for the next layer (at a word offset inside a wider
    packed tensor, as a concat's parts do) writes exactly pack_signs(out, bias) there, leaves the
    other words alone, and with float_out=False writes no floats at all; every ISA, 1 and 2 threads."""
    from xnorinfer.ops.binary import bind_bconv2d, packed_words

    rng = np.random.default_rng(seed)
    n, h, w = 2, 7, 6
    x = pack_signs(rng.standard_normal((n, h, w, cin)).astype(np.float32))
    weights = BinaryConvWeights.from_float(rng.standard_normal((o, cin, k, k)).astype(np.float32))
    scale = rng.random(o).astype(np.float32) + 0.1
    residual_shape = (n, (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1, o)
    residual = rng.standard_normal(residual_shape).astype(np.float32) if with_residual else None
    rprelu = tuple(rng.standard_normal(o).astype(np.float32) for _ in range(3))
    pack_bias = rng.standard_normal(o).astype(np.float32)
    args = dict(stride=stride, padding=k // 2, scale=scale, residual=residual, rprelu=rprelu)
    want_float = bconv2d(x, weights, **args)
    want_bits = pack_signs(want_float, pack_bias)
    words = offset_words + packed_words(o) + 1

    def run():
        packed = np.full(want_float.shape[:3] + (words,), 0xA5A5, np.uint64)  # words it must not touch
        call, out = bind_bconv2d(
            x, weights, packed=packed, first_channel=64 * offset_words, pack_bias=pack_bias, float_out=float_out, **args
        )
        call()
        return packed, out

    for config, (packed, out) in run_everywhere(run).items():
        np.testing.assert_array_equal(
            packed[..., offset_words : offset_words + packed_words(o)], want_bits, err_msg=str(config)
        )
        assert (packed[..., :offset_words] == 0xA5A5).all() and (packed[..., -1] == 0xA5A5).all()
        if float_out:
            np.testing.assert_array_equal(out, want_float, err_msg=str(config))
        else:
            assert out is None


def grid_epilogue(rng, o, shape, with_residual, with_rprelu):
    """Epilogue parameters on a coarse grid (scales +-1 and 0.5, integer biases, residuals and
    RPReLU shifts, slopes 0.5, 0 and -1) and pack biases in -3..3 with both zeros: every value is
    exact, and value + pack_bias is often exactly 0."""
    ints = lambda size: rng.integers(-3, 4, size).astype(np.float32)  # noqa: E731
    params = dict(
        scale=rng.choice(np.float32([1, -1, 0.5]), o),
        bias=np.where(rng.random(o) < 0.2, -0.0, ints(o)),
        residual=ints(shape) if with_residual else None,
        rprelu=(ints(o), rng.choice(np.float32([0.5, 0, -1]), o), ints(o)) if with_rprelu else None,
    )
    pack_bias = np.where(rng.random(o) < 0.2, -0.0, ints(o)).astype(np.float32)
    return {k: (v.astype(np.float32) if isinstance(v, np.ndarray) else v) for k, v in params.items()}, pack_bias


@settings(max_examples=60, deadline=None)
@given(
    cin=st.sampled_from([1, 3, 32, 63, 65, 200]),
    o=st.sampled_from([1, 3, 16, 63, 64, 65, 200]),
    k=st.integers(1, 3),
    stride=st.integers(1, 2),
    pad_value=st.sampled_from(list(PAD_TAP)),
    offset=st.sampled_from([0, 8, 13, 64, 72]),
    float_out=st.booleans(),
    with_residual=st.booleans(),
    with_rprelu=st.booleans(),
    zero_to=st.sampled_from(["one", "minus_one"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_packed_output_zero_to_at_exact_zeros(
    cin, o, k, stride, pad_value, offset, float_out, with_residual, with_rprelu, zero_to, seed
):
    """The convolution's own packer (its epilogue) with pack_zero_to: bit set iff value + pack_bias
    < 0 ("one") or <= 0 ("minus_one"), as NumPy says of the exact values, where that sum is often
    exactly 0; written after `offset` channels of a wider packed tensor (a concat's part: inside a
    word, on a byte or not), the words' tails zero; every ISA, 1 and 2 threads."""
    from xnorinfer.ops.binary import bind_bconv2d, packed_words

    rng = np.random.default_rng(seed)
    n, h, w = 2, 7, 6
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal((o, cin, k, k)).astype(np.float32)
    weights = BinaryConvWeights.from_float(wt)
    case = dict(stride=(stride, stride), pads=(k // 2,) * 4, groups=1, pad_value=pad_value)
    dot = reference_dot(case, x, wt)
    params, pack_bias = grid_epilogue(rng, o, dot.shape, with_residual, with_rprelu)
    want = epilogue(dot, **params)
    assert np.array_equal(want, want.astype(np.float32))  # the grid keeps every value exact
    lead = np.ones(dot.shape[:3] + (offset,), np.float32)  # the channels before this part: +1, bits clear
    want_bits = pack_signs(
        np.concatenate([lead, want.astype(np.float32)], axis=-1),
        np.concatenate([np.zeros(offset, np.float32), pack_bias]),
        zero_to=zero_to,
    )
    np.testing.assert_array_equal(unpack_signs(want_bits, offset + o)[..., offset:], sign_pm1(want, pack_bias, zero_to))

    def run():
        packed = np.zeros(dot.shape[:3] + (packed_words(offset + o),), np.uint64)
        call, out = bind_bconv2d(
            pack_signs(x),
            weights,
            stride,
            k // 2,
            pad_value,
            packed=packed,
            first_channel=offset,
            pack_bias=pack_bias,
            float_out=float_out,
            pack_zero_to=zero_to,
            **params,
        )
        call()
        return packed, out

    for config, (packed, out) in run_everywhere(run).items():
        np.testing.assert_array_equal(packed, want_bits, err_msg=str(config))
        if float_out:
            np.testing.assert_array_equal(out, want, err_msg=str(config))


@settings(max_examples=40, deadline=None)
@given(
    widths=st.lists(st.sampled_from([1, 3, 32, 63, 64, 65, 96, 200]), min_size=2, max_size=3),
    k=st.sampled_from([1, 3]),
    offset_words=st.integers(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_concat_parts_pack_one_tensor_in_channel_order(widths, k, offset_words, seed):
    """A concat's parts of any widths, run in channel order, pack the concatenation's signs into
    one array (a part starting inside a word ORs its bits in), over words holding garbage, and
    leave the words past it alone; every ISA, 1 and 2 threads."""
    from xnorinfer.ops.binary import bind_bconv2d, packed_words

    rng = np.random.default_rng(seed)
    n, h, w, cin = 2, 5, 6, 40
    x = pack_signs(rng.standard_normal((n, h, w, cin)).astype(np.float32))
    parts = [BinaryConvWeights.from_float(rng.standard_normal((o, cin, k, k)).astype(np.float32)) for o in widths]
    pack_bias = rng.standard_normal(sum(widths)).astype(np.float32)
    want_float = np.concatenate([bconv2d(x, p, padding=k // 2) for p in parts], axis=-1)
    want_bits = pack_signs(want_float, pack_bias)
    words = offset_words + packed_words(sum(widths)) + 1

    def run():
        packed = np.full((n, h, w, words), 0xA5A5A5A5A5A5A5A5, np.uint64)
        starts = np.cumsum([0] + widths)
        for p, start, stop in zip(parts, starts, starts[1:]):
            call, _ = bind_bconv2d(
                x,
                p,
                padding=k // 2,
                packed=packed,
                first_channel=64 * offset_words + int(start),
                pack_bias=pack_bias[start:stop],
                float_out=False,
            )
            call()
        return packed

    for config, packed in run_everywhere(run).items():
        np.testing.assert_array_equal(packed[..., offset_words : words - 1], want_bits, err_msg=str(config))
        assert (packed[..., :offset_words] == 0xA5A5A5A5A5A5A5A5).all()
        assert (packed[..., -1] == 0xA5A5A5A5A5A5A5A5).all(), config


@settings(max_examples=30, deadline=None)
@given(
    cin=st.sampled_from([3, 32, 64, 65]),
    o=st.sampled_from([1, 32, 63, 64, 200, 300]),
    k=st.sampled_from([1, 3]),
    stride=st.integers(1, 2),
    nrest=st.integers(1, 2),
    pad_value=st.sampled_from(list(PAD_TAP)),
    zero_to=st.sampled_from(["one", "minus_one"]),
    grid=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_block_equals_its_convolutions_one_after_the_other(cin, o, k, stride, nrest, pad_value, zero_to, grid, seed):
    """bind_bconv2d_block (a conv and the 1x1 convs reading its output as signs and residual,
    tile by tile) writes the same values and bits as the convolutions run in order, the 1x1 ones
    as the halves of a concat that also pack the next layer's input; with the first conv's padding
    and the packers' zero_to (grid: values where value + pack_bias is often exactly 0, so that
    zero_to decides bits); every ISA, 1 and 2 threads."""
    from xnorinfer.ops.binary import bind_bconv2d, bind_bconv2d_block, packed_words

    rng = np.random.default_rng(seed)
    n, h, w = 2, 17, 19  # stride 1: 14 tiles, run tiled; stride 2: 4, one after the other at 2 threads
    x = pack_signs(rng.standard_normal((n, h, w, cin)).astype(np.float32))

    ho, wo = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1

    def params(c_in, kernel):
        weights = BinaryConvWeights.from_float(rng.standard_normal((o, c_in, kernel, kernel)).astype(np.float32))
        if grid:
            return dict(weights=weights, **grid_epilogue(rng, o, (n, ho, wo, o), False, True)[0])
        return dict(
            weights=weights,
            scale=rng.random(o).astype(np.float32) + 0.1,
            bias=rng.standard_normal(o).astype(np.float32),
            rprelu=tuple(rng.standard_normal(o).astype(np.float32) for _ in range(3)),
        )

    first, rest = params(cin, k), [params(o, 1) for _ in range(nrest)]
    if grid:
        residual = rng.integers(-3, 4, (n, ho, wo, o)).astype(np.float32)
        sign_bias = grid_epilogue(rng, o, None, False, False)[1]
        next_bias = np.concatenate([grid_epilogue(rng, o, None, False, False)[1] for _ in range(nrest)])
    else:
        residual = rng.standard_normal((n, ho, wo, o)).astype(np.float32)
        sign_bias, next_bias = (
            rng.standard_normal(o).astype(np.float32),
            rng.standard_normal(nrest * o).astype(np.float32),
        )

    def run(fused):
        mid = np.zeros((n, ho, wo, o), np.float32)  # (bound before they hold values: none may be NaN)
        mid_bits = np.zeros((n, ho, wo, packed_words(o)), np.uint64)
        out = np.empty((n, ho, wo, nrest * o), np.float32)
        out_bits = np.empty((n, ho, wo, packed_words(nrest * o)), np.uint64)
        head, _ = bind_bconv2d(
            x,
            first["weights"],
            stride=stride,
            padding=k // 2,
            pad_value=pad_value,
            residual=residual,
            out=mid,
            packed=mid_bits,
            pack_bias=sign_bias,
            pack_zero_to=zero_to,
            **{key: first[key] for key in ("scale", "bias", "rprelu")},
        )
        tail = [
            bind_bconv2d(
                mid_bits,
                r["weights"],
                residual=mid,
                out=out[..., i * o : (i + 1) * o],
                packed=out_bits,
                first_channel=i * o,
                pack_bias=next_bias[i * o : (i + 1) * o],
                pack_zero_to=zero_to,
                **{key: r[key] for key in ("scale", "bias", "rprelu")},
            )[0]
            for i, r in enumerate(rest)
        ]
        if fused:
            bind_bconv2d_block(head, tail)()
        else:
            for call in [head] + tail:
                call()
        return out, out_bits

    want_out, want_bits = run(fused=False)
    for config, (out, bits) in run_everywhere(lambda: run(fused=True)).items():
        np.testing.assert_array_equal(out, want_out, err_msg=str(config))
        np.testing.assert_array_equal(bits, want_bits, err_msg=str(config))


def test_block_is_checked():
    from xnorinfer.ops.binary import bind_bconv2d, bind_bconv2d_block

    rng = np.random.default_rng(0)
    x = pack_signs(rng.standard_normal((1, 5, 5, 8)).astype(np.float32))
    conv3 = BinaryConvWeights.from_float(rng.standard_normal((8, 8, 3, 3)).astype(np.float32))
    conv1 = BinaryConvWeights.from_float(rng.standard_normal((8, 8, 1, 1)).astype(np.float32))
    bits = np.zeros((1, 5, 5, 1), np.uint64)
    head, mid = bind_bconv2d(x, conv3, padding=1, packed=bits, out=np.zeros((1, 5, 5, 8), np.float32))
    plain, _ = bind_bconv2d(x, conv3, padding=1, out=np.zeros((1, 5, 5, 8), np.float32))
    pointwise, _ = bind_bconv2d(bits, conv1, residual=mid)
    not_pointwise, _ = bind_bconv2d(bits, conv3, padding=1, residual=mid)
    with pytest.raises(TypeError, match="bound by bind_bconv2d"):
        bind_bconv2d_block(lambda: None, [pointwise])
    with pytest.raises(ValueError, match="packed output"):
        bind_bconv2d_block(plain, [pointwise])
    with pytest.raises(ValueError, match="not a pointwise convolution"):
        bind_bconv2d_block(head, [not_pointwise])
    with pytest.raises(ValueError, match="1 to 4"):
        bind_bconv2d_block(head, [])
    elsewhere, _ = bind_bconv2d(bits, conv1, residual=np.zeros((1, 5, 5, 8), np.float32))
    with pytest.raises(ValueError, match="read its first one's"):
        bind_bconv2d_block(head, [elsewhere])


@pytest.mark.parametrize("o", [16, 19, 3])  # vector lanes, lanes and a tail, a tail only
def test_a_nan_that_would_be_packed_is_refused(o, each_kernel_config):
    """An overflowing scale makes -inf, RPReLU's slope 0 turns it into NaN (-inf * 0): its sign is
    undefined, so packing it raises, on every ISA and thread count."""
    from xnorinfer.ops.binary import bind_bconv2d, packed_words

    x = pack_signs(np.ones((1, 3, 3, 8), np.float32))
    weights = BinaryConvWeights.from_float(-np.ones((o, 8, 1, 1), np.float32))  # every dot is -8
    zeros = np.zeros(o, np.float32)
    packed = np.zeros((1, 3, 3, packed_words(o)), np.uint64)
    call, _ = bind_bconv2d(x, weights, scale=np.full(o, 3e38, np.float32), rprelu=(zeros, zeros, zeros), packed=packed)
    with pytest.raises(ValueError, match="NaN"):
        call()


def test_packed_output_is_checked():
    from xnorinfer.ops.binary import bind_bconv2d

    rng = np.random.default_rng(0)
    x = pack_signs(rng.standard_normal((1, 4, 4, 8)).astype(np.float32))
    weights = BinaryConvWeights.from_float(rng.standard_normal((8, 8, 1, 1)).astype(np.float32))
    grouped = BinaryConvWeights.from_float(rng.standard_normal((8, 4, 1, 1)).astype(np.float32), groups=2)
    with pytest.raises(ValueError, match="without groups"):
        bind_bconv2d(
            pack_signs(np.ones((1, 4, 4, 8), np.float32), groups=2), grouped, packed=np.zeros((1, 4, 4, 1), np.uint64)
        )
    with pytest.raises(ValueError, match="cannot hold"):
        bind_bconv2d(x, weights, packed=np.zeros((1, 4, 3, 1), np.uint64))
    with pytest.raises(ValueError, match="needs a packed output"):
        bind_bconv2d(x, weights, float_out=False)

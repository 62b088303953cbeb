"""Float layers (xnorinfer.ops.float_ops) against plain-loop NumPy references.

The references below deliberately share no code with the implementation: they loop over output
positions and kernel taps on an explicitly zero-padded float64 tensor (convolution), count window
positions one by one (pooling divisors), or apply the float32 formula element by element. PyTorch's
pooling rules are encoded from its documentation: with ceil_mode the output length is
ceil((H + 2p - k) / s) + 1, less one when that last window would start at or past H + p; the
count_include_pad divisor counts window positions inside [-p, H + p), otherwise those inside [0, H).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_everywhere
from helpers.reference import sign_pm1
from hypothesis import given, settings
from hypothesis import strategies as st

from xnorinfer.ops import float_ops as F
from xnorinfer.ops.binary import pack_signs, unpack_signs

CHANNELS = [1, 3, 63, 65]
RTOL = 1e-5


# ---- helpers ------------------------------------------------------------------------------------


def rng_for(seed):
    return np.random.default_rng(seed)


def randn(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def check_output(out, shape, *inputs):
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    assert out.shape == tuple(shape)
    for a in inputs:
        assert not np.shares_memory(out, a), "output must be a new array"


def assert_close(out, ref, mag):
    """|out - ref| <= RTOL * magnitude, where magnitude bounds the terms summed (sum of |terms|)."""
    assert out.shape == ref.shape
    err = np.abs(out.astype(np.float64) - ref)
    tol = RTOL * mag + 1e-7
    bad = err > tol
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} values off; worst error {err.max():.3g}, "
        f"at tolerance {tol[np.unravel_index(np.argmax(err - tol), err.shape)]:.3g}"
    )


def ref_pool_size(size, k, s, p, ceil_mode):
    span = size + 2 * p - k
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + p:
        out -= 1
    return out


# ---- references ---------------------------------------------------------------------------------


def ref_conv2d(x, w, b, stride, pads, groups):
    """Loops over output pixels and kernel taps on a zero-padded float64 copy; returns (ref, mag)."""
    n, h, wd, c = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    pt, pb, pl, pr = pads
    sh, sw = stride
    xp = np.zeros((n, h + pt + pb, wd + pl + pr, c))
    xp[:, pt : pt + h, pl : pl + wd, :] = x
    ho = (h + pt + pb - kh) // sh + 1
    wo = (wd + pl + pr - kw) // sw + 1
    w64 = w.astype(np.float64)
    out = np.zeros((n, ho, wo, o))
    mag = np.zeros((n, ho, wo, o))
    for oy in range(ho):
        for ox in range(wo):
            for ky in range(kh):
                for kx in range(kw):
                    pix = xp[:, oy * sh + ky, ox * sw + kx, :].reshape(n, groups, cg)
                    tap = w64[:, :, ky, kx].reshape(groups, og, cg)
                    out[:, oy, ox, :] += np.einsum("ngc,goc->ngo", pix, tap).reshape(n, o)
                    mag[:, oy, ox, :] += np.einsum("ngc,goc->ngo", np.abs(pix), np.abs(tap)).reshape(n, o)
    if b is not None:
        out += b
        mag += np.abs(b)
    return out, mag


def ref_dense(x, w, b):
    n, o = x.shape[0], w.shape[0]
    out = np.zeros((n, o))
    mag = np.zeros((n, o))
    for i in range(n):
        for j in range(o):
            xi, wj = x[i].astype(np.float64), w[j].astype(np.float64)
            out[i, j] = np.sum(xi * wj) + (0.0 if b is None else b[j])
            mag[i, j] = np.sum(np.abs(xi * wj)) + (0.0 if b is None else abs(b[j]))
    return out, mag


def ref_batch_norm(x, mean, var, gamma, beta, eps):
    out = np.zeros(x.shape)
    mag = np.zeros(x.shape)
    for ch in range(x.shape[-1]):
        g = 1.0 if gamma is None else float(gamma[ch])
        bt = 0.0 if beta is None else float(beta[ch])
        centred = x[..., ch].astype(np.float64) - float(mean[ch])
        scaled = centred / np.sqrt(float(var[ch]) + eps) * g
        out[..., ch] = scaled + bt
        mag[..., ch] = np.abs(scaled) + abs(bt)
    return out, mag


def ref_prelu(x, slope):
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        v = x[idx]
        out[idx] = v if v >= 0 else np.float32(slope[idx[-1]]) * v
    return out


def ref_rprelu(x, gamma, slope, zeta):
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        ch = idx[-1]
        v = x[idx] - np.float32(gamma[ch])
        v = v if v >= 0 else np.float32(slope[ch]) * v
        out[idx] = v + np.float32(zeta[ch])
    return out


def ref_pool(x, k, s, p, ceil_mode, mode, count_include_pad=True):
    """mode 'avg' -> (ref, mag); mode 'max' -> ref. Counts each tap of each window explicitly."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    ho = ref_pool_size(h, kh, sh, ph, ceil_mode)
    wo = ref_pool_size(w, kw, sw, pw, ceil_mode)
    out = np.zeros((n, ho, wo, c))
    mag = np.zeros((n, ho, wo, c))
    for oy in range(ho):
        for ox in range(wo):
            acc = np.zeros((n, c)) if mode == "avg" else np.full((n, c), -np.inf)
            absacc = np.zeros((n, c))
            in_padded = in_input = 0
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - ph + ky, ox * sw - pw + kx
                    if -ph <= iy < h + ph and -pw <= ix < w + pw:
                        in_padded += 1
                    if 0 <= iy < h and 0 <= ix < w:
                        in_input += 1
                        v = x[:, iy, ix, :].astype(np.float64)
                        if mode == "avg":
                            acc += v
                            absacc += np.abs(v)
                        else:
                            acc = np.maximum(acc, v)
            assert in_input > 0, "every PyTorch pooling window holds at least one input position"
            if mode == "avg":
                div = in_padded if count_include_pad else in_input
                out[:, oy, ox, :] = acc / div
                mag[:, oy, ox, :] = absacc / div
            else:
                out[:, oy, ox, :] = acc
    return (out, mag) if mode == "avg" else out


def ref_global_avg_pool(x):
    n, h, w, c = x.shape
    acc = np.zeros((n, c))
    absacc = np.zeros((n, c))
    for y in range(h):
        for xx in range(w):
            acc += x[:, y, xx, :]
            absacc += np.abs(x[:, y, xx, :])
    return acc / (h * w), absacc / (h * w)


# ---- strategies ---------------------------------------------------------------------------------


def divisors(c):
    return [d for d in range(1, c + 1) if c % d == 0]


@st.composite
def conv_cases(draw):
    n = draw(st.integers(1, 3))
    c = draw(st.sampled_from(CHANNELS + [2, 4, 6]))
    groups = draw(st.sampled_from(divisors(c)))
    og = draw(st.sampled_from([1, 2, 3] if groups > 1 else [1, 2, 5, 16, 33]))
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))  # top, bottom, left, right differ freely
    kh = draw(st.integers(1, min(5, h + pads[0] + pads[1])))
    kw = draw(st.integers(1, min(5, w + pads[2] + pads[3])))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    has_bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    return n, (h, w), c, groups * og, groups, (kh, kw), stride, pads, has_bias, seed


@st.composite
def pool_cases(draw):
    n = draw(st.integers(1, 3))
    c = draw(st.sampled_from(CHANNELS))
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    k, p = [], []
    for size in (h, w):
        kk = draw(st.integers(1, min(5, size + 4)))
        # PyTorch: padding at most half the kernel; the kernel must fit the padded input
        p.append(draw(st.integers(max(0, -(-(kk - size) // 2)), min(2, kk // 2))))
        k.append(kk)
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    ceil_mode = draw(st.booleans())
    count_include_pad = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    return n, (h, w), c, tuple(k), stride, tuple(p), ceil_mode, count_include_pad, seed


def pad_arg(pads, form):
    t, b, left, r = pads
    if form == "int" and t == b == left == r:
        return t
    if form == "pair" and t == b and left == r:
        return (t, left)
    return (t, b, left, r)


# ---- conv2d -------------------------------------------------------------------------------------


def run_conv_case(n, hw, c, o, groups, k, stride, pads, has_bias, seed, pad_form="four"):
    rng = rng_for(seed)
    x = randn(rng, (n, *hw, c))
    w = randn(rng, (o, c // groups, *k))
    b = randn(rng, (o,)) if has_bias else None
    out = F.conv2d(x, w, b, stride=stride, padding=pad_arg(pads, pad_form), groups=groups)
    ref, mag = ref_conv2d(x, w, b, stride, pads, groups)
    check_output(out, ref.shape, x, w)
    assert_close(out, ref, mag)


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_conv2d_matches_loop_reference(case):
    run_conv_case(*case)


@pytest.mark.parametrize(
    "hw, c, o, k, stride", [((14, 14), 3, 33, 3, 1), ((20, 21), 3, 64, 7, 2), ((13, 16), 65, 16, 5, 1)]
)
def test_conv2d_of_a_batch_is_the_images_one_by_one(hw, c, o, k, stride):
    """The C kernel runs pixel groups across images (ho * wo is not a multiple of the group here),
    so a pixel read in place in one batch is gathered with a padded neighbour in another: both
    paths sum the same terms in the same order, bit for bit; every ISA, 1 and 2 threads."""
    rng = rng_for(k)
    x, w, b = randn(rng, (3, *hw, c)), randn(rng, (o, c, k, k)), randn(rng, (o,))

    def both():
        whole = F.conv2d(x, w, b, stride, k // 2)
        return whole, np.concatenate([F.conv2d(x[i : i + 1], w, b, stride, k // 2) for i in range(len(x))])

    for config, (whole, one_by_one) in run_everywhere(both).items():
        np.testing.assert_array_equal(whole, one_by_one, err_msg=str(config))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 3),
    hw=st.tuples(st.integers(3, 21), st.integers(3, 21)),
    c=st.sampled_from([1, 3, 8]),
    o=st.sampled_from([1, 16, 64, 65]),
    k=st.integers(1, 7),
    stride=st.integers(1, 2),
    pool=st.sampled_from([(3, 2, 1), (2, 2, 0), (3, 1, 1), (2, 3, 0)]),
    ceil_mode=st.booleans(),
    relu=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_max_pool_equals_the_two_layers(n, hw, c, o, k, stride, pool, ceil_mode, relu, seed):
    """A conv2d and the max pooling of its output in one pass (the conv rows a few at a time, in a
    buffer per thread, shared rows at band edges computed twice) give the two layers' values bit
    for bit: batches, pooling windows overlapping or not, ceil mode; every ISA, 1 and 2 threads."""
    rng = rng_for(seed)
    x, w, b = randn(rng, (n, *hw, c)), randn(rng, (o, c, k, k)), randn(rng, (o,))
    scale = (rng.random(o) + 0.5).astype(np.float32)
    pk, ps, pp = pool
    if min((hw[0] + 2 * (k // 2) - k) // stride, (hw[1] + 2 * (k // 2) - k) // stride) + 1 + 2 * pp < pk:
        return  # nothing to pool

    def both():
        conv, mid = F.bind_conv2d(x, w, b, stride, k // 2, scale=scale, relu=relu)
        mid[...] = 0  # (bound before it holds values: none may be NaN)
        pooled, out = F.bind_pool2d("max", mid, pk, ps, pp, ceil_mode=ceil_mode)
        F.bind_conv2d_max_pool(conv, pooled)()
        fused = out.copy()
        conv(), pooled()
        return fused, out

    for config, (fused, two_layers) in run_everywhere(both).items():
        np.testing.assert_array_equal(fused, two_layers, err_msg=str(config))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 3), c=st.integers(1, 5), h=st.integers(1, 9), w=st.integers(1, 9), seed=st.integers(0, 2**32 - 1)
)
def test_nchw_to_nhwc_is_the_transpose(n, c, h, w, seed):
    x = randn(rng_for(seed), (n, c, h, w))
    np.testing.assert_array_equal(F.nchw_to_nhwc(x), x.transpose(0, 2, 3, 1))


def test_conv2d_max_pool_is_checked():
    rng = rng_for(0)
    x, w = randn(rng, (1, 8, 8, 3)), randn(rng, (4, 3, 3, 3))
    conv, mid = F.bind_conv2d(x, w, padding=1)
    mid[...] = 0
    other = np.zeros_like(mid)
    with pytest.raises(TypeError, match="bound by bind_conv2d"):
        F.bind_conv2d_max_pool(lambda: None, F.bind_pool2d("max", mid, 2)[0])
    with pytest.raises(ValueError, match="max pooling of the conv's output"):
        F.bind_conv2d_max_pool(conv, F.bind_pool2d("avg", mid, 2)[0])
    with pytest.raises(ValueError, match="max pooling of the conv's output"):
        F.bind_conv2d_max_pool(conv, F.bind_pool2d("max", other, 2)[0])


@settings(max_examples=30, deadline=None)
@given(conv_cases(), st.sampled_from([None, "random", "zeros"]), st.sampled_from(["one", "minus_one"]))
def test_conv2d_packs_the_signs_of_its_output(case, pack_bias_kind, zero_to):
    """With a packed output (the next binary layer's input, written row by row from cache), the
    float output is unchanged and the words are exactly pack_signs(out, pack_bias, zero_to), the
    signs of NumPy's out + pack_bias (< 0, or <= 0 for "minus_one": the exact zeros of a ReLU,
    +0.0 and -0.0 pack biases); every ISA, 1 and 2 threads. Grouped convolutions refuse it."""
    n, hw, c, o, groups, k, stride, pads, has_bias, seed = case
    rng = rng_for(seed)
    x, w = randn(rng, (n, *hw, c)), randn(rng, (o, c // groups, *k))
    b = randn(rng, (o,)) if has_bias else None
    pack_bias = {
        None: None,
        "random": randn(rng, (o,)),
        "zeros": np.where(rng.random(o) < 0.5, 0.0, -0.0).astype(np.float32),
    }[pack_bias_kind]
    want = F.conv2d(x, w, b, stride, pads, groups)
    packed = np.full(want.shape[:3] + ((o + 63) // 64,), 0xA5A5, np.uint64)
    if groups != 1:
        with pytest.raises(ValueError, match="without groups"):
            F.bind_conv2d(x, w, b, stride, pads, groups, relu=bool(seed % 2), packed=packed)
        return

    def run():
        run_, out = F.bind_conv2d(
            x, w, b, stride, pads, groups, relu=bool(seed % 2), packed=packed, pack_bias=pack_bias, pack_zero_to=zero_to
        )
        run_()
        return out, packed.copy()

    plain = run_everywhere(lambda: F.conv2d(x, w, b, stride, pads, groups, relu=bool(seed % 2)))
    for config, (out, bits) in run_everywhere(run).items():
        np.testing.assert_array_equal(out, plain[config], err_msg=str(config))
        np.testing.assert_array_equal(bits, pack_signs(out, pack_bias, zero_to=zero_to), err_msg=str(config))
        np.testing.assert_array_equal(unpack_signs(bits, o), sign_pm1(out, pack_bias, zero_to), err_msg=str(config))


@pytest.mark.parametrize("o, nan_channel", [(32, 5), (40, 39), (70, 66), (96, 50)])
def test_conv2d_packing_refuses_a_nan_output(o, nan_channel):
    """A NaN among the values to pack (an infinite sum times a zero scale) is refused on every ISA,
    whichever tile and word holds it: the AVX-512 groups pack from their registers (not from the
    stored floats, as pack_run does) and must report it the same way."""
    rng = np.random.default_rng(o)
    x = np.full((1, 16, 16, 3), 1e30, np.float32)
    w = rng.standard_normal((o, 3, 3, 3)).astype(np.float32)
    w[nan_channel, 0, :2, 0] = 1e30  # two taps of 1e60: the sum overflows to +inf
    scale = np.ones(o, np.float32)
    scale[nan_channel] = 0.0  # inf * 0 = NaN

    def run():
        packed = np.zeros((1, 8, 8, (o + 63) // 64), np.uint64)
        run_, _ = F.bind_conv2d(x, w, None, 2, (1, 1, 1, 1), 1, scale=scale, packed=packed)
        with pytest.raises(ValueError, match="contains NaN"):
            run_()

    run_everywhere(run)


@settings(max_examples=20, deadline=None)
@given(conv_cases(), st.booleans())
def test_conv2d_is_the_same_on_every_isa_and_thread_count(case, with_scale):
    """The C kernel (groups == 1) is compiled per instruction set. Every one sums in the same
    order and AVX2 / AVX-512 both use FMA, so the thread count never changes a bit and the two
    SIMD paths agree bit for bit; the scalar path (no FMA) agrees to rounding. A scale (a folded
    BatchNorm) multiplies the sums before the bias is added; relu comes last."""
    n, hw, c, o, groups, k, stride, pads, has_bias, seed = case
    rng = rng_for(seed)
    x, w = randn(rng, (n, *hw, c)), randn(rng, (o, c // groups, *k))
    b = randn(rng, (o,)) if has_bias else None
    scale = (rng.random(o) + 0.5).astype(np.float32) if with_scale else None
    relu = bool(seed % 2)
    results = run_everywhere(lambda: F.conv2d(x, w, b, stride, pads, groups, scale=scale, relu=relu))
    ref, mag = ref_conv2d(x, w, None, stride, pads, groups)
    if scale is not None:
        ref, mag = ref * scale, mag * scale
    ref, mag = ref + (0 if b is None else b), mag + (0 if b is None else np.abs(b))
    if relu:
        ref = np.maximum(ref, 0)
    fused = {isa: out for (isa, _), out in results.items() if isa != "scalar"}
    for (isa, threads), out in results.items():
        np.testing.assert_array_equal(out, results[(isa, 1)], err_msg=f"{isa}, {threads} threads")
        np.testing.assert_array_equal(out, fused.get(isa if isa == "scalar" else "avx2", out), err_msg=isa)
        assert_close(out, ref, mag)


def ref_conv2d_taps(x, w, stride, pads):
    """Single-group conv in float64, one kernel tap at a time over the whole zero-padded input
    (for the larger kernels below, where the pixel loops of ref_conv2d are slow); (ref, mag)."""
    n, h, wd, c = x.shape
    o, _, kh, kw = w.shape
    pt, pb, pl, pr = pads
    sh, sw = stride
    xp = np.zeros((n, h + pt + pb, wd + pl + pr, c))
    xp[:, pt : pt + h, pl : pl + wd, :] = x
    ho, wo = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
    w64 = w.astype(np.float64)
    out, mag = np.zeros((n, ho, wo, o)), np.zeros((n, ho, wo, o))
    for ky in range(kh):
        for kx in range(kw):
            tap = xp[:, ky : ky + (ho - 1) * sh + 1 : sh, kx : kx + (wo - 1) * sw + 1 : sw, :]
            out += np.einsum("nhwc,oc->nhwo", tap, w64[:, :, ky, kx])
            mag += np.einsum("nhwc,oc->nhwo", np.abs(tap), np.abs(w64[:, :, ky, kx]))
    return out, mag


def check_conv_on_every_isa(x, w, b, stride, pads, scale, relu):
    """F.conv2d under every ISA and thread count: within the float64 bound of the reference, the
    same bits on every thread count, and avx2 / avx512bw / avx512 bit for bit."""
    results = run_everywhere(lambda: F.conv2d(x, w, b, stride, pads, scale=scale, relu=relu))
    ref, mag = ref_conv2d_taps(x, w, stride, pads)
    if scale is not None:
        ref, mag = ref * scale, mag * scale
    if b is not None:
        ref, mag = ref + b, mag + np.abs(b)
    if relu:
        ref = np.maximum(ref, 0)
    simd = [isa for isa in ("avx2", "avx512bw", "avx512") if (isa, 1) in results]
    for (isa, threads), out in results.items():
        assert_close(out, ref, mag)
        np.testing.assert_array_equal(out, results[(isa, 1)], err_msg=f"{isa}, {threads} threads")
        if isa in simd:
            np.testing.assert_array_equal(out.view(np.uint32), results[(simd[0], 1)].view(np.uint32), err_msg=isa)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.sampled_from([1, 3, 4]),
    o=st.sampled_from([1, 3, 16, 32, 33, 64, 65, 200]),
    k=st.tuples(st.integers(1, 11), st.integers(1, 11)),
    stride=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    pads=st.tuples(*(st.integers(0, 5) for _ in range(4))),
    extra=st.tuples(st.integers(0, 9), st.integers(0, 9)),
    scale_bias_relu=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_stem_tiles_on_every_isa(n, c, o, k, stride, pads, extra, scale_bias_relu, seed):
    """The x86 conv's tiles (6 pixels x 64/16 channels, 12 pixels x 32/16/8, the last vector
    masked past o), its per-row gathers on every border, pixel groups across rows and images:
    every ISA and thread count within the float64 bound, avx2 / avx512bw / avx512 bit for bit
    (each sum a chain of fmaf in the same order), threads never changing a bit."""
    kh, kw = k
    h = max(1, kh - pads[0] - pads[1]) + extra[0]
    w_ = max(1, kw - pads[2] - pads[3]) + extra[1]
    rng = rng_for(seed)
    x, w = randn(rng, (n, h, w_, c)), randn(rng, (o, c, kh, kw))
    with_scale, with_bias, relu = scale_bias_relu
    scale = (rng.random(o) + 0.5).astype(np.float32) if with_scale else None
    b = randn(rng, (o,)) if with_bias else None
    check_conv_on_every_isa(x, w, b, stride, pads, scale, relu)


@settings(max_examples=150, deadline=None)
@given(
    stem=st.sampled_from([(3, 2), (7, 2), (11, 4)]),
    n=st.integers(1, 2),
    o=st.sampled_from([8, 32, 64, 96]),
    pad=st.integers(0, 5),
    side=st.tuples(st.integers(0, 40), st.integers(0, 40)),
    scale_bias_relu=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_stem_fixed_rows_on_every_isa(stem, n, o, pad, side, scale_bias_relu, seed):
    """The x86 conv's path for the image stems (c = 3 and 3x3/2, 7x7/2, 11x11/4: rows of 12
    pixels inside the input read at constant offsets from one pointer, taps unrolled): inputs wide
    enough for whole groups inside, beside the border groups, every ISA within the float64 bound
    and avx2 / avx512bw / avx512 bit for bit."""
    k, s = stem
    h, w_ = k + side[0], k + 11 * s + side[1]
    rng = rng_for(seed)
    x, w = randn(rng, (n, h, w_, 3)), randn(rng, (o, 3, k, k))
    with_scale, with_bias, relu = scale_bias_relu
    scale = (rng.random(o) + 0.5).astype(np.float32) if with_scale else None
    b = randn(rng, (o,)) if with_bias else None
    pads = (pad, pad, pad, pad)
    check_conv_on_every_isa(x, w, b, (s, s), pads, scale, relu)


@settings(max_examples=20, deadline=None)
@given(pool_cases())
def test_pools_are_the_same_on_every_isa_and_thread_count(case):
    n, hw, c, k, stride, p, ceil_mode, include_pad, seed = case
    x = randn(rng_for(seed), (n, *hw, c))
    for pool in (
        lambda: F.avg_pool2d(x, k, stride, p, count_include_pad=include_pad, ceil_mode=ceil_mode),
        lambda: F.max_pool2d(x, k, stride, p, ceil_mode=ceil_mode),
    ):
        results = run_everywhere(pool)
        first = next(iter(results.values()))
        for config, out in results.items():
            np.testing.assert_array_equal(out, first, err_msg=str(config))


@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (3, 2), (5, 7)])
@pytest.mark.parametrize("c", CHANNELS)
@pytest.mark.parametrize(
    "k, stride, pads",
    [
        ((1, 1), (1, 1), (0, 0, 0, 0)),
        ((3, 3), (1, 1), (1, 1, 1, 1)),
        ((3, 2), (2, 3), (2, 0, 1, 2)),
        ((5, 5), (3, 2), (2, 2, 2, 2)),
        ((1, 1), (2, 2), (0, 1, 2, 0)),
    ],
)
def test_conv2d_corner_shapes(hw, c, k, stride, pads):
    if k[0] > hw[0] + pads[0] + pads[1] or k[1] > hw[1] + pads[2] + pads[3]:
        with pytest.raises(ValueError, match="larger than the padded input"):
            F.conv2d(np.zeros((1, *hw, c), np.float32), np.zeros((2, c, *k), np.float32), stride=stride, padding=pads)
        return
    for groups in (1, c):
        run_conv_case(2, hw, c, 2 * groups, groups, k, stride, pads, True, seed=hash((hw, c, k, stride, pads)) % 2**32)


@pytest.mark.parametrize("stride", [1, (1, 1), 2, (2, 2)])
def test_conv2d_pointwise_path(stride):
    rng = rng_for(7)
    x = randn(rng, (2, 5, 6, 65))
    w = randn(rng, (17, 65, 1, 1))
    s = (stride, stride) if isinstance(stride, int) else stride
    out = F.conv2d(x, w, stride=stride)
    ref, mag = ref_conv2d(x, w, None, s, (0, 0, 0, 0), 1)
    check_output(out, ref.shape, x, w)
    assert_close(out, ref, mag)


def test_conv2d_padding_forms_agree():
    rng = rng_for(3)
    x = randn(rng, (1, 6, 5, 3))
    w = randn(rng, (4, 3, 3, 3))
    a = F.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(a, F.conv2d(x, w, padding=(1, 1)))
    np.testing.assert_array_equal(a, F.conv2d(x, w, padding=(1, 1, 1, 1)))
    b = F.conv2d(x, w, padding=(2, 1))
    np.testing.assert_array_equal(b, F.conv2d(x, w, padding=(2, 2, 1, 1)))
    assert b.shape == (1, 8, 5, 4)


def test_conv2d_known_values():
    # 3x3 ones kernel over a 3x3 ramp with padding 1: each output is the sum of its in-bounds neighbours
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    w = np.ones((1, 1, 3, 3), np.float32)
    out = F.conv2d(x, w, bias=np.array([0.5], np.float32), padding=1)
    expect = np.array([[8, 15, 12], [21, 36, 27], [20, 33, 24]], np.float32) + 0.5
    np.testing.assert_array_equal(out[0, :, :, 0], expect)


# ---- dense --------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 3),
    i=st.sampled_from(CHANNELS + [128]),
    o=st.sampled_from(CHANNELS + [10]),
    has_bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_dense_matches_loop_reference(n, i, o, has_bias, seed):
    """On every ISA and thread count (the thread count never changes a bit; the x86 levels agree
    bit for bit)."""
    rng = rng_for(seed)
    x, w = randn(rng, (n, i)), randn(rng, (o, i))
    b = randn(rng, (o,)) if has_bias else None
    ref, mag = ref_dense(x, w, b)
    results = run_everywhere(lambda: F.dense(x, w, b))
    laid_out = F.DenseWeights(w)
    simd = [isa for isa in ("avx2", "avx512bw", "avx512") if (isa, 1) in results]
    for (isa, _threads), out in results.items():
        check_output(out, (n, o), x, w)
        assert_close(out, ref, mag)
        np.testing.assert_array_equal(out, results[(isa, 1)])
        if isa in simd:  # the same 16 lanes of fmaf and the same lane order on every x86 level
            np.testing.assert_array_equal(out.view(np.uint32), results[(simd[0], 1)].view(np.uint32), err_msg=isa)
    np.testing.assert_array_equal(F.dense(x, laid_out, b), F.dense(x, w, b))  # weights laid out once


# ---- batch norm, PReLU, RPReLU, ReLU, add, concat -----------------------------------------------

activation_shapes = st.builds(
    lambda n, spatial, c: (n, *spatial, c),
    st.integers(1, 3),
    st.sampled_from([(), (1,), (1, 1), (2, 3), (3, 5), (5, 1)]),
    st.sampled_from(CHANNELS),
)


def random_activation(rng, shape):
    x = randn(rng, shape)
    # exact zeros of both signs exercise the x >= 0 branch of PReLU / ReLU
    flat = x.reshape(-1)
    picks = rng.integers(0, flat.size, size=max(1, flat.size // 10))
    flat[picks[: len(picks) // 2]] = 0.0
    flat[picks[len(picks) // 2 :]] = -0.0
    return x


@settings(max_examples=50, deadline=None)
@given(
    shape=activation_shapes,
    affine=st.sampled_from(["both", "gamma", "beta", "none"]),
    eps=st.sampled_from([1e-5, 1e-3, 0.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_batch_norm_matches_loop_reference(shape, affine, eps, seed):
    rng = rng_for(seed)
    c = shape[-1]
    x = random_activation(rng, shape) * np.float32(3)
    mean = randn(rng, (c,))
    var = (rng.random(c) * 2 + 0.05).astype(np.float32)
    gamma = randn(rng, (c,)) if affine in ("both", "gamma") else None
    beta = randn(rng, (c,)) if affine in ("both", "beta") else None
    out = F.batch_norm(x, mean, var, gamma, beta, eps=eps)
    ref, mag = ref_batch_norm(x, mean, var, gamma, beta, eps)
    check_output(out, shape, x)
    assert_close(out, ref, mag)


def test_batch_norm_accepts_pytorch_parameter_shapes():
    rng = rng_for(11)
    x = randn(rng, (2, 3, 3, 4))
    mean, var = randn(rng, (4,)), np.ones(4, np.float32)
    a = F.batch_norm(x, mean, var)
    b = F.batch_norm(x, mean.reshape(1, 4, 1, 1), var.reshape(1, 4, 1, 1).astype(np.float64))
    np.testing.assert_array_equal(a, b)


@settings(max_examples=50, deadline=None)
@given(shape=activation_shapes, seed=st.integers(0, 2**32 - 1))
def test_prelu_matches_elementwise_reference(shape, seed):
    rng = rng_for(seed)
    x = random_activation(rng, shape)
    slope = randn(rng, (shape[-1],))
    out = F.prelu(x, slope)
    check_output(out, shape, x)
    # float32 arithmetic as in PyTorch: exact agreement, signs of zero included
    np.testing.assert_array_equal(out, ref_prelu(x, slope))
    assert np.array_equal(np.signbit(out), np.signbit(ref_prelu(x, slope)))


@settings(max_examples=50, deadline=None)
@given(shape=activation_shapes, seed=st.integers(0, 2**32 - 1))
def test_rprelu_matches_elementwise_reference(shape, seed):
    rng = rng_for(seed)
    c = shape[-1]
    x = random_activation(rng, shape)
    gamma, slope, zeta = randn(rng, (c,)), randn(rng, (c,)), randn(rng, (c,))
    # some x equal to gamma: the shifted value is exactly zero
    x[..., 0] = gamma[0]
    out = F.rprelu(x, gamma, slope, zeta)
    check_output(out, shape, x)
    np.testing.assert_array_equal(out, ref_rprelu(x, gamma, slope, zeta))


@settings(max_examples=40, deadline=None)
@given(shape=activation_shapes, seed=st.integers(0, 2**32 - 1))
def test_relu_add_concat_match_elementwise_reference(shape, seed):
    rng = rng_for(seed)
    a, b = random_activation(rng, shape), random_activation(rng, shape)

    out = F.relu(a)
    check_output(out, shape, a)
    ref = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        ref[idx] = np.float32(0) if a[idx] < 0 else a[idx]  # PyTorch's relu: -0.0 stays -0.0
    np.testing.assert_array_equal(out, ref)
    assert np.array_equal(np.signbit(out), np.signbit(ref))

    out = F.add(a, b)
    check_output(out, shape, a, b)
    for idx in np.ndindex(a.shape):
        ref[idx] = a[idx] + b[idx]
    np.testing.assert_array_equal(out, ref)

    extra = int(rng.integers(1, 5))
    d = randn(rng, shape[:-1] + (extra,))
    out = F.concat([a, b, d])
    check_output(out, shape[:-1] + (2 * shape[-1] + extra,), a, b, d)
    parts = [a, b, d]
    cat = np.empty(out.shape, np.float32)
    col = 0
    for part in parts:
        for ch in range(part.shape[-1]):
            cat[..., col] = part[..., ch]
            col += 1
    np.testing.assert_array_equal(out, cat)


def test_concat_single_input_is_a_copy():
    x = randn(rng_for(1), (1, 2, 2, 3))
    out = F.concat((x,))
    check_output(out, x.shape, x)
    np.testing.assert_array_equal(out, x)


# ---- pooling ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(pool_cases())
def test_avg_pool2d_matches_loop_reference(case):
    n, hw, c, k, stride, p, ceil_mode, include_pad, seed = case
    x = randn(rng_for(seed), (n, *hw, c))
    out = F.avg_pool2d(x, k, stride, p, count_include_pad=include_pad, ceil_mode=ceil_mode)
    ref, mag = ref_pool(x, k, k if stride is None else stride, p, ceil_mode, "avg", include_pad)
    check_output(out, ref.shape, x)
    assert_close(out, ref, mag)


@settings(max_examples=60, deadline=None)
@given(pool_cases())
def test_max_pool2d_matches_loop_reference(case):
    n, hw, c, k, stride, p, ceil_mode, _, seed = case
    x = randn(rng_for(seed), (n, *hw, c))
    out = F.max_pool2d(x, k, stride, p, ceil_mode=ceil_mode)
    ref = ref_pool(x, k, k if stride is None else stride, p, ceil_mode, "max")
    check_output(out, ref.shape, x)
    np.testing.assert_array_equal(out, ref)  # max is exact: padding never wins
    assert np.isfinite(out).all()


@pytest.mark.parametrize("hw", [(1, 1), (2, 3)])
@pytest.mark.parametrize("c", CHANNELS)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("include_pad", [False, True])
@pytest.mark.parametrize(
    "k, s, p", [((1, 1), (1, 1), (0, 0)), ((2, 3), (2, 2), (1, 1)), ((3, 3), (2, 3), (1, 1)), ((4, 5), (3, 1), (2, 2))]
)
def test_pools_corner_shapes(hw, c, ceil_mode, include_pad, k, s, p):
    x = randn(rng_for(c), (2, *hw, c))
    if k[0] > hw[0] + 2 * p[0] or k[1] > hw[1] + 2 * p[1]:
        with pytest.raises(ValueError, match="larger than the padded input"):
            F.avg_pool2d(x, k, s, p, include_pad, ceil_mode)
        return
    out = F.avg_pool2d(x, k, s, p, count_include_pad=include_pad, ceil_mode=ceil_mode)
    ref, mag = ref_pool(x, k, s, p, ceil_mode, "avg", include_pad)
    check_output(out, ref.shape, x)
    assert_close(out, ref, mag)
    np.testing.assert_array_equal(F.max_pool2d(x, k, s, p, ceil_mode), ref_pool(x, k, s, p, ceil_mode, "max"))


def test_avg_pool2d_known_values():
    ones = np.ones((1, 5, 5, 1), np.float32)
    # ceil_mode: the extra window covers one row/column; positions past the input are not counted
    out = F.avg_pool2d(ones, 2, 2, ceil_mode=True)
    assert out.shape == (1, 3, 3, 1)
    np.testing.assert_array_equal(out, np.ones_like(out))
    # padding 1 with count_include_pad: corners see 4 ones out of 9, edges 6 of 9
    out = F.avg_pool2d(ones, 3, 2, padding=1, ceil_mode=True)[0, :, :, 0]
    expect = np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]], np.float64) / 9
    np.testing.assert_allclose(out, expect, rtol=1e-6)
    np.testing.assert_array_equal(F.avg_pool2d(ones, 3, 2, 1, count_include_pad=False), np.ones((1, 3, 3, 1)))
    # H=6, k=3, s=2, p=1: floor gives 3 windows, ceil(5/2)+1 = 4; the 4th starts at 5 < 6 + 1, so it
    # stays, and its divisor with padding is min(5 + 3, 6 + 1) - 5 = 2 (nothing past the padding)
    x = np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1)
    assert F.avg_pool2d(x, (3, 1), (2, 1), (1, 0)).shape[1] == 3
    out = F.avg_pool2d(x, (3, 1), (2, 1), (1, 0), ceil_mode=True)[0, :, 0, 0]
    np.testing.assert_allclose(out, [(0 + 0 + 1) / 3, (1 + 2 + 3) / 3, (3 + 4 + 5) / 3, 5 / 2], rtol=1e-6)
    out = F.avg_pool2d(x, (3, 1), (2, 1), (1, 0), count_include_pad=False, ceil_mode=True)[0, :, 0, 0]
    np.testing.assert_allclose(out, [1 / 2, 2, 4, 5], rtol=1e-6)
    # H=3, k=2, s=2, p=1: ceil(3/2)+1 = 3, but the 3rd window would start at 3 = H, and
    # (3 - 1) * 2 = 4 >= H + p = 4, so PyTorch drops it
    out = F.avg_pool2d(np.ones((1, 3, 1, 1), np.float32), (2, 1), (2, 1), (1, 0), ceil_mode=True)
    assert out.shape == (1, 2, 1, 1)
    np.testing.assert_array_equal(out[0, :, 0, 0], [0.5, 1.0])


def test_max_pool2d_known_values():
    x = -np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)  # all negative: padding must not win
    out = F.max_pool2d(x, 2, 2, padding=1)[0, :, :, 0]
    np.testing.assert_array_equal(out, [[-1, -2], [-4, -5]])
    out = F.max_pool2d(x, 2, 2, ceil_mode=True)[0, :, :, 0]
    np.testing.assert_array_equal(out, [[-1, -3], [-7, -9]])


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    hw=st.sampled_from([(1, 1), (2, 3), (7, 7), (5, 9)]),
    c=st.sampled_from(CHANNELS),
    seed=st.integers(0, 2**32 - 1),
)
def test_global_avg_pool_matches_loop_reference(n, hw, c, seed):
    x = randn(rng_for(seed), (n, *hw, c))
    ref, mag = ref_global_avg_pool(x)
    results = run_everywhere(lambda: F.global_avg_pool(x))
    for out in results.values():
        check_output(out, (n, c), x)
        assert_close(out, ref, mag)
        np.testing.assert_array_equal(out, next(iter(results.values())))  # float64 sums: same everywhere


# ---- bad input ----------------------------------------------------------------------------------


def _op_table():
    """name -> (call taking the activation under test, a valid activation, arrays of wrong rank)."""
    rng = rng_for(123)
    x4 = randn(rng, (2, 5, 5, 3))
    x2 = randn(rng, (2, 3))
    c3 = randn(rng, (3,))
    pos = np.ones(3, np.float32)
    wconv = randn(rng, (4, 3, 3, 3))
    wdense = randn(rng, (4, 3))
    fixed4 = [x4.reshape(-1), x4[0].copy(), x4[None].copy()]
    fixed2 = [x2.reshape(-1), x2[None].copy()]
    min2 = [c3.copy(), np.ones((), np.float32)]
    return {
        "conv2d": (lambda x: F.conv2d(x, wconv, c3[:1].repeat(4), padding=1), x4, fixed4),
        "dense": (lambda x: F.dense(x, wdense, c3[:1].repeat(4)), x2, fixed2),
        "batch_norm": (lambda x: F.batch_norm(x, c3, pos, c3, c3), x4, min2),
        "prelu": (lambda x: F.prelu(x, c3), x4, min2),
        "rprelu": (lambda x: F.rprelu(x, c3, c3, c3), x4, min2),
        "relu": (F.relu, x4, min2),
        "add_a": (lambda x: F.add(x, x4), x4, min2),
        "add_b": (lambda x: F.add(x4, x), x4, min2),
        "concat": (lambda x: F.concat([x4, x]), x4, min2),
        "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1, True, True), x4, fixed4),
        "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1, True), x4, fixed4),
        "global_avg_pool": (F.global_avg_pool, x4, fixed4),
    }


OPS = list(_op_table())


@pytest.mark.parametrize("op", OPS)
def test_valid_call_of_each_op_succeeds(op):
    call, x, _ = _op_table()[op]
    out = call(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.flags.c_contiguous


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("bad", ["list", "float64", "float16", "int32"])
def test_rejects_wrong_type_or_dtype(op, bad):
    call, x, _ = _op_table()[op]
    arg = x.tolist() if bad == "list" else x.astype(bad)
    with pytest.raises(TypeError, match="numpy.ndarray" if bad == "list" else "dtype float32"):
        call(arg)


@pytest.mark.parametrize("op", OPS)
def test_rejects_wrong_rank(op):
    call, _, wrong = _op_table()[op]
    for arr in wrong:
        with pytest.raises(ValueError, match="dimensions"):
            call(arr)


@pytest.mark.parametrize("op", OPS)
def test_rejects_non_contiguous(op):
    call, x, _ = _op_table()[op]
    buf = np.zeros(x.shape + (2,), np.float32)
    buf[..., 0] = x
    view = buf[..., 0]
    assert not view.flags.c_contiguous and view.shape == x.shape
    with pytest.raises(ValueError, match="C-contiguous"):
        call(view)


@pytest.mark.parametrize("op", OPS)
def test_rejects_nan(op):
    call, x, _ = _op_table()[op]
    bad = x.copy()
    bad.flat[bad.size // 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(bad)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_rejects_inf(op, value):
    call, x, _ = _op_table()[op]
    bad = x.copy()
    bad.flat[0] = value
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(bad)


@pytest.mark.parametrize(
    "wshape, groups",
    [((4, 2, 3, 3), 1), ((4, 3, 3, 3), 3), ((4, 6, 3, 3), 1), ((4, 1, 3, 3), 2), ((5, 1, 3, 3), 3), ((4, 3, 3), 1)],
)
def test_conv2d_rejects_mismatched_weight(wshape, groups):
    x = np.zeros((1, 5, 5, 3), np.float32)
    with pytest.raises(ValueError, match="weight|groups"):
        F.conv2d(x, np.zeros(wshape, np.float32), groups=groups)


def test_conv2d_rejects_bad_weight_dtype_and_groups():
    x = np.zeros((1, 5, 5, 3), np.float32)
    with pytest.raises(TypeError, match="weight must have dtype float32"):
        F.conv2d(x, np.zeros((4, 3, 3, 3), np.float64))
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, np.zeros((4, 3, 3, 3), np.float32), groups=0)
    with pytest.raises(ValueError, match="weight contains NaN"):
        F.conv2d(x, np.full((4, 3, 3, 3), np.nan, np.float32))


@pytest.mark.parametrize("wshape", [(4, 2), (4, 4), (3,), (4, 3, 1)])
def test_dense_rejects_mismatched_weight(wshape):
    with pytest.raises(ValueError, match="weight"):
        F.dense(np.zeros((2, 3), np.float32), np.zeros(wshape, np.float32))


def _per_channel_calls():
    x4 = np.zeros((1, 2, 2, 3), np.float32)
    ok, pos = np.zeros(3, np.float32), np.ones(3, np.float32)
    w = np.zeros((4, 3, 1, 1), np.float32)
    return {
        "conv2d.bias": lambda v: F.conv2d(x4, w, v),
        "dense.bias": lambda v: F.dense(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32), v),
        "batch_norm.mean": lambda v: F.batch_norm(x4, v, pos),
        "batch_norm.var": lambda v: F.batch_norm(x4, ok, np.abs(v) + 1),
        "batch_norm.gamma": lambda v: F.batch_norm(x4, ok, pos, gamma=v),
        "batch_norm.beta": lambda v: F.batch_norm(x4, ok, pos, beta=v),
        "prelu.slope": lambda v: F.prelu(x4, v),
        "rprelu.gamma": lambda v: F.rprelu(x4, v, ok, ok),
        "rprelu.slope": lambda v: F.rprelu(x4, ok, v, ok),
        "rprelu.zeta": lambda v: F.rprelu(x4, ok, ok, v),
    }


@pytest.mark.parametrize("param", list(_per_channel_calls()))
@pytest.mark.parametrize("delta", [-1, 1])
def test_rejects_wrong_per_channel_length(param, delta):
    call = _per_channel_calls()[param]
    n_ok = 4 if param.split(".")[0] in ("conv2d", "dense") else 3
    call(np.zeros(n_ok, np.float32) + 0.5)  # the right length is accepted
    with pytest.raises(ValueError, match="one value per channel"):
        call(np.zeros(n_ok + delta, np.float32) + 0.5)


@pytest.mark.parametrize("param", list(_per_channel_calls()))
def test_rejects_nan_per_channel_parameter(param):
    call = _per_channel_calls()[param]
    n_ok = 4 if param.split(".")[0] in ("conv2d", "dense") else 3
    v = np.ones(n_ok, np.float32)
    v[1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        call(v)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: F.conv2d(x, np.zeros((1, 2, 6, 6), np.float32)),
        lambda x: F.conv2d(x, np.zeros((1, 2, 7, 1), np.float32), padding=(0, 0, 1, 1)),
        lambda x: F.conv2d(x, np.zeros((1, 2, 1, 8), np.float32), padding=(1, 1, 1, 1)),
        lambda x: F.avg_pool2d(x, 6),
        lambda x: F.avg_pool2d(x, (8, 1), padding=(1, 0), ceil_mode=True),
        lambda x: F.max_pool2d(x, (1, 6)),
        lambda x: F.max_pool2d(x, (8, 2), padding=1),
    ],
)
def test_rejects_kernel_larger_than_padded_input(call):
    with pytest.raises(ValueError, match="larger than the padded input"):
        call(np.zeros((1, 5, 5, 2), np.float32))


@pytest.mark.parametrize("pool", [F.avg_pool2d, F.max_pool2d])
def test_pool_rejects_padding_over_half_kernel(pool):
    with pytest.raises(ValueError, match="at most half the kernel"):
        pool(np.zeros((1, 5, 5, 2), np.float32), 3, 1, 2)


@pytest.mark.parametrize("padding", [-1, (1, 2, 3, 4), (1,), 1.5, "1"])
def test_pool_rejects_bad_padding(padding):
    with pytest.raises(ValueError, match="padding"):
        F.avg_pool2d(np.zeros((1, 5, 5, 2), np.float32), 3, 1, padding)


@pytest.mark.parametrize(
    "kwargs", [dict(stride=0), dict(stride=(1, 0)), dict(stride=(1, 1, 1)), dict(padding=-1), dict(padding=(1, 2, 3))]
)
def test_conv2d_rejects_bad_stride_or_padding(kwargs):
    with pytest.raises(ValueError, match="stride|padding"):
        F.conv2d(np.zeros((1, 5, 5, 2), np.float32), np.zeros((1, 2, 3, 3), np.float32), **kwargs)


@pytest.mark.parametrize("kernel", [0, (2, 0), (1, 2, 3)])
def test_pool_rejects_bad_kernel(kernel):
    with pytest.raises(ValueError, match="kernel"):
        F.max_pool2d(np.zeros((1, 5, 5, 2), np.float32), kernel)


def test_add_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        F.add(np.zeros((1, 2, 2, 3), np.float32), np.zeros((1, 2, 2, 4), np.float32))


def test_concat_rejects_bad_inputs():
    a = np.zeros((1, 2, 2, 3), np.float32)
    with pytest.raises(ValueError, match="leading dimensions"):
        F.concat([a, np.zeros((1, 2, 3, 3), np.float32)])
    with pytest.raises(ValueError, match="at least one"):
        F.concat([])
    with pytest.raises(TypeError, match="list or tuple"):
        F.concat(a)


def test_batch_norm_rejects_bad_eps_and_variance():
    x = np.zeros((1, 2, 2, 3), np.float32)
    mean = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="eps"):
        F.batch_norm(x, mean, np.ones(3, np.float32), eps=-1e-5)
    with pytest.raises(ValueError, match="var \\+ eps must be positive"):
        F.batch_norm(x, mean, np.array([1, -1, 1], np.float32))
    with pytest.raises(ValueError, match="mean and var"):
        F.batch_norm(x, None, np.ones(3, np.float32))


def test_all_exports():
    expected = {
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
    }
    assert set(F.__all__) == expected
    assert all(callable(getattr(F, name)) for name in F.__all__)


def test_relu_and_clamp_keep_the_sign_of_zero_as_pytorch():
    """relu(-0.0) is -0.0 and clamp(-0.0, 0) too, as PyTorch's CPU kernels give them (x < lo ? lo :
    x), on every NumPy version and CPU: np.maximum's and np.clip's answer varies (+0.0 with NumPy 2
    on x86, -0.0 with 1.24 on armhf)."""
    x = np.float32([[-0.0, 0.0, -1.0, 2.0, -0.0, 0.0, 7.0, -7.0] * 5])  # 40: SIMD and tail lanes
    out = F.relu(x)
    assert np.array_equal(np.signbit(out), np.signbit(x) & (x == 0))
    np.testing.assert_array_equal(out, np.where(x < 0, 0, x))
    out = F.clamp(x, 0.0, 6.0)
    assert np.array_equal(np.signbit(out), np.signbit(x) & (x == 0))
    np.testing.assert_array_equal(out, np.float32([[0, 0, 0, 2, 0, 0, 6, 0] * 5]))
    out = F.clamp(-x, -1.0, 0.0)  # +0.0 at hi = 0.0 stays +0.0, -0.0 stays -0.0
    np.testing.assert_array_equal(out, np.float32([[0, 0, 0, -1, 0, 0, -1, 0] * 5]))
    assert np.array_equal(np.signbit(out), np.signbit(-x))
    out = F.clamp(x, None, 0.0)
    assert np.array_equal(np.signbit(out), np.signbit(x))

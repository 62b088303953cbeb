"""BWN layers against a plain NumPy float64 reference, under every ISA this CPU has and 1 and 2
threads: bit-identical across ISAs and thread counts (one summation order everywhere,
csrc/bwn.h), and within that order's proven bound gamma_d * (sum |alpha * x| + |bias|) per output,
d the most roundings a term goes through (the epilogue's alpha and bias included)."""

import numpy as np
import pytest
from helpers import run_everywhere
from helpers.reference import conv2d_nhwc, sign_pm1
from hypothesis import given, settings
from hypothesis import strategies as st

from xnorinfer.ops import BWNConvWeights, BWNDenseWeights, bwn_conv2d, bwn_dense

ULP = 2.0**-24  # float32's unit roundoff
CHANNELS = [1, 3, 63, 65, 200]
KB = 32  # csrc/bwn.h's XI_BWN_KB: groups of 4 taps per block of a convolution's sum


def conv_depth(k):
    """Roundings of a conv output's term: 3 in its table entry (a group of 4 taps), its chain in
    a block of KB groups and over the blocks (each sum's first addend is added to +0.0, exactly),
    then alpha and bias."""
    groups = -(-k // 4)
    return 3 + (min(groups, KB) - 1) + (-(-groups // KB) - 1) + 2


def dense_depth(i):
    """3 in the table entry, the running sum of every 4th group, the 2 additions joining the 4
    sums, alpha and bias."""
    return 3 + (-(-i // 16) - 1) + 2 + 2


def _check(results, want, magnitude, depth):
    first = next(iter(results.values()))
    for key, got in results.items():
        np.testing.assert_array_equal(got, first, err_msg=f"{key} differs from {next(iter(results))}")
    err = np.abs(first.astype(np.float64) - want)
    bound = depth * ULP / (1 - depth * ULP)  # Higham's gamma_depth
    assert np.all(err <= bound * magnitude + 1e-30), f"error {(err / (magnitude + 1e-30)).max() / bound:.2f} x bound"


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 2),
    st.integers(1, 9),
    st.integers(1, 9),
    st.sampled_from(CHANNELS),
    st.sampled_from([1, 2, 3]),
    st.sampled_from([1, 2, 3, 63, 65]),
    st.integers(1, 11),
    st.integers(1, 3),
    st.integers(1, 3),
    st.tuples(*[st.integers(0, 3)] * 4),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_bwn_conv2d_matches_float64_reference_everywhere(n, h, w, cg, groups, og, k, sh, sw, pads, with_bias, seed):
    kh, kw = k, max(1, k - seed % 3)  # square and not
    h, w = max(h, kh - pads[0] - pads[1]), max(w, kw - pads[2] - pads[3])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, cg * groups)).astype(np.float32)
    weight = rng.standard_normal((og * groups, cg, kh, kw)).astype(np.float32)
    bias = rng.standard_normal(og * groups).astype(np.float32) if with_bias else None
    alpha = rng.uniform(0.1, 2, og * groups).astype(np.float32)
    weights = BWNConvWeights.from_float(weight, groups=groups, alpha=alpha)
    signs = sign_pm1(weight)
    a64 = alpha.astype(np.float64)
    affine = {}
    xin = x
    if seed % 3 == 0:  # a folded BatchNorm before the conv: the kernel reads in_scale * x + in_shift
        affine = dict(in_scale=rng.uniform(-2, 2, cg * groups).astype(np.float32))
        affine["in_shift"] = rng.standard_normal(cg * groups).astype(np.float32)
        xin = x * affine["in_scale"] + affine["in_shift"]  # as the kernel rounds it: float32 * then +
    want = conv2d_nhwc(xin, signs, (sh, sw), pads, groups) * a64
    magnitude = conv2d_nhwc(np.abs(xin), np.abs(signs), (sh, sw), pads, groups) * a64
    if bias is not None:
        want, magnitude = want + bias, magnitude + np.abs(bias)
    relu = seed % 4 == 1  # the fused ReLU of bwn_conv2d's `relu` attribute (no larger error)
    if relu:
        want = np.maximum(want, 0)
    results = run_everywhere(lambda: bwn_conv2d(x, weights, bias, stride=(sh, sw), padding=pads, relu=relu, **affine))
    _check(results, want, magnitude, conv_depth(kh * kw * cg))
    # Storage is one bit per weight (plus the same bits re-laid for the kernel) and alpha.
    assert weights.packed.nbytes == og * groups * kh * kw * 8 * -(-cg // 64)
    assert weights._lanes.nbytes == groups * -(-og // 16) * 16 * -(-(kh * kw * cg) // 32) * 4


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 17),
    st.sampled_from([1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 200, 1000, 9216]),
    st.sampled_from([1, 3, 7, 8, 9, 63, 65, 200]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_bwn_dense_matches_float64_reference_everywhere(n, i, o, with_bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, i)).astype(np.float32)
    if seed % 2:
        x = np.maximum(x, 0)  # a ReLU's output: every partial sum of one sign
    weight = rng.standard_normal((o, i)).astype(np.float32)
    alpha = rng.uniform(0.1, 2, o).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32) if with_bias else None
    weights = BWNDenseWeights.from_float(weight, alpha=alpha)
    a64 = alpha.astype(np.float64)
    want = x.astype(np.float64) @ sign_pm1(weight).T * a64
    magnitude = np.abs(x).astype(np.float64) @ np.ones_like(weight, np.float64).T * a64
    if bias is not None:
        want, magnitude = want + bias, magnitude + np.abs(bias)
    _check(run_everywhere(lambda: bwn_dense(x, weights, bias)), want, magnitude, dense_depth(i))


def test_bwn_weights_keep_bits_only():
    rng = np.random.default_rng(0)
    conv = BWNConvWeights.from_float(rng.standard_normal((384, 256, 3, 3)).astype(np.float32))
    dense = BWNDenseWeights.from_float(rng.standard_normal((512, 1000)).astype(np.float32))
    for weights, floats in ((conv, 384 * 256 * 9), (dense, 512 * 1000)):
        held = sum(v.nbytes for v in vars(weights).values() if isinstance(v, np.ndarray))
        assert held < floats * 4 / 14  # two layouts of the bits + alpha, not floats
    # `weight` is computed on access, for inspection only
    assert conv.weight.shape == (384, 256, 3, 3) and "weight" not in vars(conv)
    np.testing.assert_array_equal(np.abs(dense.weight), np.broadcast_to(dense.alpha[:, None], (512, 1000)))


def test_bwn_dense_rejects_bits_past_the_last_feature():
    packed = np.full((2, 1), 1 << 40, np.uint64)
    with pytest.raises(ValueError, match="past the last"):
        BWNDenseWeights(packed, np.ones(2, np.float32), in_features=40)


def test_bwn_rejects_mismatched_inputs():
    conv = BWNConvWeights.from_float(np.ones((4, 5, 3, 3), np.float32))
    with pytest.raises(ValueError, match="channels"):
        bwn_conv2d(np.zeros((1, 4, 4, 6), np.float32), conv)
    dense = BWNDenseWeights.from_float(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="features"):
        bwn_dense(np.zeros((1, 6), np.float32), dense)


def test_bwn_empty_batch():
    conv = BWNConvWeights.from_float(np.ones((4, 5, 3, 3), np.float32))
    assert bwn_conv2d(np.zeros((0, 4, 4, 5), np.float32), conv).shape == (0, 2, 2, 4)
    dense = BWNDenseWeights.from_float(np.ones((4, 5), np.float32))
    assert bwn_dense(np.zeros((0, 5), np.float32), dense).shape == (0, 4)


def test_relu_after_a_bwn_conv_fuses_into_its_epilogue():
    from xnorinfer.graph import passes
    from xnorinfer.graph.ir import Graph, Node

    rng = np.random.default_rng(1)
    bits = BWNConvWeights.from_float(rng.standard_normal((8, 3, 3, 3)).astype(np.float32)).packed
    attrs = {"in_channels": 3, "stride": [1, 1], "padding": [1, 1, 1, 1], "groups": 1}
    conv = Node("bwn_conv2d", "conv", ["x"], "y", attrs, {"weight_bits": bits, "alpha": np.ones(8, np.float32)})
    graph = passes.optimize(Graph([conv, Node("relu", "relu", ["y"], "z")], "x", (5, 5, 3), "z"))
    assert [(n.op, n.attrs.get("relu")) for n in graph.nodes] == [("bwn_conv2d", True)]


def test_batch_norm_before_a_bwn_conv_folds_into_its_input():
    from xnorinfer.graph import passes
    from xnorinfer.graph.ir import Graph, Node

    rng = np.random.default_rng(2)
    bits = BWNConvWeights.from_float(rng.standard_normal((8, 3, 3, 3)).astype(np.float32)).packed
    attrs = {"in_channels": 3, "stride": [1, 1], "padding": [1, 1, 1, 1], "groups": 1}
    bn = {k: rng.uniform(0.5, 2, 3).astype(np.float32) for k in ("mean", "var", "gamma", "beta")}
    nodes = [
        Node("batch_norm", "bn", ["x"], "b", {"eps": 1e-5}, bn),
        Node("bwn_conv2d", "conv", ["b"], "y", attrs, {"weight_bits": bits, "alpha": np.ones(8, np.float32)}),
    ]
    graph = passes.optimize(Graph(nodes, "x", (5, 5, 3), "y"))
    assert [n.op for n in graph.nodes] == ["bwn_conv2d"] and graph.nodes[0].inputs == ["x"]
    scale = bn["gamma"] / np.sqrt(bn["var"].astype(np.float64) + 1e-5)
    np.testing.assert_allclose(graph.nodes[0].params["in_scale"], scale, rtol=1e-6)
    np.testing.assert_allclose(graph.nodes[0].params["in_shift"], bn["beta"] - bn["mean"] * scale, rtol=1e-5)

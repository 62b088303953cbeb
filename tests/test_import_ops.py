"""The float and layout ops the importer adds (sign, clamp, softmax, strided_slice, pad,
channel_shuffle) against PyTorch's own ops on random shapes, in NHWC, and as graph nodes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xnorinfer import ops
from xnorinfer.graph import GraphBuilder, GraphError, infer_shapes

torch = pytest.importorskip("torch")


def nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t):
    return t.numpy().transpose(0, 2, 3, 1)


maps = st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.sampled_from([1, 3, 8, 65]))


def _random(shape, seed, zeros=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    if zeros:
        x[rng.random(shape) < 0.2] = 0.0
        x[rng.random(shape) < 0.05] = -0.0
    return x


@settings(max_examples=40, deadline=None)
@given(maps, st.integers(0, 2**31), st.sampled_from(["zero", "one", "minus_one"]), st.booleans())
def test_sign_is_torch_sign_or_where(shape, seed, zero_to, with_bias):
    x = _random(shape, seed)
    bias = np.round(_random(shape[-1:], seed + 1, zeros=False)) if with_bias else None
    v = nchw(x) + (0 if bias is None else torch.from_numpy(bias).reshape(1, -1, 1, 1))
    want = {"zero": torch.sign(v), "one": torch.where(v >= 0, 1.0, -1.0), "minus_one": torch.where(v > 0, 1.0, -1.0)}[
        zero_to
    ]
    np.testing.assert_array_equal(ops.sign(x, bias, zero_to), nhwc(want))


@settings(max_examples=30, deadline=None)
@given(maps, st.integers(0, 2**31), st.sampled_from([(None, 0.0), (0.0, None), (-1.0, 1.0), (0.0, 6.0)]))
def test_clamp_is_torch_clamp(shape, seed, bounds):
    x = _random(shape, seed)
    want = torch.clamp(nchw(x), *bounds)
    np.testing.assert_array_equal(ops.clamp(x, *bounds), nhwc(want))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 50), st.integers(0, 2**31))
def test_softmax_and_log_softmax_match_torch(n, f, seed):
    x = _random((n, f), seed) * 10
    t = torch.from_numpy(x)
    np.testing.assert_allclose(ops.softmax(x), torch.softmax(t, 1).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ops.log_softmax(x), torch.log_softmax(t, 1).numpy(), rtol=1e-6, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(maps, st.integers(0, 2**31), st.data())
def test_strided_slice_is_torch_slicing(shape, seed, data):
    x = _random(shape, seed)
    start, stop, step = [], [], []
    for size in shape[1:]:
        a = data.draw(st.integers(0, size - 1))
        start.append(a)
        stop.append(data.draw(st.integers(a + 1, size)))
        step.append(data.draw(st.integers(1, 3)))
    (h0, w0, c0), (h1, w1, c1), (hs, ws, cs) = start, stop, step
    want = nchw(x)[:, c0:c1:cs, h0:h1:hs, w0:w1:ws]
    np.testing.assert_array_equal(ops.strided_slice(x, start, stop, step), nhwc(want))


@settings(max_examples=40, deadline=None)
@given(
    maps,
    st.integers(0, 2**31),
    st.lists(st.integers(0, 3), min_size=6, max_size=6),
    st.sampled_from([0.0, 1.0, -1.0, 0.5]),
)
def test_pad_is_torch_constant_pad(shape, seed, widths, value):
    x = _random(shape, seed)
    ht, hb, wl, wr, cb, ca = widths
    want = torch.nn.functional.pad(nchw(x), (wl, wr, ht, hb, cb, ca), "constant", value)
    np.testing.assert_array_equal(ops.pad(x, [ht, wl, cb], [hb, wr, ca], value), nhwc(want))


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 5),
    st.integers(1, 5),
    st.sampled_from([1, 2, 3, 4]),
    st.integers(1, 5),
    st.integers(0, 2**31),
)
def test_channel_shuffle_is_shufflenets_view_transpose_view(n, h, w, groups, per_group, seed):
    c = groups * per_group
    x = _random((n, h, w, c), seed)
    t = nchw(x)
    want = t.view(n, groups, per_group, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
    np.testing.assert_array_equal(ops.channel_shuffle(x, groups), nhwc(want))


def test_layout_ops_refuse_bad_arguments():
    x = np.zeros((1, 4, 4, 6), np.float32)
    with pytest.raises(ValueError, match="groups"):
        ops.channel_shuffle(x, 4)
    with pytest.raises(ValueError, match="start < stop"):
        ops.strided_slice(x, [2, 0, 0], [2, 4, 6], [1, 1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        ops.pad(x, [-1, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="zero_to"):
        ops.sign(x, None, "two")
    with pytest.raises(ValueError, match="exceed"):
        ops.clamp(x, 1.0, -1.0)


def test_graph_shapes_of_layout_ops():
    b = GraphBuilder((8, 8, 6))
    y = b.add("strided_slice", b.input, "s", {"start": [0, 1, 0], "stop": [8, 8, 6], "step": [2, 2, 1]})
    y = b.add("pad", y, "p", {"before": [0, 0, 3], "after": [0, 0, 3], "value": 0.0})
    y = b.add("channel_shuffle", y, "shuffle", {"groups": 4})
    y = b.add("sign", y, "sign", {"zero_to": "zero"})
    y = b.add("clamp", y, "clamp", {"min": 0.0, "max": None})
    infos = infer_shapes(b.build(y))
    assert infos["s"].shape == (4, 4, 6) and infos["p"].shape == (4, 4, 12) and infos["clamp"].shape == (4, 4, 12)
    bad = GraphBuilder((8, 8, 6))
    z = bad.add("strided_slice", bad.input, "s", {"start": [0, 0, 0], "stop": [9, 8, 6], "step": [1, 1, 1]})
    with pytest.raises(GraphError, match="does not fit"):
        infer_shapes(bad.build(z))

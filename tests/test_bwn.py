import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from xnorinfer.ops import BWNConvWeights, BWNDenseWeights, bwn_conv2d, bwn_dense

from reference import conv2d_nhwc, sign_pm1


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7), st.sampled_from([1, 3, 63, 65]),
       st.sampled_from([1, 2]), st.integers(1, 12), st.integers(1, 4), st.integers(1, 3),
       st.tuples(*[st.integers(0, 2)] * 4), st.integers(0, 2**32 - 1))
def test_bwn_conv2d_equals_alpha_sign_reference(n, h, w, cg, groups, og, k, stride, pads, seed):
    h, w = max(h, k - pads[0] - pads[1]), max(w, k - pads[2] - pads[3])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, cg * groups)).astype(np.float32)
    weight = rng.standard_normal((og * groups, cg, k, k)).astype(np.float32)
    bias = rng.standard_normal(og * groups).astype(np.float32)
    alpha = np.abs(weight).mean(axis=(1, 2, 3))
    want = conv2d_nhwc(x, alpha[:, None, None, None] * sign_pm1(weight), (stride, stride), pads, groups) + bias
    weights = BWNConvWeights.from_float(weight, groups=groups)
    got = bwn_conv2d(x, weights, bias, stride=stride, padding=pads)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    # Storage is one bit per weight plus alpha.
    assert weights.packed.nbytes == og * groups * k * k * 8 * -(-cg // 64)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.sampled_from([1, 3, 64, 200]), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_bwn_dense_equals_alpha_sign_reference(n, i, o, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, i)).astype(np.float32)
    weight = rng.standard_normal((o, i)).astype(np.float32)
    alpha = rng.uniform(0.1, 2, o).astype(np.float32)
    want = x.astype(np.float64) @ (alpha[:, None] * sign_pm1(weight)).T
    got = bwn_dense(x, BWNDenseWeights.from_float(weight, alpha=alpha))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)

import numpy as np
import pytest
from helpers import run_everywhere
from helpers.reference import sign_pm1
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xnorinfer.ops import pack_signs, packed_words, unpack_signs

AWKWARD_CHANNELS = [1, 3, 31, 32, 63, 64, 65, 127, 128, 200, 520]
ZERO_TO = ["one", "minus_one"]
# Every bound and element a float32 exactly: old NumPy (1.23/1.24) refuses a strategy element that
# float32 cannot hold, such as 1e-30.
TINY = float(np.float32(1e-30))
DENORMALS = [float(np.float32(v)) for v in (1e-45, -1e-45, 3e-45, -3e-45, 1e-40, -1e-40)]  # 1e-45: the smallest


def expected_words(x, bias, groups, zero_to="one"):
    """Words built bit by bit with Python ints, from the documented layout."""
    signs = sign_pm1(x, bias, zero_to)
    c = x.shape[-1]
    cg = c // groups
    per_group = -(-cg // 64)
    rows = signs.reshape(-1, c)
    out = np.zeros((rows.shape[0], groups * per_group), dtype=np.uint64)
    for r, row in enumerate(rows):
        for g in range(groups):
            for i in range(cg):
                if row[g * cg + i] < 0:
                    out[r, g * per_group + i // 64] |= np.uint64(1) << np.uint64(i % 64)
    return out.reshape(x.shape[:-1] + (groups * per_group,))


@st.composite
def activations(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.sampled_from(AWKWARD_CHANNELS))
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
    elements = st.floats(-4, 4, width=32) | st.sampled_from([0.0, -0.0, np.inf, -np.inf, TINY, -TINY])
    x = draw(hnp.arrays(np.float32, lead + (cg * groups,), elements=elements))
    bias = draw(st.none() | hnp.arrays(np.float32, cg * groups, elements=st.floats(-2, 2, width=32)))
    return x, bias, groups


@settings(max_examples=60, deadline=None)
@given(activations(), st.sampled_from(ZERO_TO))
def test_pack_signs_matches_bit_layout(case, zero_to):
    x, bias, groups = case
    want = expected_words(x, bias, groups, zero_to)
    for got in run_everywhere(lambda: pack_signs(x, bias, groups, zero_to=zero_to)).values():
        assert got.dtype == np.uint64 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@st.composite
def activations_with_ties(draw):
    """Inputs where x + bias is often exactly 0 (x = -bias, both signs of zero) or a denormal."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.sampled_from([1, 3, 63, 64, 65, 200]))
    c = cg * groups
    lead = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    special = st.sampled_from([0.0, -0.0, 1.0, -0.5] + DENORMALS)
    x = draw(hnp.arrays(np.float32, lead + (c,), elements=st.floats(-2, 2, width=32) | special | st.just(np.inf)))
    bias = draw(st.none() | hnp.arrays(np.float32, c, elements=st.floats(-2, 2, width=32) | special))
    if bias is not None:  # x = -bias exactly where the mask says: a zero sum, +0.0 (or -0.0 for -0 + -0)
        tie = draw(hnp.arrays(np.bool_, lead + (c,)))
        x = np.where(tie, -bias, x).astype(np.float32)
    return x, bias, groups


@settings(max_examples=80, deadline=None)
@given(activations_with_ties(), st.sampled_from(ZERO_TO))
def test_pack_signs_exact_zero_and_denormal_sums(case, zero_to):
    """zero_to="minus_one": -1 iff x + bias <= 0 (zeros of either sign, x = -bias), "one": iff < 0;
    positive denormal sums +1 and negative ones -1 in both; every ISA, 1 and 2 threads, batches."""
    x, bias, groups = case
    want = expected_words(x, bias, groups, zero_to)
    for config, got in run_everywhere(lambda: pack_signs(x, bias, groups, zero_to=zero_to)).items():
        np.testing.assert_array_equal(got, want, err_msg=str(config))
    np.testing.assert_array_equal(unpack_signs(want, x.shape[-1], groups), sign_pm1(x, bias, zero_to))


@settings(max_examples=60, deadline=None)
@given(activations())
def test_unpack_inverts_pack(case):
    x, bias, groups = case
    packed = pack_signs(x, bias, groups)
    np.testing.assert_array_equal(unpack_signs(packed, x.shape[-1], groups), sign_pm1(x, bias))


@pytest.mark.parametrize("c", AWKWARD_CHANNELS)
def test_large_batch_is_packed_identically_on_one_and_two_threads(c):
    rng = np.random.default_rng(c)
    x = rng.standard_normal((3, 17, 19, c)).astype(np.float32)
    results = list(run_everywhere(lambda: pack_signs(x)).values())
    for got in results:
        np.testing.assert_array_equal(got, results[0])
    np.testing.assert_array_equal(unpack_signs(results[0], c), sign_pm1(x))


def test_zero_convention_both_zeros_pack_as_plus_one():
    x = np.array([0.0, -0.0, -1e-45, 1e-45], dtype=np.float32)
    np.testing.assert_array_equal(unpack_signs(pack_signs(x), 4), [1, 1, -1, 1])


def test_zero_to_minus_one_packs_both_zeros_as_minus_one(each_kernel_config):
    x = np.array([0.0, -0.0, -1e-45, 1e-45, 0.5, -0.5] * 11, dtype=np.float32)  # 66: two words
    bias = np.array([0.0, -0.0, 0.0, 0.0, -0.5, 0.5] * 11, dtype=np.float32)
    np.testing.assert_array_equal(unpack_signs(pack_signs(x, zero_to="minus_one"), 66), [-1, -1, -1, 1, 1, -1] * 11)
    np.testing.assert_array_equal(
        unpack_signs(pack_signs(x, bias, zero_to="minus_one"), 66), [-1, -1, -1, 1, -1, -1] * 11
    )


@pytest.mark.parametrize("zero_to", ZERO_TO)
def test_nan_is_refused_in_either_mode(zero_to, each_kernel_config):
    x = np.zeros((2, 70), np.float32)
    x[1, 66] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pack_signs(x, zero_to=zero_to)


@pytest.mark.parametrize("zero_to", ["zero", "", None, 1, "ONE"])
def test_unknown_zero_to_is_refused(zero_to):
    with pytest.raises(ValueError, match="zero_to"):
        pack_signs(np.zeros((1, 3), np.float32), zero_to=zero_to)


def test_rsign_bias_is_added_before_the_sign():
    x = np.array([[0.5, 0.5, -0.25]], dtype=np.float32)
    bias = np.array([-0.5, -0.75, 0.25], dtype=np.float32)  # 0.0, -0.25, 0.0
    np.testing.assert_array_equal(unpack_signs(pack_signs(x, bias), 3), [[1, -1, 1]])


def test_unused_bits_stay_clear():
    x = -np.ones((2, 65), dtype=np.float32)
    packed = pack_signs(x)
    assert packed[0, 0] == np.uint64(2**64 - 1) and packed[0, 1] == np.uint64(1)


def test_packed_words():
    assert packed_words(1) == 1 and packed_words(64) == 1 and packed_words(65) == 2
    assert packed_words(130, groups=2) == 4
    with pytest.raises(ValueError, match="multiple of groups"):
        packed_words(10, groups=3)

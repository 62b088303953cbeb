"""Bad input gets a clear Python exception, never a crash or a silently wrong result."""

import numpy as np
import pytest

from xnorinfer.ops import (
    BinaryConvWeights,
    BinaryDenseWeights,
    BWNConvWeights,
    bconv2d,
    bdense,
    bwn_conv2d,
    pack_signs,
    unpack_signs,
)


@pytest.fixture
def conv():
    rng = np.random.default_rng(0)
    weights = BinaryConvWeights.from_float(rng.standard_normal((8, 10, 3, 3)).astype(np.float32))
    x = pack_signs(rng.standard_normal((1, 5, 5, 10)).astype(np.float32))
    return x, weights


def test_pack_rejects_float64():
    with pytest.raises(TypeError, match="float32"):
        pack_signs(np.zeros((2, 3)))


def test_pack_rejects_lists():
    with pytest.raises(TypeError, match="numpy.ndarray"):
        pack_signs([1.0, -1.0])


def test_pack_rejects_scalars():
    with pytest.raises(ValueError, match="dimensions"):
        pack_signs(np.array(1.0, dtype=np.float32))


def test_pack_rejects_non_contiguous():
    with pytest.raises(ValueError, match="C-contiguous"):
        pack_signs(np.zeros((4, 6), np.float32)[:, ::2])


def test_pack_rejects_nan():
    x = np.zeros((3, 70), np.float32)
    x[1, 65] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pack_signs(x)


def test_pack_rejects_bias_of_wrong_length():
    with pytest.raises(ValueError, match="one value per channel"):
        pack_signs(np.zeros((2, 5), np.float32), bias=np.zeros(4, np.float32))


def test_pack_rejects_non_finite_bias():
    with pytest.raises(ValueError, match="NaN or infinite"):
        pack_signs(np.zeros((2, 2), np.float32), bias=np.array([0, np.inf], np.float32))


def test_pack_rejects_groups_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="multiple of groups"):
        pack_signs(np.zeros((2, 5), np.float32), groups=2)


def test_unpack_rejects_wrong_word_count():
    with pytest.raises(ValueError, match="pack into 2 words"):
        unpack_signs(np.zeros((3, 1), np.uint64), 65)


def test_bconv_rejects_float_activations(conv):
    _, weights = conv
    with pytest.raises(TypeError, match="uint64"):
        bconv2d(np.zeros((1, 5, 5, 10), np.float32), weights)


def test_bconv_rejects_nchw_rank(conv):
    x, weights = conv
    with pytest.raises(ValueError, match="4 dimensions"):
        bconv2d(x[0], weights)


def test_bconv_rejects_non_contiguous(conv):
    x, weights = conv
    wide = np.repeat(x, 2, axis=2)
    with pytest.raises(ValueError, match="C-contiguous"):
        bconv2d(wide[:, :, ::2], weights)


def test_bconv_rejects_mismatched_input_channels(conv):
    _, weights = conv
    x = pack_signs(np.ones((1, 5, 5, 100), np.float32))
    with pytest.raises(ValueError, match="words per pixel"):
        bconv2d(x, weights)


def test_bconv_rejects_kernel_larger_than_padded_input(conv):
    x, weights = conv
    with pytest.raises(ValueError, match="larger than the padded input"):
        bconv2d(x[:, :1, :1].copy(), weights)


def test_bconv_rejects_bad_stride_and_padding(conv):
    x, weights = conv
    with pytest.raises(ValueError, match="stride"):
        bconv2d(x, weights, stride=0)
    with pytest.raises(ValueError, match="padding"):
        bconv2d(x, weights, padding=-1)
    with pytest.raises(ValueError, match="padding"):
        bconv2d(x, weights, padding=(1, 2, 3))


def test_bconv_rejects_unknown_pad_value(conv):
    x, weights = conv
    with pytest.raises(ValueError, match="pad_value"):
        bconv2d(x, weights, pad_value="reflect")


def test_bconv_rejects_wrong_epilogue_lengths(conv):
    x, weights = conv
    with pytest.raises(ValueError, match="scale"):
        bconv2d(x, weights, scale=np.ones(7, np.float32))
    with pytest.raises(ValueError, match="rprelu"):
        bconv2d(x, weights, rprelu=(np.ones(8), np.ones(8)))


def test_bconv_rejects_nan_in_epilogue(conv):
    x, weights = conv
    with pytest.raises(ValueError, match="NaN or infinite"):
        bconv2d(x, weights, bias=np.full(8, np.nan, np.float32))


def test_bconv_rejects_residual_of_wrong_shape(conv):
    x, weights = conv
    with pytest.raises(ValueError, match="residual"):
        bconv2d(x, weights, residual=np.zeros((1, 5, 5, 8), np.float32))


def test_bconv_rejects_inf_residual(conv):
    x, weights = conv
    residual = np.zeros((1, 3, 3, 8), np.float32)
    residual[0, 1, 1, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        bconv2d(x, weights, residual=residual)


def test_bconv_rejects_weights_of_another_kind(conv):
    x, _ = conv
    with pytest.raises(TypeError, match="BinaryConvWeights"):
        bconv2d(x, np.zeros((8, 3, 3, 1), np.uint64))


def test_weights_reject_nan():
    w = np.ones((2, 3, 3, 3), np.float32)
    w[1, 2, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BinaryConvWeights.from_float(w)


def test_weights_reject_mismatched_word_count():
    with pytest.raises(ValueError, match="pack into 1 words"):
        BinaryConvWeights(np.zeros((4, 3, 3, 2), np.uint64), in_channels=10)


def test_weights_reject_bits_past_the_last_channel():
    packed = np.zeros((4, 1, 1, 1), np.uint64)
    packed[2, 0, 0, 0] = np.uint64(1) << np.uint64(10)
    with pytest.raises(ValueError, match="past the last input channel"):
        BinaryConvWeights(packed, in_channels=10)


def test_weights_reject_groups_that_do_not_divide():
    with pytest.raises(ValueError, match="groups"):
        BinaryConvWeights(np.zeros((4, 3, 3, 1), np.uint64), in_channels=9, groups=2)


def test_bdense_rejects_conv_weights_and_wrong_width():
    dense = BinaryDenseWeights.from_float(np.ones((4, 70), np.float32))
    with pytest.raises(ValueError, match="words per pixel"):
        bdense(pack_signs(np.ones((2, 10), np.float32)), dense)
    conv_weights = BinaryConvWeights.from_float(np.ones((4, 70, 1, 1), np.float32))
    with pytest.raises(TypeError, match="BinaryDenseWeights"):
        bdense(pack_signs(np.ones((2, 70), np.float32)), conv_weights)


def test_bwn_rejects_wrong_alpha_length():
    packed = pack_signs(np.ones((4, 3, 3, 5), np.float32))
    with pytest.raises(ValueError, match="alpha"):
        BWNConvWeights(packed, np.ones(3, np.float32), in_channels=5)


def test_bwn_conv_rejects_nan_activations():
    weights = BWNConvWeights.from_float(np.ones((4, 5, 3, 3), np.float32))
    x = np.zeros((1, 4, 4, 5), np.float32)
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bwn_conv2d(x, weights)


def test_bconv_rejects_activation_bits_past_the_last_channel():
    weights = BinaryConvWeights.from_float(np.ones((4, 3, 1, 1), np.float32))
    x = pack_signs(np.ones((1, 2, 2, 3), np.float32))
    x[0, 1, 1, 0] |= np.uint64(1) << np.uint64(40)
    with pytest.raises(ValueError, match="past the last channel"):
        bconv2d(x, weights)


def test_bconv_rejects_out_overlapping_residual(conv):
    x, weights = conv
    residual = np.zeros((1, 3, 3, 8), np.float32)
    with pytest.raises(ValueError, match="overlap"):
        bconv2d(x, weights, residual=residual, out=residual)


def test_bconv_rejects_out_of_the_wrong_shape(conv):
    x, weights = conv
    with pytest.raises(ValueError, match="out must be a float32 array of shape"):
        bconv2d(x, weights, out=np.zeros((1, 3, 3, 9), np.float32))


def test_weights_reject_empty_dimensions():
    with pytest.raises(ValueError, match="empty dimension"):
        BinaryConvWeights(np.zeros((0, 3, 3, 1), np.uint64), in_channels=10)


def test_bconv_rejects_an_out_whose_pixels_are_not_evenly_spaced(conv):
    x, weights = conv
    big = np.zeros((1, 3, 6, 8), np.float32)
    with pytest.raises(ValueError, match="channel slice"):
        bconv2d(x, weights, out=big[:, :, 1:4])  # a window of each row: rows are 6 pixels apart

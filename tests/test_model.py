import numpy as np
import pytest
from helpers import graphs

from xnorinfer import Model


@pytest.fixture(scope="module")
def model():
    return Model(graphs.tiny_reactnet(5), {"arch": "tiny"})


def batch(n=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, 12, 12)).astype(np.float32)


def test_nchw_and_nhwc_agree(model):
    x = batch()
    np.testing.assert_array_equal(
        model.predict(x), model.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), layout="NHWC")
    )


def test_float64_and_non_contiguous_input_are_accepted(model):
    x = batch()
    want = model.predict(x)
    np.testing.assert_array_equal(model.predict(x.astype(np.float64)), want)
    np.testing.assert_array_equal(model.predict(np.asfortranarray(x)), want)


def test_batch_size_splits_the_batch(model):
    x = batch(5)
    np.testing.assert_allclose(model.predict(x, batch_size=2), model.predict(x, batch_size=5), rtol=1e-5, atol=1e-5)


def test_default_batch_size_keeps_the_intermediates_within_the_working_set(model, monkeypatch):
    import xnorinfer.model as model_module

    per_image = model._executor.bytes_per_image((12, 12, 3))
    assert 0 < per_image < 10**6
    assert model.default_batch_size((12, 12, 3)) == model_module.WORKING_SET_BYTES // per_image
    calls = []
    run = model._executor.run
    monkeypatch.setattr(model._executor, "run", lambda x: calls.append(len(x)) or run(x))
    monkeypatch.setattr(model_module, "WORKING_SET_BYTES", 2 * per_image + 1)  # 2 images at a time
    x = batch(5)
    out = model.predict(x)
    assert calls == [2, 2, 1]
    np.testing.assert_allclose(out, model.predict(x, batch_size=5), rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(model_module, "WORKING_SET_BYTES", 1)  # an image larger than it: one at a time
    calls.clear()
    model.predict(x)
    assert calls == [1] * 5
    with pytest.raises(ValueError, match="does not fit this model"):
        model.predict(np.zeros((1, 3, 1, 1), np.float32))


def test_other_spatial_sizes_run_through_global_pooling(model):
    out = model.predict(np.zeros((1, 3, 20, 16), np.float32))
    assert out.shape == (1, 10)


def test_summary_lists_fused_layers_and_macs(model):
    text = model.summary()
    assert "bconv2d" in text and "binary MACs" in text and "b3.conv3" in text


@pytest.mark.parametrize(
    "x, error, message",
    [
        (np.zeros((1, 3, 12, 12), np.uint8), TypeError, "float array"),
        ([[0.0]], TypeError, "numpy.ndarray"),
        (np.zeros((3, 12, 12), np.float32), ValueError, "4-D"),
        (np.zeros((1, 4, 12, 12), np.float32), ValueError, "3 input channels"),
        (np.full((1, 3, 12, 12), np.nan, np.float32), ValueError, "NaN"),
        (np.full((1, 3, 12, 12), np.inf, np.float32), ValueError, "infinite"),
        (np.zeros((1, 3, 1, 1), np.float32), ValueError, "does not fit this model"),
    ],
)
def test_bad_inputs(model, x, error, message):
    with pytest.raises(error, match=message):
        model.predict(x)


def test_bad_layout_and_batch_size(model):
    with pytest.raises(ValueError, match="layout"):
        model.predict(batch(), layout="CHWN")
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(batch(), batch_size=0)


def test_empty_batch(model):
    assert model.predict(np.zeros((0, 3, 12, 12), np.float32)).shape == (0, 10)

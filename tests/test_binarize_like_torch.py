"""The XNOR/BWN converters binarize with PyTorch's float32 arithmetic, in BinOp's order.

A weight whose centred value is within an ulp of 0 takes its sign from how the channel mean was
rounded, so the converter must round as torch does: with torch when it is installed, otherwise
with a NumPy emulation of torch's CPU sum kernels (xnorinfer/convert/_torch_sums.py). These tests
hold the emulation to torch bit for bit, on weights built to sit on that knife edge."""

import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the reference here is torch itself")

from byom.xnor_resnet import BinOp, randomize, resnet20_bwn  # noqa: E402
from helpers import torch_reference as ref  # noqa: E402

from xnorinfer.convert import _torch_sums, from_torch, reactnet, xnornet  # noqa: E402

SHAPES = [(192, 96, 5, 5), (500, 800), (64, 64, 3, 3), (160, 192, 1, 1), (10, 4096), (16, 3, 3, 3), (7, 17)]


def pin_to_torch_mean(w: np.ndarray, steps: int = 8) -> np.ndarray:
    """Set input channel 0 of every (o, kh, kw) to the channel mean torch computes, iterated to a
    fixed point (each step moves the mean by 1/I of the change): torch then centres that weight
    to exactly 0, and any other summation order misses 0 by an ulp either way."""
    w = w.copy()
    for _ in range(steps):
        w[:, :1] = torch.from_numpy(w).mean(1, keepdim=True).numpy()
    return w


def near_zero_mean(shape, seed):
    """Trained-looking latent weights: near-zero channel means, a wide spread, some rows pinned."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(shape) * rng.choice([0.01, 0.3, 3.0])).astype(np.float32)
    w -= w.mean(axis=1, keepdims=True, dtype=np.float32)
    return pin_to_torch_mean(w)


def torch_binop(w: np.ndarray, centered: bool):
    t = torch.from_numpy(w.copy())
    if centered:
        t = t.add(t.mean(1, keepdim=True).mul(-1).expand_as(t)).clamp(-1.0, 1.0)
    return t.numpy(), BinOp.alpha(t).reshape(-1).numpy()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_emulated_sums_are_torch_sums(shape):
    for seed in range(3):
        w = near_zero_mean(shape, seed)
        t = torch.from_numpy(w)
        last = w.ndim - 1
        assert np.array_equal(_torch_sums.sum_dim1(w), t.sum(1, keepdim=True).numpy())
        assert np.array_equal(_torch_sums.mean_dim1(w), t.mean(1, keepdim=True).numpy())
        assert np.array_equal(_torch_sums.abs_sum_last(w), t.norm(1, last, keepdim=True).numpy())
        assert np.array_equal(_torch_sums.sum_last(w), t.sum(last, keepdim=True).numpy())


@pytest.mark.parametrize("centered", [True, False], ids=["centred", "plain"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_numpy_binarization_is_torch_binop_bit_for_bit(shape, centered):
    for seed in range(3):
        w = near_zero_mean(shape, seed)
        want_w, want_alpha = torch_binop(w, centered)
        for got_w, got_alpha in (xnornet._binarize_numpy(w, centered), xnornet.binarize(w, centered)):
            assert np.array_equal(got_w.view(np.uint32), want_w.view(np.uint32))  # -0.0 and +0.0 too
            assert np.array_equal(got_alpha, want_alpha)


@pytest.mark.parametrize("shape", [(192, 96, 5, 5), (500, 800), (64, 64, 3, 3)], ids=lambda s: "x".join(map(str, s)))
def test_numpy_mean_centres_some_weights_to_the_wrong_side(shape):
    """Why the emulation exists: NumPy's pairwise mean misses torch's by an ulp or more on most
    rows. A weight pinned to torch's mean is centred to exactly 0 by torch (sign 0) and to +-tiny
    by NumPy; moved one ulp from torch's mean towards NumPy's, its two signs are opposite."""
    w = near_zero_mean(shape, seed=0)
    naive_mean = w.mean(axis=1, keepdims=True, dtype=np.float32)
    nudged = w.copy()
    nudged[:, :1] = np.nextafter(torch.from_numpy(w).mean(1, keepdim=True).numpy(), naive_mean)
    for weight, torch_zero in ((w, True), (nudged, False)):
        torch_centred, _ = torch_binop(weight, True)
        naive = np.clip(weight - weight.mean(axis=1, keepdims=True, dtype=np.float32), -1, 1)
        if torch_zero:
            assert np.count_nonzero((torch_centred == 0) & (naive != 0)) > 0
        else:
            assert np.count_nonzero(np.sign(naive) * np.sign(torch_centred) < 0) > 0
        emulated, _ = xnornet._binarize_numpy(weight, True)
        assert np.array_equal(np.sign(emulated), np.sign(torch_centred))


def test_converter_weights_are_binop_weights():
    """xnornet.binarize reproduces, weight for weight, what BinOp leaves in a model before test."""
    model = randomize(resnet20_bwn(), seed=3, calibrate=False)
    latent = {n: p.detach().numpy().copy() for n, p in model.named_parameters() if p.dim() == 4}
    bin_op = BinOp(model)
    bin_op.binarization()
    binarized = [n for n, p in model.named_parameters() if any(p is w for w in bin_op.target_modules)]
    assert len(binarized) == 18
    params = dict(model.named_parameters())
    for name in binarized:
        w, alpha = xnornet.binarize(latent[name], centered=True)
        assert torch.equal(torch.from_numpy(np.sign(w) * alpha[:, None, None, None]), params[name].data), name


@pytest.mark.parametrize("with_torch", [True, False], ids=["torch", "numpy-only"])
def test_a_weight_centred_to_zero_is_reported(monkeypatch, with_torch):
    model = ref.LeNet5()
    ref.randomize_(model, seed=9)
    with torch.no_grad():
        w = model.bin_conv2.conv.weight
        w.copy_(torch.from_numpy(pin_to_torch_mean(w.numpy())))
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    if not with_torch:
        monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails, as without torch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_torch(state, "xnor-lenet5")
    text = " ".join(str(c.message) for c in caught)
    assert "exactly 0" in text and "bin_conv2.conv" in text


@pytest.mark.parametrize(
    "shape", [(512, 512, 3, 3), (1024, 1024, 1, 1), (64, 32, 3, 3)], ids=lambda s: "x".join(map(str, s))
)
def test_reactnet_alpha_is_torch_nested_mean(monkeypatch, shape):
    """ReActNet's and Bi-Real's alpha = mean(mean(mean(|W|, 3), 2), 1): NumPy's means miss torch's
    in the last bit on many channels; the converter's, with or without torch, does not."""
    w = torch.randn(shape, generator=torch.Generator().manual_seed(11)) * 0.05
    want = (
        torch.mean(torch.mean(torch.mean(w.abs(), dim=3, keepdim=True), dim=2, keepdim=True), dim=1, keepdim=True)
        .reshape(-1)
        .numpy()
    )
    w = w.numpy()
    naive = np.abs(w).mean(axis=3, dtype=np.float32).mean(axis=2, dtype=np.float32).mean(axis=1, dtype=np.float32)
    assert np.count_nonzero(naive != want) > 0
    assert np.array_equal(reactnet.nested_mean_abs(w), want)
    monkeypatch.setitem(sys.modules, "torch", None)
    assert np.array_equal(reactnet.nested_mean_abs(w), want)

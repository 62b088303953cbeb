"""Smoke tests of the byom model zoo (tests/byom): each model runs in eval, binarizes its weights
the way its authors' code does, and survives a round trip through a checkpoint in its own layout."""

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the byom models are PyTorch models")
import torch.nn.functional as F  # noqa: E402
from byom import binarynet_mlp, birealnet, irnet, odd_model, reactnet_official, xnor_resnet  # noqa: E402
from helpers import torch_reference as ref  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("XNORINFER_DATA", ROOT.parent / "shared" / "data"))

# IR-Net's own code calls BinaryQuantize().apply(...) on an instance, which torch 2.x deprecates
pytestmark = pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")


def eval_logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


def assert_round_trip(module, model, make, x, path, key="state_dict", prefix=""):
    """Checkpoint written in the original's layout, read back into a fresh model: same logits."""
    module.save_checkpoint(model, path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt if key is None else ckpt[key]
    assert all(k.startswith(prefix) for k in state)
    fresh = make()
    fresh.load_state_dict({k[len(prefix) :]: v for k, v in state.items()}, strict=True)
    assert torch.equal(eval_logits(fresh, x), eval_logits(model, x))
    return ckpt


def per_output_magnitudes(w):
    return w.abs().reshape(len(w), -1)


@pytest.mark.parametrize("make", [xnor_resnet.resnet20_xnor, xnor_resnet.resnet20_bwn], ids=["xnor", "bwn"])
def test_xnor_resnet20(tmp_path, make):
    model = xnor_resnet.randomize(make(), seed=0)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ckpt = assert_round_trip(xnor_resnet, model, make, x, tmp_path / "resnet20.pth.tar")
    assert set(ckpt) == {"best_acc", "state_dict"} and len(ckpt["state_dict"]) == 116

    latent = {n: p.detach().clone() for n, p in model.named_parameters()}
    bin_op = xnor_resnet.prepare(model)
    assert not model.training
    logits = eval_logits(model, x)
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    binarized = {n for n, p in model.named_parameters() if any(p is w for w in bin_op.target_modules)}
    assert binarized == {n for n in latent if ".conv" in n and n.startswith("layer")}  # not conv1 nor linear
    for name, p in model.named_parameters():
        if name in binarized:  # alpha[o] * sign(W): one magnitude per output channel, never 0
            mags = per_output_magnitudes(p.data)
            assert (mags == mags[:, :1]).all() and (mags > 0).all(), name
        else:
            assert torch.equal(p.data, latent[name]), name
    bin_op.restore()  # back to the latent weights, as centred and clamped by this binarization
    for name, p in model.named_parameters():
        w = latent[name]
        want = w.add(w.mean(1, keepdim=True).mul(-1)).clamp(-1, 1) if name in binarized else w
        assert torch.equal(p.data, want), name


def test_xnor_resnet20_signs_of_relu_outputs_are_zero_or_one():
    """Why the fork's XNOR ResNet-20 is hard to import: its binary convs read sign(ReLU(.))."""
    model = xnor_resnet.randomize(xnor_resnet.resnet20_xnor(), seed=1)
    seen = []
    model.layer2[1].conv2.register_forward_pre_hook(lambda m, inp: seen.append(torch.sign(inp[0])))
    eval_logits(model, torch.randn(2, 3, 32, 32))
    values = set(seen[0].unique().tolist())
    assert values == {0.0, 1.0}


def test_trained_xnor_resnet20_checkpoint_scores_what_it_records(monkeypatch):
    """tests/data/resnet20_xnor_cifar10.pth, evaluated the fork's way (BinOp, then eval) on the
    1,000 lossless CIFAR-10 test images, gets the accuracy its training run recorded."""
    data = DATA / "cifar10_jpeg.npz"
    if not data.is_file():
        pytest.skip(f"{data} is absent (the data sets live in ../shared/data; see its README)")
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "training"))
    import train_resnet20_xnor as training

    ckpt = torch.load(ROOT / "tests" / "data" / "resnet20_xnor_cifar10.pth", map_location="cpu", weights_only=True)
    model = xnor_resnet.resnet20_xnor()
    model.load_state_dict(ckpt["state_dict"], strict=True)
    with np.load(data, allow_pickle=False) as z:
        x, y = training.normalize(z["test_exact_x"]), torch.from_numpy(z["test_exact_y"]).long()
    # within 0.2 pp: another CPU's float kernels may tip a near tie or two
    # accuracy() binarizes once, evaluates and restores, as the fork's test() does
    assert abs(training.accuracy(model, xnor_resnet.BinOp(model), x, y) - ckpt["best_acc"]) <= 0.2


def test_birealnet18(tmp_path):
    make = lambda: birealnet.birealnet18(num_classes=10, base_width=16)  # noqa: E731
    model = birealnet.randomize(make(), seed=2, input_size=32)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert eval_logits(model, x).shape == (2, 10)
    ckpt = assert_round_trip(birealnet, model, make, x, tmp_path / "model_best.pth.tar", prefix="module.")
    assert {"epoch", "state_dict", "best_top1_acc", "optimizer"} <= set(ckpt)
    assert "module.layer2.0.downsample.1.weight" in ckpt["state_dict"]
    assert ckpt["state_dict"]["module.layer1.0.binary_conv.weights"].shape == (16 * 16 * 9, 1)

    # The conv weight its forward builds, eval included: alpha * sign(W) through the clamp STE,
    # (a - c) + c with |c| <= 1, which rounds: alpha * sign(W) to within an ulp of 2, not exactly.
    conv = model.layer3[1].binary_conv
    seen = []
    handle = torch.nn.functional.conv2d
    try:
        F.conv2d = lambda inp, w, *a, **k: seen.append(w) or handle(inp, w, *a, **k)
        eval_logits(model, x)
    finally:
        F.conv2d = handle
    w = conv.weights.view(conv.shape)
    alpha = w.abs().mean(dim=3, keepdim=True).mean(dim=2, keepdim=True).mean(dim=1, keepdim=True)
    used = next(s for s in seen if s.shape == conv.shape and s.data_ptr() != w.data_ptr())
    torch.testing.assert_close(used, alpha * torch.sign(w), rtol=0, atol=2**-22)
    assert not torch.equal(used, alpha * torch.sign(w))


def test_irnet_resnet20(tmp_path):
    model = irnet.randomize(irnet.resnet20_1w1a(), seed=3)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    assert eval_logits(model, x).shape == (2, 10)
    ckpt = assert_round_trip(irnet, model, irnet.resnet20_1w1a, x, tmp_path / "model.th", prefix="module.")
    assert set(ckpt) == {"state_dict", "best_prec1"}
    # The binary weight IRConv2d convolves with: sign(standardized W) * 2**round(log2 mean|bw|)
    conv = model.layer2[0].conv1
    w = conv.weight
    bw = w - w.view(len(w), -1).mean(-1).view(-1, 1, 1, 1)
    bw = bw / bw.view(len(w), -1).std(-1).view(-1, 1, 1, 1)
    scale = torch.pow(2.0, torch.log2(bw.abs().view(len(w), -1).mean(-1)).round())
    folded = torch.sign(bw) * scale.view(-1, 1, 1, 1)
    assert set(scale.tolist()) == {0.5, 1.0}  # both scales occur
    mags = per_output_magnitudes(folded)
    assert (mags == scale[:, None]).all()


def test_reactnet_official_matches_the_reference_and_the_converter(tmp_path):
    # Same keys and the same arithmetic as torch_reference.ReActNetA, which the converter tests use.
    reference = ref.ReActNetA(num_classes=10, channels=reactnet_official.small_stage_out_channel)
    ref.randomize_(reference, seed=4)
    model = reactnet_official.reactnet(10, reactnet_official.small_stage_out_channel, stem_stride=2)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    assert torch.equal(eval_logits(model, x), eval_logits(reference, x))
    assert len(reactnet_official.reactnet().state_dict()) == 298

    # The small 32x32 variant: randomized, written as train.py writes it, converted by reactnet-a.
    make = lambda: reactnet_official.reactnet(10, reactnet_official.small_stage_out_channel, stem_stride=1)  # noqa: E731
    model = reactnet_official.randomize(make(), seed=5, input_size=32)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    path = tmp_path / "model_best.pth.tar"
    assert_round_trip(reactnet_official, model, make, x, path, prefix="module.")
    from xnorinfer.convert import from_torch

    engine = from_torch(path, "reactnet-a", input_size=32, stem_stride=1)
    want = eval_logits(model, x).numpy()
    got = engine.predict(x.numpy())
    assert (got.argmax(1) == want.argmax(1)).all()
    assert abs(got - want).max() < 1e-3 * abs(want).max()


def test_binarynet_mlp(tmp_path):
    make = lambda: binarynet_mlp.binarynet_mlp(width=32, infl_ratio=1)  # noqa: E731
    model = binarynet_mlp.randomize(make(), seed=6)
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(6))
    out = eval_logits(model, x)
    assert out.shape == (4, 10)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(4))  # log-probabilities, as the original
    ckpt = assert_round_trip(binarynet_mlp, model, make, x, tmp_path / "checkpoint.pth.tar")
    assert set(ckpt) == {"epoch", "model", "config", "state_dict", "best_prec1", "regime"}
    # fc1: sign(W) on the float pixels; fc2: sign(W) on sign(input); bias added after
    flat = x.view(4, -1)
    with torch.no_grad():
        torch.testing.assert_close(model.fc1(flat), F.linear(flat, model.fc1.weight.sign(), model.fc1.bias))
        h = torch.randn(4, 32)
        torch.testing.assert_close(model.fc2(h), F.linear(h.sign(), model.fc2.weight.sign(), model.fc2.bias))


def test_odd_model(tmp_path):
    model = odd_model.randomize(odd_model.odd_net(), seed=7)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    assert eval_logits(model, x).shape == (2, 10)
    assert_round_trip(odd_model, model, odd_model.odd_net, x, tmp_path / "odd.pth", key=None)
    # w1: a magnitude per output channel; w2: one for the whole tensor
    w1 = model.w1.sign() * model.w1.abs().mean(dim=(1, 2, 3), keepdim=True)
    mags = per_output_magnitudes(w1)
    assert (mags == mags[:, :1]).all() and len(set(mags[:, 0].tolist())) > 1
    w2 = model.w2.sign() * model.w2.abs().mean()
    assert len(set(w2.abs().flatten().tolist())) == 1

"""PyTorch checkpoint -> .xnr -> engine, against faithful PyTorch models (tests/helpers/torch_reference.py).

Two methods prove equality despite binary nets being chaotic (a 1-ulp difference before a sign can
flip it and change everything downstream):
- grid: parameters and inputs on a coarse dyadic grid, so float32 arithmetic is exact in any
  order; engine and PyTorch logits must then agree to the rounding of the final pooling and fc.
- layer by layer: realistic random parameters; every engine layer is fed the reference's own input
  and its output compared with the PyTorch module of the same name (xnorinfer.testing, which also
  explains sign flips at near ties end to end)."""

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the converters need torch: pip install -e '.[test]'")

from helpers import torch_reference as ref  # noqa: E402

import xnorinfer  # noqa: E402
from xnorinfer.convert import ConversionError, from_torch  # noqa: E402
from xnorinfer.testing import assert_matches_torch  # noqa: E402


def nhwc(t):
    return np.ascontiguousarray(t.detach().numpy().transpose(0, 2, 3, 1)) if t.ndim == 4 else t.detach().numpy()


def torch_logits(model, x):
    with torch.no_grad():
        return model.eval()(x).numpy()


def convert(model, tmp_path, arch, kind, input_size=None, **save_options):
    path = tmp_path / f"{arch}.pth.tar"
    ref.save_like_training(model, path, kind=kind, **save_options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no binary weight may be exactly 0 here
        converted = from_torch(path, arch, input_size=input_size)
    converted.save(tmp_path / "model.xnr")
    return xnorinfer.load(tmp_path / "model.xnr")


def assert_logits_equal(engine, reference, rtol=1e-5):
    scale = np.abs(reference).max()
    np.testing.assert_allclose(engine, reference, rtol=0, atol=rtol * scale)


# ---- ReActNet-A ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_reactnet_a_official_size_on_the_grid(tmp_path):
    model = ref.ReActNetA()
    ref.gridify_(model, seed=0)
    x = ref.grid_input((2, 3, 224, 224), seed=0)
    engine = convert(model, tmp_path, "reactnet-a", "reactnet", legacy=True, cuda_tags=True)
    assert_logits_equal(engine.predict(x.numpy()), torch_logits(model, x))


def test_reactnet_a_official_size_layer_by_layer(tmp_path):
    model = ref.ReActNetA()
    ref.randomize_(model, seed=1)
    engine = from_torch(model.state_dict(), "reactnet-a", input_size=64)  # a bare state_dict, no prefix
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    report = assert_matches_torch(engine, model, x.numpy(), rtol=1e-4)
    assert len(report.layers) > 200  # every block's modules were compared


def test_reactnet_a_key_names_match_the_reference():
    keys = ref.ReActNetA().state_dict().keys()
    assert len(keys) == 298
    assert "feature.1.binary_pw_down1.weights" in keys and "feature.13.binary_pw.weights" in keys


# ---- ReActNet-18 --------------------------------------------------------------------------------


@pytest.mark.parametrize("flat", [False, True], ids=["4d-weight", "flat-weights"])
def test_reactnet18_on_the_grid(tmp_path, flat):
    model = ref.ReActNet18(num_classes=10, flat_weights=flat)
    ref.gridify_(model, seed=4)
    x = ref.grid_input((2, 3, 64, 64), seed=4)
    engine = convert(model, tmp_path, "reactnet-18", "reactnet", input_size=64, legacy=flat)
    assert_logits_equal(engine.predict(x.numpy()), torch_logits(model, x))


def test_reactnet18_layer_by_layer(tmp_path):
    model = ref.ReActNet18(num_classes=1000)
    ref.randomize_(model, seed=5)
    engine = convert(model, tmp_path, "reactnet-18", "reactnet", input_size=64)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    report = assert_matches_torch(engine, model, x.numpy(), rtol=1e-4)
    assert {"layer4.3.move2", "maxpool", "fc"} <= {row.module for row in report.layers}


# ---- XNOR-Net and BWN ---------------------------------------------------------------------------

XNOR_CASES = {
    "nin": (lambda bin_act: ref.NIN(binary_activations=bin_act), "nin", (2, 3, 32, 32)),
    "lenet5": (lambda bin_act: ref.LeNet5(variant="A", binary_activations=bin_act), "lenet", (3, 1, 28, 28)),
    "lenet5-old": (lambda bin_act: ref.LeNet5(variant="B", binary_activations=bin_act), "lenet", (3, 1, 28, 28)),
    "lenet5-wide": (
        lambda bin_act: ref.LeNet5(variant="A", binary_activations=bin_act, widths=(24, 70, 130)),
        "lenet",
        (3, 1, 28, 28),
    ),
    "lenet5-wide-old": (
        lambda bin_act: ref.LeNet5(variant="B", binary_activations=bin_act, widths=(8, 33, 65)),
        "lenet",
        (3, 1, 28, 28),
    ),
    "alexnet": (
        lambda bin_act: ref.AlexNetXNOR(num_classes=10, binary_activations=bin_act),
        "alexnet",
        (1, 3, 227, 227),
    ),
}
# AlexNet's 227x227 input makes its cases the slow ones (pytest -m "not slow" skips them).
XNOR_PARAMS = [pytest.param(case, marks=pytest.mark.slow) if case == "alexnet" else case for case in XNOR_CASES]


def reference_binarized(model, centered):
    binarized = copy.deepcopy(model)
    ref.xnor_binarize_(binarized, centered=centered)
    return binarized


@pytest.mark.parametrize("case", XNOR_PARAMS)
@pytest.mark.parametrize("binary_activations", [True, False], ids=["xnor", "bwn"])
def test_xnor_nets_on_the_grid(tmp_path, case, binary_activations):
    make, kind, shape = XNOR_CASES[case]
    model = make(binary_activations)
    ref.gridify_(model, seed=6)
    x = ref.grid_input(shape, seed=6)
    arch = ("xnor-" if binary_activations else "bwn-") + case.split("-")[0]
    path = tmp_path / "ckpt.pth"
    ref.save_like_training(model, path, kind=kind, legacy=True, strip_num_batches_tracked=True)
    engine = from_torch(path, arch, centered=False)
    assert_logits_equal(engine.predict(x.numpy()), torch_logits(reference_binarized(model, False), x))


@pytest.mark.parametrize("case", XNOR_PARAMS)
@pytest.mark.parametrize("binary_activations", [True, False], ids=["xnor", "bwn"])
def test_xnor_nets_layer_by_layer(tmp_path, case, binary_activations):
    make, kind, shape = XNOR_CASES[case]
    model = make(binary_activations)
    ref.randomize_(model, seed=7)
    arch = ("xnor-" if binary_activations else "bwn-") + case.split("-")[0]
    path = tmp_path / "ckpt.pth"
    ref.save_like_training(model, path, kind=kind)
    engine = from_torch(path, arch)  # XNOR-Net-PyTorch's mean-centred binarization
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(7))
    reference = reference_binarized(model, True)
    report = assert_matches_torch(engine, reference, x.numpy(), rtol=1e-4)
    compared = {row.module for row in report.layers}
    assert all(f"{name}.relu" in compared for name, m in reference.named_modules() if isinstance(m, ref.BinConv2d))


# ---- strictness and bad checkpoints -------------------------------------------------------------


def test_missing_and_unexpected_keys_are_all_listed(tmp_path):
    state = ref.ReActNet18().state_dict()
    del state["layer2.0.downsample.1.weight"], state["fc.bias"]
    state["layer9.extra"] = torch.zeros(3)
    with pytest.raises(ConversionError) as info:
        from_torch(state, "reactnet-18")
    text = str(info.value)
    assert "missing keys (2)" in text and "layer2.0.downsample.1.weight" in text and "fc.bias" in text
    assert "unexpected keys (1): layer9.extra" in text


def test_wrong_arch_is_refused(tmp_path):
    with pytest.raises(ConversionError, match="does not match arch 'xnor-nin'"):
        from_torch(ref.ReActNet18().state_dict(), "xnor-nin")


def test_misshapen_key(tmp_path):
    state = ref.NIN().state_dict()
    state["xnor.3.conv.weight"] = torch.zeros(160, 192, 3, 3)
    with pytest.raises(ConversionError, match=r"wrong shapes \(1\): xnor.3.conv.weight"):
        from_torch(state, "xnor-nin")


def test_corrupt_checkpoint_file(tmp_path):
    path = tmp_path / "bad.pth"
    path.write_bytes(b"\x80\x02garbage" * 100)
    with pytest.raises(ConversionError, match="cannot be read as a PyTorch checkpoint"):
        from_torch(path, "reactnet-18")


def test_checkpoint_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"a": Evil()}}, path)
    with pytest.raises(ConversionError, match="cannot be read"):
        from_torch(path, "reactnet-18")


def test_unknown_arch_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown arch"):
        from_torch({}, "resnet-50")
    with pytest.raises(FileNotFoundError):
        from_torch(tmp_path / "none.pth", "reactnet-a")


def test_metadata_records_the_source(tmp_path):
    model = ref.LeNet5()
    path = tmp_path / "lenet.pth"
    ref.save_like_training(model, path, kind="lenet")
    converted = from_torch(path, "xnor-lenet5", classes=list("abcdefghij"), dataset="mnist")
    meta = converted.metadata
    assert meta["arch"] == "xnor-lenet5" and meta["classes"][3] == "d" and meta["input_size"] == [1, 28, 28]
    assert len(meta["source"]["sha256"]) == 64 and meta["source"]["file"] == "lenet.pth"
    with pytest.raises(ConversionError, match="10 classes"):
        from_torch(path, "xnor-lenet5", classes=["a", "b"])


def test_preprocessing_resize_is_imagenet_style_only_at_the_imagenet_size():
    model = ref.ReActNet18()
    ref.randomize_(model, seed=8)
    state = model.state_dict()
    assert from_torch(state, "reactnet-18").metadata["preprocess"] == {"resize": 256, "crop": 224}
    assert from_torch(state, "reactnet-18", input_size=64).metadata["preprocess"] == {"resize": 64, "crop": 64}

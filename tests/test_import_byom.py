"""from_module on models written the way public binary-network code writes them (tests/byom),
imported with their own model code and checkpoints in their own layouts."""

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="from_module imports PyTorch modules")

from byom import binarynet_mlp, birealnet, irnet, odd_model, reactnet_official, xnor_resnet  # noqa: E402
from helpers import graphs  # noqa: E402

import xnorinfer  # noqa: E402
from xnorinfer.cli import main as cli  # noqa: E402
from xnorinfer.convert import from_module, from_torch  # noqa: E402
from xnorinfer.testing import assert_matches_torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("XNORINFER_DATA", ROOT.parent / "shared" / "data"))
CHECKPOINT = ROOT / "tests" / "data" / "resnet20_xnor_cifar10.pth"

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*should not be instantiated:DeprecationWarning",
    "ignore:.*isinstance\\(treespec, LeafSpec\\).*:FutureWarning",
    "ignore:While compiling, we found certain side effects:UserWarning",
)


def _xnor_resnet(bwn=False, seed=0):
    model = (xnor_resnet.resnet20_bwn if bwn else xnor_resnet.resnet20_xnor)()
    xnor_resnet.randomize(model, seed)
    xnor_resnet.prepare(model)
    return model


def _model(factory, module, seed=0, **kwargs):
    model = factory(**kwargs)
    module.randomize(model, seed)
    return model.eval()


# (id, make the module, example input shape, ops that must run)
ZOO = [
    ("xnor-resnet20", lambda: _xnor_resnet(), (2, 3, 32, 32), {"bconv2d": 18}),
    ("bwn-resnet20", lambda: _xnor_resnet(bwn=True), (2, 3, 32, 32), {"bwn_conv2d": 18}),
    (
        "birealnet18",
        lambda: _model(birealnet.birealnet18, birealnet, num_classes=10, base_width=16),
        (2, 3, 64, 64),
        {"bconv2d": 16},
    ),
    ("irnet-resnet20", lambda: _model(irnet.resnet20_1w1a, irnet), (2, 3, 32, 32), {"bconv2d": 18}),
    (
        "reactnet-a",
        lambda: _model(
            reactnet_official.reactnet,
            reactnet_official,
            num_classes=10,
            stage_out_channel=reactnet_official.small_stage_out_channel,
            stem_stride=1,
        ),
        (2, 3, 32, 32),
        {"bconv2d": 31},
    ),
    (
        "binarynet-mlp",
        lambda: _model(binarynet_mlp.binarynet_mlp, binarynet_mlp, width=64),
        (2, 1, 28, 28),
        {"bdense": 2},
    ),
    ("odd-net", lambda: _model(odd_model.odd_net, odd_model), (2, 3, 32, 32), {}),
]


def _ops(model):
    return [node.op for node in model._executor.graph.nodes]


@pytest.mark.parametrize("make, shape, expected_ops", [z[1:] for z in ZOO], ids=[z[0] for z in ZOO])
def test_zoo_model_imports_with_binary_layers_and_equals_pytorch(make, shape, expected_ops):
    module = make()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    model = from_module(module, x)  # its own self-check compares the example end to end
    ops = _ops(model)
    for op, count in expected_ops.items():
        assert ops.count(op) == count, (op, ops)
    assert "batch_norm" not in ops or ops.count("batch_norm") <= 1  # BatchNorms fold into the binary layers
    other = torch.randn(3, *shape[1:], generator=torch.Generator().manual_seed(2))
    # end to end within 1e-5 of the largest logit, every layer fed PyTorch's own input within 1e-4
    assert_matches_torch(model, module, other.numpy())


def test_reactnet_a_official_code_equals_the_dedicated_converter_bit_for_bit():
    module = _model(
        reactnet_official.reactnet,
        reactnet_official,
        num_classes=10,
        stage_out_channel=reactnet_official.small_stage_out_channel,
        stem_stride=1,
    )
    x = torch.randn(2, 3, 32, 32)
    imported = from_module(module, x)
    dedicated = from_torch(module.state_dict(), "reactnet-a", stem_stride=1, input_size=32)
    a, b = imported._executor.graph.nodes, dedicated._executor.graph.nodes
    assert [n.op for n in a] == [n.op for n in b]
    for p, q in zip(a, b):
        assert p.attrs == q.attrs
        assert sorted(p.params) == sorted(q.params)
        for key in p.params:
            np.testing.assert_array_equal(p.params[key], q.params[key], err_msg=f"{p.name} {key}")
    np.testing.assert_array_equal(imported.predict(x.numpy()), dedicated.predict(x.numpy()))


def test_xnor_resnet20_reads_signs_of_relu_as_zero_one_exactly():
    module = _xnor_resnet()
    model = from_module(module, torch.randn(2, 3, 32, 32))
    packs = [n for n in model.graph.nodes if n.op == "pack_signs"]
    convs = [n for n in model.graph.nodes if n.op == "bconv2d"]
    assert len(packs) == 18 and all(n.attrs.get("zero_to") == "minus_one" for n in packs)
    assert all(n.attrs["pad_value"] == "minus_one" for n in convs)


def test_xnor_resnet20_checkpoint_imports_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "resnet20.xnr"
    model_file = ROOT / "tests" / "byom" / "xnor_resnet.py"
    code = cli(
        [
            "import",
            f"{model_file}:resnet20_xnor",
            "--weights",
            str(CHECKPOINT),
            "--prepare",
            f"{model_file}:prepare",
            "--input-shape",
            "1,3,32,32",
            "-o",
            str(out),
            "--mean",
            "0.4914,0.4822,0.4465",
            "--std",
            "0.2470,0.2435,0.2616",
        ]
    )
    assert code == 0, capsys.readouterr().err
    model = xnorinfer.load(out)
    assert model.metadata["source"]["weights"] == CHECKPOINT.name
    assert _ops(model).count("bconv2d") == 18


def _cifar_exact():
    path = DATA / "cifar10_jpeg.npz"
    if not path.is_file():
        pytest.skip(f"CIFAR-10 not found at {path} (see ../shared/data/README.md)")
    with np.load(path) as data:
        return data["test_exact_x"], data["test_exact_y"]


def test_trained_xnor_resnet20_agrees_with_pytorch_on_1000_cifar_images():
    images, _ = _cifar_exact()
    module = xnor_resnet.resnet20_xnor()
    module.load_state_dict(torch.load(CHECKPOINT, map_location="cpu", weights_only=True)["state_dict"])
    xnor_resnet.prepare(module)
    mean = np.array([0.4914, 0.4822, 0.4465], np.float32)
    std = np.array([0.2470, 0.2435, 0.2616], np.float32)
    x = ((images.astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2).copy()
    model = from_module(module, torch.from_numpy(x[:8]))
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    got = model.predict(x)
    agree = int((got.argmax(1) == want.argmax(1)).sum())
    assert agree >= 998, agree
    print(f"top-1 agreement {agree}/1000, max |logit diff| {np.abs(got - want).max():.3g}")


def test_imported_resnet20_optimises_to_the_hand_built_graph():
    module = _xnor_resnet()
    imported = from_module(module, torch.randn(1, 3, 32, 32))
    hand = graphs.resnet20_by_hand(module)
    a, b = imported._executor.graph.nodes, hand._executor.graph.nodes
    assert [n.op for n in a] == [n.op for n in b]
    for p, q in zip(a, b):
        assert sorted(p.params) == sorted(q.params) and len(p.inputs) == len(q.inputs), (p.name, q.name)
        for key in p.params:
            np.testing.assert_array_equal(p.params[key], q.params[key], err_msg=f"{p.name} {key}")
    # BatchNorm, alpha and the residual adds run in the binary convs' epilogues
    assert not {"batch_norm", "affine"} & {n.op for n in a}
    assert sum(n.op == "bconv2d" and len(n.inputs) == 2 for n in a) == 9


@torch.no_grad()
def _dyadic_(module, seed, step=2.0**-3):
    """Every weight +-alpha[o] with alpha a power of two (so weights computed in forward as
    sign(W) * mean|W| stay dyadic), every other parameter and BatchNorm statistic on a dyadic grid
    whose BatchNorm divides exactly (eps 0, var a square): float32 is then exact in any summation
    order, and predict must equal PyTorch to the rounding of the pooled head."""
    rng = np.random.default_rng(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.eps = 0.0  # then sqrt(var + eps) is exactly the std, in float32 and float64 alike
            m.running_var.copy_(torch.from_numpy((rng.choice([0.5, 1.0, 2.0], c) ** 2).astype(np.float32)))
            m.running_mean.copy_(torch.from_numpy(np.float32(rng.integers(-8, 9, c) * step)))
            if m.affine:
                m.weight.copy_(torch.from_numpy(np.float32(rng.choice([-1.0, -0.5, 0.5, 1.0], c))))
                m.bias.copy_(torch.from_numpy(np.float32(rng.integers(-8, 9, c) * step)))
            continue
        for name, p in m.named_parameters(recurse=False):
            if p.ndim >= 2 or name == "weights":  # conv / linear weights, flat binary weights
                rows = p.reshape(p.shape[0] if name != "weights" else 1, -1)
                alpha = np.float32(rng.choice([0.25, 0.5, 1.0], (rows.shape[0], 1)))
                signs = np.where(rng.random(rows.shape) < 0.5, -1.0, 1.0).astype(np.float32)
                p.copy_(torch.from_numpy(signs * alpha).reshape(p.shape))
            else:
                p.copy_(torch.from_numpy(np.float32(rng.integers(-8, 9, tuple(p.shape)) * step)))
    return module


def _grid_input(shape, seed, step=2.0**-3):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.float32(rng.integers(-16, 17, shape) * step))


@pytest.mark.parametrize("make, shape", [ZOO[i][1:3] for i in (0, 1)], ids=[ZOO[i][0] for i in (0, 1)])
def test_resnet20_on_a_dyadic_grid_agrees_to_the_rounding_of_the_head(make, shape):
    """Sign of ReLU (XNOR) and binary weights on float activations (BWN) where float32 has next
    to nothing to round. (The +-1-sign models meet exact zeros at their signs on such a grid, where
    PyTorch's sign gives 0: they are checked layer by layer on realistic parameters above, and
    ReActNet-A bit for bit against its dedicated converter, which test_convert checks on a grid.)"""
    module = _dyadic_(make(), seed=3)
    x = _grid_input(shape, seed=4)
    model = from_module(module, x)
    want = module(x).detach().numpy()
    assert np.abs(model.predict(x.numpy()) - want).max() <= 1e-5 * np.abs(want).max()

"""convert.from_module: any binarized PyTorch module, imported by values and patterns, equals
PyTorch's output. The models here are small and written for one pattern each; tests/byom holds
models written the way public binary-network code writes them."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

from byom.xnor_resnet import BinActive  # noqa: E402  (an autograd.Function sign with an STE backward)

import xnorinfer  # noqa: E402
from xnorinfer.convert import ConversionError, UnsupportedModuleError, from_module  # noqa: E402


def _randomize_bn(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.data.copy_(torch.randn(c, generator=gen) * 0.3)
    return module.eval()


def _agree(model, module, x, rtol=1e-5):
    want = module(x).detach().numpy()
    got = model.predict(x.numpy())
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= rtol * np.abs(want).max(), np.abs(got - want).max()
    return got


def _ops(model):
    return [node.op for node in model._executor.graph.nodes]


class BinConv(nn.Conv2d):
    """sign(W) * mean|W| per output channel, signs of the input: an XNOR conv."""

    def forward(self, x):
        w = self.weight
        wb = w.sign() * w.abs().mean(dim=(1, 2, 3), keepdim=True)
        return F.conv2d(BinActive.apply(x), wb, self.bias, self.stride, self.padding, groups=self.groups)


class BWNConv(nn.Conv2d):
    def forward(self, x):
        w = self.weight
        return F.conv2d(x, w.sign() * w.abs().mean(), self.bias, self.stride, self.padding)


class Mixed(nn.Module):
    """XNOR, BWN and float convs, RSign/RPReLU-style biases, option-A shortcut, channel shuffle."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(16)
        self.move = nn.Parameter(torch.randn(1, 16, 1, 1) * 0.1)
        self.conv1 = BinConv(16, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.prelu = nn.PReLU(16)
        self.conv2 = BWNConv(16, 8, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(16, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        x = self.bn0(self.stem(x))
        y = self.prelu(self.bn1(self.conv1(x + self.move))) + x
        z = self.bn2(self.conv2(y))
        shortcut = F.pad(y[:, :, ::2, ::2], (0, 0, 0, 0, 4, 4), "constant", 0)[:, :8]
        y = torch.cat([z, shortcut], 1)
        n, c, h, w = y.shape
        y = y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w) * 0.5
        y = F.adaptive_avg_pool2d(y, 1).view(y.size(0), -1)
        return self.fc(self.drop(y))


def test_mixed_layers_import_as_xnor_bwn_and_float():
    torch.manual_seed(0)
    module = _randomize_bn(Mixed())
    x = torch.randn(3, 3, 16, 16)
    model = from_module(module, x)
    ops = _ops(model)
    assert ops.count("bconv2d") == 1 and ops.count("bwn_conv2d") == 1
    assert {"channel_shuffle", "strided_slice", "pad", "concat"} <= set(ops)
    assert "batch_norm" not in ops and "prelu" not in ops  # folded into the binary epilogue / BWN alpha
    _agree(model, module, x)
    _agree(model, module, torch.randn(5, 3, 16, 16))  # the batch stays free


def test_node_names_are_module_names():
    module = _randomize_bn(Mixed())
    model = from_module(module, torch.randn(1, 3, 16, 16))
    names = {node.name for node in model.graph.nodes}
    assert {"stem", "bn0", "conv1", "bn1", "prelu", "conv2", "bn2", "fc"} <= names
    assert "conv1/sign" in names


def test_imported_model_saves_and_loads(tmp_path):
    module = _randomize_bn(Mixed())
    x = torch.randn(2, 3, 16, 16)
    model = from_module(module, x, mean=[0.5] * 3, std=[0.25] * 3, classes=list("abcdefghij"), name="mixed")
    model.save(tmp_path / "m.xnr")
    loaded = xnorinfer.load(tmp_path / "m.xnr")
    np.testing.assert_array_equal(loaded.predict(x.numpy()), model.predict(x.numpy()))
    meta = loaded.metadata
    assert meta["arch"] == "mixed" and meta["input_size"] == [3, 16, 16] and meta["classes"][0] == "a"
    assert meta["mean"] == [0.5] * 3 and len(meta["source"]["module_file_sha256"]) == 64


class BinaryNetMLP(nn.Module):
    """hardtanh + sign activations, binary dense layers, BatchNorm1d."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.bn1 = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 32, bias=False)
        self.bn2 = nn.BatchNorm1d(32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        x = nn.functional.hardtanh(self.bn1(self.fc1(x.view(-1, 64))))
        w = self.fc2.weight
        x = F.linear(torch.sign(x), torch.sign(w))
        x = F.hardtanh(self.bn2(x))
        return self.fc3(x)


def test_binarynet_mlp_runs_binary_dense():
    module = _randomize_bn(BinaryNetMLP(), seed=3)
    x = torch.randn(4, 1, 8, 8)
    model = from_module(module, x)
    assert "bdense" in _ops(model)
    _agree(model, module, x)


class WhereSign(nn.Module):
    def __init__(self, op):
        super().__init__()
        self.op = op
        self.conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        b = torch.where(x >= 0, 1.0, -1.0) if self.op == "ge" else torch.where(x > 0, 1.0, -1.0)
        y = F.conv2d(b, self.conv.weight.sign())
        return self.fc(y.mean((2, 3)))


@pytest.mark.parametrize("op", ["ge", "gt"])
def test_where_signs_are_exact_at_zero(op):
    module = WhereSign(op).eval()
    x = torch.randn(2, 4, 6, 6)
    x[x.abs() < 0.5] = 0.0  # many exact zeros: where's ties
    model = from_module(module, x)
    assert "bconv2d" in _ops(model)
    _agree(model, module, x)


class Unsupported(nn.Module):
    def forward(self, x):
        y = torch.sigmoid(x)
        return (x * y).mean((2, 3))


def test_every_unsupported_node_is_listed_with_its_line():
    with pytest.raises(UnsupportedModuleError) as info:
        from_module(Unsupported().eval(), torch.randn(1, 3, 4, 4))
    text = str(info.value)
    assert "sigmoid" in text and "multiplying two activations" in text
    assert "test_import_module.py" in text


def test_dilation_is_rejected_not_ignored():
    module = nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2), nn.Flatten()).eval()
    with pytest.raises(UnsupportedModuleError, match="dilation"):
        from_module(module, torch.randn(1, 3, 8, 8))


def test_zero_weights_among_binary_ones_stay_float_with_a_warning():
    conv = nn.Conv2d(3, 4, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.randn_like(conv.weight).sign())
        conv.weight[0, 0, 0, 0] = 0.0
    module = nn.Sequential(conv, nn.Flatten()).eval()
    x = torch.randn(2, 3, 5, 5)
    with pytest.warns(UserWarning, match="exactly 0"):
        model = from_module(module, x)
    assert "conv2d" in _ops(model) and "bwn_conv2d" not in _ops(model)
    _agree(model, module, x)


def test_module_returning_a_tuple_is_refused():
    class Two(nn.Module):
        def forward(self, x):
            return x.mean((2, 3)), x

    with pytest.raises(ConversionError, match="one tensor"):
        from_module(Two().eval(), torch.randn(1, 3, 4, 4))


class Reshapes(nn.Module):
    def forward(self, x):
        n, c, h, w = x.shape
        y = x.view(n, c, h * w, 1).sigmoid()
        return y.flatten(1)


def test_errors_name_the_node_that_cannot_run():
    with pytest.raises(UnsupportedModuleError) as info:
        from_module(Reshapes().eval(), torch.randn(1, 4, 4, 4))
    text = str(info.value)
    assert "reshaping" in text and "sigmoid" in text and text.startswith("2 operation(s)")


class InPlace(nn.Module):
    """In-place ReLU after the value was read elsewhere: capture must see the mutation."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.conv(x)
        before = y * 2.0
        self.relu(y)
        return (y + before).mean((2, 3))


def test_in_place_ops_are_functionalised():
    module = InPlace().eval()
    x = torch.randn(2, 3, 6, 6)
    _agree(module=module, model=from_module(module, x), x=x)


class PaddedSigns(nn.Module):
    """F.pad of the signs themselves before an unpadded binary conv (Larq-style "one" padding)."""

    def __init__(self, value):
        super().__init__()
        self.value = value
        self.conv = nn.Conv2d(4, 6, 3, bias=False)

    def forward(self, x):
        s = F.pad(torch.sign(x), (1, 1, 1, 1), value=self.value)
        return F.conv2d(s, self.conv.weight.sign()).mean((2, 3))


@pytest.mark.parametrize("value, pad_value", [(1.0, "one"), (-1.0, "minus_one"), (0.0, "zero")])
def test_padding_the_signs_becomes_the_binary_convs_pad_value(value, pad_value):
    module = PaddedSigns(value).eval()
    x = torch.randn(2, 4, 5, 5)
    model = from_module(module, x)
    convs = [n for n in model.graph.nodes if n.op == "bconv2d"]
    assert len(convs) == 1 and convs[0].attrs["pad_value"] == pad_value and convs[0].attrs["padding"] == [1] * 4
    _agree(model, module, x)


def test_reflect_padding_is_rejected_not_ignored():
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), nn.Flatten()).eval()
    with pytest.raises(UnsupportedModuleError, match="reflect"):
        from_module(module, torch.randn(1, 3, 6, 6))

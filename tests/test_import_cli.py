"""`xnorinfer import`: a model file, a factory, a checkpoint and a prepare function."""

import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xnorinfer  # noqa: E402
from xnorinfer.cli import main  # noqa: E402

MODEL_CODE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.bn(self.conv1(x))
        x = self.conv2(torch.sign(x))
        return self.fc(x.mean((2, 3)))


def build():
    return Net()


def binarize(model):
    """What a BinOp does before testing: the binary layer's weights become alpha * sign(W)."""
    w = model.conv2.weight.data
    model.conv2.weight.data = w.sign() * w.abs().mean()
'''


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent(MODEL_CODE))
    return path


def test_import_command_writes_a_model_equal_to_the_module(model_file, tmp_path, capsys):
    namespace = {}
    exec(compile(model_file.read_text(), str(model_file), "exec"), namespace)
    net = namespace["build"]()
    torch.save({"state_dict": net.state_dict(), "best_acc": 0.5}, tmp_path / "ckpt.pth")
    out = tmp_path / "net.xnr"
    code = main(
        [
            "import",
            f"{model_file}:build",
            "--weights",
            str(tmp_path / "ckpt.pth"),
            "--prepare",
            f"{model_file}:binarize",
            "--input-shape",
            "2,3,8,8",
            "-o",
            str(out),
            "--classes",
            "a,b,c,d",
        ]
    )
    assert code == 0, capsys.readouterr().err
    model = xnorinfer.load(out)
    assert "bconv2d" in [n.op for n in model.graph.nodes]
    namespace["binarize"](net)
    x = torch.randn(3, 3, 8, 8)
    want = net.eval()(x).detach().numpy()
    np.testing.assert_allclose(model.predict(x.numpy()), want, rtol=0, atol=1e-5 * np.abs(want).max())
    source = model.metadata["source"]
    assert len(source["weights_sha256"]) == 64 and source["weights"] == "ckpt.pth"
    assert model.metadata["classes"] == ["a", "b", "c", "d"]


def test_import_command_lists_checkpoint_key_problems(model_file, tmp_path, capsys):
    torch.save({"state_dict": {"conv9.weight": torch.zeros(1)}}, tmp_path / "bad.pth")
    code = main(
        [
            "import",
            f"{model_file}:build",
            "--weights",
            str(tmp_path / "bad.pth"),
            "--input-shape",
            "1,3,8,8",
            "-o",
            str(tmp_path / "x.xnr"),
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and "missing conv1.weight" in err and "unexpected conv9.weight" in err


def test_import_command_rejects_a_bad_factory_spec(tmp_path, capsys):
    code = main(["import", "nofile:build", "--input-shape", "1,3,8,8", "-o", str(tmp_path / "x.xnr")])
    assert code != 0 and "path/to/file.py:name" in capsys.readouterr().err

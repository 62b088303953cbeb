import json
import subprocess
import sys

import pytest

from xnorinfer.cli import main

torch = pytest.importorskip("torch", reason="converting needs torch: pip install -e '.[test]'")
from helpers import torch_reference as ref  # noqa: E402


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "lenet.pth.tar"
    model = ref.LeNet5()
    ref.randomize_(model, seed=0)
    ref.save_like_training(model, path, kind="lenet")
    return path


def test_convert_then_info(tmp_path, checkpoint, capsys):
    out = tmp_path / "lenet.xnr"
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(f"digit {i}" for i in range(10)))
    assert (
        main(
            [
                "convert",
                "--arch",
                "xnor-lenet5",
                str(checkpoint),
                "-o",
                str(out),
                "--classes",
                str(classes),
                "--dataset",
                "mnist",
            ]
        )
        == 0
    )
    assert "xnor-lenet5, 10 classes" in capsys.readouterr().out
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "digit 3" in text and "bconv2d" in text and "binary MACs" in text
    assert main(["info", "--json", str(out)]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["dataset"] == "mnist" and meta["source"]["file"] == "lenet.pth.tar"


def test_python_dash_m_runs_the_cli(tmp_path, checkpoint):
    out = tmp_path / "m.xnr"
    result = subprocess.run(
        [sys.executable, "-m", "xnorinfer", "convert", "--arch", "bwn-lenet5", str(checkpoint), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0


def test_errors_are_one_line_and_exit_nonzero(tmp_path, checkpoint, capsys):
    assert main(["info", str(tmp_path / "missing.xnr")]) == 1
    assert "no model file" in capsys.readouterr().err
    junk = tmp_path / "junk.xnr"
    junk.write_bytes(b"junk")
    assert main(["info", str(junk)]) == 1
    assert "not a valid xnorinfer model file" in capsys.readouterr().err
    assert main(["convert", "--arch", "reactnet-18", str(checkpoint), "-o", str(tmp_path / "x.xnr")]) == 1
    err = capsys.readouterr().err
    assert "does not match arch 'reactnet-18'" in err and "missing keys" in err

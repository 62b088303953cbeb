"""The package as a wheel installs it: xnorinfer.testing must be in it, not only in the source tree
that the editable install serves."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory):
    """A built wheel of this checkout, unpacked as site-packages would hold it."""
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                            "-q", "-w", str(out)], capture_output=True, text=True)
    if build.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{build.stdout}\n{build.stderr}")
    site = out / "site"
    with zipfile.ZipFile(next(out.glob("xnorinfer-*.whl"))) as wheel:
        wheel.extractall(site)
    return site


def test_testing_package_imports_from_the_wheel(wheel_site):
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import numpy as np, xnorinfer.testing, "
            "xnorinfer.testing.strategies; from xnorinfer.classify import default_model_path; "
            "import xnorinfer; m = xnorinfer.load(default_model_path()); "
            "x = np.zeros((1,) + m.input_size, np.float32); "
            "assert xnorinfer.testing.compare(m, 'float', x).passed; print(xnorinfer.testing.__file__)")
    run = subprocess.run([sys.executable, "-c", code, str(wheel_site)], capture_output=True, text=True,
                         cwd=wheel_site)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).is_relative_to(wheel_site)  # the wheel's copy, not the source tree


def test_wheel_carries_the_license_and_the_model_files(wheel_site):
    licenses = list(wheel_site.glob("xnorinfer-*.dist-info/**/LICENSE"))
    assert licenses and "Apache License" in licenses[0].read_text()
    assert "Version 2.0" in licenses[0].read_text()
    weights = wheel_site / "xnorinfer" / "weights"
    for name in ("cifar10_reactnet", "fashion_mnist_reactnet", "fashion_mnist_bwn_lenet5", "fashion_mnist_xnor_lenet5"):
        for suffix in (".xnr", ".md", ".json"):  # the model, its card and its facts
            assert (weights / (name + suffix)).is_file(), name + suffix


def test_bench_runs_from_the_wheel_alone(wheel_site, tmp_path):
    """`xnorinfer bench` must not reach outside the installed package (it used to execute
    benchmarks/bench.py from the folder above it): run from the unpacked wheel, in another folder."""
    pytest.importorskip("torch", reason="xnorinfer bench needs torch (the bench extra)")
    out = tmp_path / "bench.json"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import xnorinfer.bench, xnorinfer.cli; "
            "print(xnorinfer.bench.__file__); sys.exit(xnorinfer.cli.main(sys.argv[2:]))")
    run = subprocess.run([sys.executable, "-c", code, str(wheel_site), "bench", "--quick", "--json", "--output",
                          str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).is_relative_to(wheel_site)
    report = json.loads(out.read_text())
    (nin,) = report["models"]
    assert nin["model"] == "nin" and nin["xnorinfer"]["latency_ms"] > 0 and nin["pytorch"]["latency_ms"] > 0
    assert any(row["op"].startswith("bconv2d") for row in nin["layers"])

"""The package as pip installs it from a release: an sdist built from this checkout, a wheel built
from that sdist alone (the round trip a user's `pip install xnorinfer-X.tar.gz` makes), unpacked as
site-packages would hold it. xnorinfer.testing, the C sources, the models and the licence files must
be in them, not only in the source tree that the editable install serves."""

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_pip_like(args, what):
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"{what} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """`python -m build --sdist` of this checkout (the test extra installs build)."""
    pytest.importorskip("build", reason="the sdist round trip needs `build` (in the test extra)")
    out = tmp_path_factory.mktemp("sdist")
    run_pip_like(["-m", "build", "--sdist", "--outdir", str(out), str(ROOT)], "python -m build --sdist")
    (path,) = out.glob("xnorinfer-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def wheel_site(sdist, tmp_path_factory):
    """A wheel built from the sdist alone (not from the checkout), unpacked as site-packages would hold it."""
    out = tmp_path_factory.mktemp("wheel")
    run_pip_like(["-m", "pip", "wheel", str(sdist), "--no-deps", "-q", "-w", str(out)], "pip wheel of the sdist")
    site = out / "site"
    with zipfile.ZipFile(next(out.glob("xnorinfer-*.whl"))) as wheel:
        wheel.extractall(site)
    return site


def test_sdist_carries_sources_models_licence_and_no_build_output(sdist):
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for name in (
        "setup.py",
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "NOTICE",
        "xnorinfer/_core.pyx",
        "xnorinfer/csrc/bconv.c",
        "xnorinfer/csrc/bgemm_4x8_neon.c",
        "xnorinfer/csrc/kernels.c",
        "xnorinfer/csrc/neon.h",
        "xnorinfer/testing/__init__.py",
        "xnorinfer/bench.py",
        "weights/cifar10_reactnet.xnr",
        "weights/cifar10_reactnet.json",
        "weights/cifar10_reactnet.md",
    ):
        assert name in names, name
    # every C file the checkout has (a missing header breaks the build only on another machine)
    for path in (ROOT / "xnorinfer" / "csrc").iterdir():
        if path.name.startswith("."):  # .clang-format: not part of the build
            continue
        assert f"xnorinfer/csrc/{path.name}" in names, path.name
    assert not any(n.endswith((".so", ".o")) for n in names)


def test_testing_package_imports_from_the_wheel(wheel_site):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import numpy as np, xnorinfer.testing, "
        "xnorinfer.testing.strategies; from xnorinfer.classify import default_model_path; "
        "import xnorinfer; m = xnorinfer.load(default_model_path()); "
        "x = np.zeros((1,) + m.input_size, np.float32); "
        "assert xnorinfer.testing.compare(m, 'float', x).passed; print(xnorinfer.testing.__file__)"
    )
    run = subprocess.run([sys.executable, "-c", code, str(wheel_site)], capture_output=True, text=True, cwd=wheel_site)
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
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import xnorinfer.bench, xnorinfer.cli; "
        "print(xnorinfer.bench.__file__); sys.exit(xnorinfer.cli.main(sys.argv[2:]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(wheel_site), "bench", "--quick", "--json", "--output", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).is_relative_to(wheel_site)
    report = json.loads(out.read_text())
    (nin,) = report["models"]
    assert nin["model"] == "nin" and nin["xnorinfer"]["latency_ms"] > 0 and nin["pytorch"]["latency_ms"] > 0
    assert any(row["op"].startswith("bconv2d") for row in nin["layers"])


def test_torch_pins_the_extras_and_the_error_message_agree():
    """The torch, train and bench extras take any 2.x from the one release the tests run on (2.13);
    the test extra keeps the exact CPU wheel CI has offline; the missing-torch error names the same range."""
    tomllib = pytest.importorskip("tomllib")
    from xnorinfer._optional import torch_missing_message

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name in ("torch", "train", "bench"):
        assert "torch>=2.13,<3" in extras[name], name
    assert "torch==2.13.0" in extras["test"]
    assert "torch>=2.13,<3" in torch_missing_message("x")

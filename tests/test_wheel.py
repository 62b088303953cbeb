"""The repaired (manylinux) wheel in a fresh virtual environment: it imports, bundles libgomp,
runs multi-threaded and classifies. .ci/run builds it with scripts/build_wheel.sh and runs this
file with XNORINFER_WHEEL set; without it (a plain `pytest`) the test skips, as building and
repairing takes half a minute and needs auditwheel."""

import json
import os
import subprocess
import venv
import zipfile
from pathlib import Path

import pytest

WHEEL = os.environ.get("XNORINFER_WHEEL")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not WHEEL, reason="set XNORINFER_WHEEL to a wheel from scripts/build_wheel.sh")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A new venv holding only the wheel; its dependencies (NumPy, Pillow, tqdm, threadpoolctl)
    come from this environment's site-packages through a .pth path line, so no index is needed.
    A path line does not process that folder's own .pth files, so the editable install of the
    source tree stays out."""
    env = tmp_path_factory.mktemp("fresh") / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    run = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", WHEEL], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = {os.path.dirname(os.path.dirname(__import__(name).__file__)) for name in ("numpy", "PIL", "tqdm")}
    Path(site, "xnorinfer_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return env


def test_the_wheel_is_manylinux_and_bundles_libgomp_with_its_notice():
    assert "manylinux" in os.path.basename(WHEEL)
    names = zipfile.ZipFile(WHEEL).namelist()
    assert any(n.startswith("xnorinfer.libs/libgomp") for n in names), names
    notice = [n for n in names if n.endswith("/NOTICE") and ".dist-info/" in n]
    assert notice and "GCC Runtime Library Exception" in zipfile.ZipFile(WHEEL).read(notice[0]).decode()
    assert any(n.endswith("/LICENSE") and ".dist-info/" in n for n in names)


def test_fresh_venv_imports_testing_and_classifies(fresh, tmp_path):
    image = str(ROOT / "examples" / "images" / "cat.png")
    code = f"""
import json, xnorinfer, xnorinfer.testing, numpy as np
m = xnorinfer.load("cifar10_reactnet")
x = np.random.default_rng(0).standard_normal((2,) + m.input_size).astype(np.float32)
report = xnorinfer.testing.compare(m, "float", x)
print(json.dumps({{"file": xnorinfer.__file__, "testing": xnorinfer.testing.__file__, "passed": bool(report.passed),
                  "openmp": xnorinfer._runtime.single_threaded_warning() is None,
                  "top": xnorinfer.classify({image!r}, top_k=1)[0][0][0]}}))
"""
    run = subprocess.run([str(fresh / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert Path(result["file"]).is_relative_to(fresh) and Path(result["testing"]).is_relative_to(fresh)
    assert result == dict(result, passed=True, openmp=True, top="cat")
    # the console script, as a user runs it
    cli = subprocess.run(
        [str(fresh / "bin" / "xnorinfer"), "classify", str(ROOT / "examples" / "images"), "--jsonl", "--top-k", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr
    labels = [json.loads(line)["predictions"][0]["label"] for line in cli.stdout.splitlines()]
    assert labels == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

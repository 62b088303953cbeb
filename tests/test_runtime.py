import io
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import xnorinfer
from xnorinfer import _core, _runtime

CIFAR = Path(__file__).resolve().parents[1] / "weights" / "cifar10_reactnet.xnr"


def run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=120
    )


def test_show_config_names_version_openmp_and_isas(capsys):
    xnorinfer.show_config()
    out = capsys.readouterr().out
    assert xnorinfer.__version__ in out
    assert "openmp" in out and "selected" in out
    assert xnorinfer.get_isa() in out


def test_scalar_is_always_available_and_best_is_selected_by_default():
    isas = xnorinfer.available_isas()
    assert isas[0] == "scalar"
    result = run_python("import xnorinfer; print(xnorinfer.get_isa())", XNORINFER_ISA="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == isas[-1]


@pytest.mark.parametrize("isa", xnorinfer.available_isas())
def test_environment_forces_an_isa(isa):
    result = run_python("import xnorinfer; print(xnorinfer.get_isa())", XNORINFER_ISA=isa)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == isa


def test_environment_with_an_unknown_isa_fails_clearly():
    result = run_python("import xnorinfer", XNORINFER_ISA="sse9")
    assert result.returncode != 0
    assert "XNORINFER_ISA=sse9" in result.stderr and "unknown instruction set" in result.stderr


def test_forcing_an_isa_this_machine_lacks_fails_clearly():
    missing = [name for name in ("avx2", "avx512", "neon") if name not in xnorinfer.available_isas()]
    result = run_python("import xnorinfer", XNORINFER_ISA=missing[0])
    assert result.returncode != 0
    assert "not available" in result.stderr


def test_set_isa_rejects_unknown_and_unsupported():
    with pytest.raises(ValueError, match="unknown instruction set"):
        xnorinfer.set_isa("mmx")
    missing = [name for name in ("avx2", "avx512", "neon") if name not in xnorinfer.available_isas()]
    with pytest.raises(RuntimeError, match="not available"):
        xnorinfer.set_isa(missing[0])  # x86 lacks neon, ARM lacks both AVX levels


def test_threads_default_honours_omp_num_threads():
    result = run_python("import xnorinfer; print(xnorinfer.get_num_threads())", OMP_NUM_THREADS="3")
    assert result.returncode == 0, result.stderr
    expected = "3" if "openmp    enabled" in run_python("import xnorinfer; xnorinfer.show_config()").stdout else "1"
    assert result.stdout.strip() == expected


def test_set_num_threads_round_trips_and_validates():
    old = xnorinfer.get_num_threads()
    try:
        xnorinfer.set_num_threads(1)
        assert xnorinfer.get_num_threads() == 1
        for bad in (0, -2, 1.5, "2", True):
            with pytest.raises(ValueError, match="threads"):
                xnorinfer.set_num_threads(bad)
    finally:
        xnorinfer.set_num_threads(old)


# ---- threads follow OpenMP (and threadpoolctl) unless pinned --------------------------------------

THREADPOOL_SCRIPT = """
import sys
import numpy as np
import xnorinfer
from xnorinfer import _core
from threadpoolctl import threadpool_limits

model = xnorinfer.load(sys.argv[1])
x = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32)

def report():  # the count the kernels are given, and the team the last binary convolution ran on
    model.predict(x)
    print(xnorinfer.get_num_threads(), _core.last_team_size())

report()
with threadpool_limits(limits=1, user_api="openmp"):
    report()
    xnorinfer.set_num_threads(2)  # a pin wins over the limit
    report()
    xnorinfer.set_num_threads(None)
    report()
report()
"""


def _openmp_build():
    return "openmp    enabled" in run_python("import xnorinfer; xnorinfer.show_config()").stdout


def test_threadpoolctl_limits_the_kernels_unless_pinned(tmp_path):
    pytest.importorskip("threadpoolctl")
    if not _openmp_build():
        pytest.skip("a build without OpenMP runs on one thread")
    script = tmp_path / "limits.py"
    script.write_text(THREADPOOL_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="2")
    result = subprocess.run(
        [sys.executable, str(script), str(CIFAR)], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:5] == ["2 2", "1 1", "2 2", "1 1", "2 2"]


def test_omp_num_threads_sets_the_team_of_an_unpinned_run(tmp_path):
    if not _openmp_build():
        pytest.skip("a build without OpenMP runs on one thread")
    script = tmp_path / "limits.py"
    script.write_text(THREADPOOL_SCRIPT.split("report()\nwith")[0] + "report()\n")
    for threads in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        result = subprocess.run(
            [sys.executable, str(script), str(CIFAR)], capture_output=True, text=True, timeout=120, env=env
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [threads, threads]


def test_set_num_threads_none_unpins():
    old = _runtime._thread_setting()
    try:
        xnorinfer.set_num_threads(1)
        assert _runtime._thread_setting() == 1
        xnorinfer.set_num_threads(None)
        assert _runtime._thread_setting() is None
        assert xnorinfer.get_num_threads() >= 1
    finally:
        xnorinfer.set_num_threads(old)


def test_threadpoolctl_sees_the_libgomp_the_extension_links():
    if not _openmp_build():
        pytest.skip("a build without OpenMP has no OpenMP runtime")
    ldd = shutil.which("ldd")
    if ldd is None or sys.platform != "linux":
        pytest.skip("needs ldd (Linux)")
    from xnorinfer import _core

    linked = [
        line.split("=>")[1].split("(")[0].strip()
        for line in subprocess.run([ldd, _core.__file__], capture_output=True, text=True).stdout.splitlines()
        if "omp" in line and "=>" in line
    ]
    assert linked, "the extension links no OpenMP runtime"
    result = run_python(
        "import json, xnorinfer, threadpoolctl; "
        "print(json.dumps([i['filepath'] for i in threadpoolctl.threadpool_info() "
        "if i['user_api'] == 'openmp']))"
    )
    assert result.returncode == 0, result.stderr
    seen = {os.path.realpath(p) for p in json.loads(result.stdout)}
    assert {os.path.realpath(p) for p in linked} <= seen


def test_isa_rows_in_order_best_last_and_detection_picks_the_best():
    assert _core.isa_names() == ["scalar", "avx2", "avx512bw", "avx512", "neon"]
    available = xnorinfer.available_isas()
    assert available[0] == "scalar"
    result = run_python("import xnorinfer; print(xnorinfer.get_isa())", XNORINFER_ISA="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == available[-1]


def test_an_isa_is_available_exactly_where_the_cpu_has_every_feature_it_requires():
    have = set(_core.cpu_features())
    for i, name in enumerate(_core.isa_names()):
        needs = set(_core.isa_requires(i))
        assert (name in xnorinfer.available_isas()) == (_core.isa_compiled(i) and needs <= have), name
    assert set(_core.isa_requires(_core.isa_names().index("avx512bw"))) >= {"avx512f", "avx512bw", "fma"}
    assert "avx512_vpopcntdq" in _core.isa_requires(_core.isa_names().index("avx512"))


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists() or platform.machine() != "x86_64", reason="Linux x86-64")
def test_detected_features_agree_with_proc_cpuinfo():
    flags = set(
        next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    )
    for feature in ("popcnt", "avx2", "fma", "avx512f", "avx512bw", "avx512_vpopcntdq"):
        assert (feature in _core.cpu_features()) == (feature in flags), feature


def test_each_row_names_its_gemm_by_tile_and_isa():
    for i in range(len(_core.isa_names())):
        row = _core.isa_kernels(i)
        assert (row is not None) == _core.isa_compiled(i)
        if row is not None:
            gemm, rows, channels = row
            assert gemm.startswith(f"bgemm_{rows}x{channels}_"), gemm
    if _core.isa_compiled(_core.isa_names().index("avx512")):
        assert _core.isa_kernels(_core.isa_names().index("avx512"))[0] == "bgemm_6x32_avx512"
    out = io.StringIO()
    xnorinfer.show_config(out)
    assert f"bgemm     {_core.isa_kernels(_core.isa_get())[0]}" in out.getvalue()

import os
import subprocess
import sys

import pytest

import xnorinfer


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


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

"""benchmarks/avx2_peak.py: the AVX2 peak loops build with the system compiler and measure every
variant and the engine's kernel (rates only; the kernel's results are tested in test_bconv.py and
tests/c)."""

import shutil
import sys
from pathlib import Path

import pytest

import xnorinfer

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = [
    pytest.mark.skipif("avx2" not in xnorinfer.available_isas(), reason="this CPU has no AVX2"),
    pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) to build the peak loops"),
]


def test_avx2_peak_measures_every_variant_and_the_engine_kernel(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    avx2_peak = pytest.importorskip("avx2_peak")
    result = avx2_peak.measure(rounds=1, seconds=0.002)
    assert set(result["micro"]) == set(avx2_peak.MICRO)
    assert set(result["engine"]) == set(avx2_peak.ENGINE)
    assert all(rate > 0 for rate in [*result["micro"].values(), *result["engine"].values()])
    assert result["peak"] == max(result["micro"].items(), key=lambda item: item[1])
    sys.modules.pop("avx2_peak", None)

"""`xnorinfer bench --isa`: which SIMD paths a benchmark run covers."""

import pytest

import xnorinfer
from xnorinfer.bench import _isas


def test_no_isa_means_the_selected_one_and_all_means_every_available_one():
    assert _isas("") == [xnorinfer.get_isa()]
    assert _isas("all") == xnorinfer.available_isas()
    assert _isas("scalar") == ["scalar"]


def test_an_isa_this_cpu_lacks_is_refused_with_what_it_has():
    lacking = next(isa for isa in ("neon", "avx512", "avx2") if isa not in xnorinfer.available_isas())
    with pytest.raises(ValueError, match="not available here; available: scalar"):
        _isas(f"scalar,{lacking}")

"""Fixtures and settings only; the reusable helpers are the `helpers` package (tests/helpers)."""

import os

import pytest
from helpers import ISAS, THREADS, kernel_config
from hypothesis import settings

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE: "dev" (the default: random examples, and the
# example database replays failures) or "ci" (derandomized: the same examples on every run, no
# database). Each test's own @settings (max_examples) still applies. "dev" says derandomize=False
# outright: where a CI variable is set, Hypothesis's own default is derandomized, and a profile
# inherits the default's values.
settings.register_profile("dev", derandomize=False, deadline=None)
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(params=[(isa, t) for isa in ISAS for t in THREADS], ids=lambda p: f"{p[0]}-{p[1]}t")
def each_kernel_config(request):
    with kernel_config(*request.param):
        yield request.param

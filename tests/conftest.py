import contextlib
import itertools
import os

import pytest
from hypothesis import settings

import xnorinfer
from xnorinfer import _runtime

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE: "dev" (the default: random examples, and the
# example database replays failures) or "ci" (derandomized: the same examples on every run, no
# database). Each test's own @settings (max_examples) still applies. "dev" says derandomize=False
# outright: where a CI variable is set, Hypothesis's own default is derandomized, and a profile
# inherits the default's values.
settings.register_profile("dev", derandomize=False, deadline=None)
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

ISAS = xnorinfer.available_isas()
THREADS = (1, 2)


@contextlib.contextmanager
def kernel_config(isa, threads):
    """Run the body with one instruction set forced and a thread count, then restore both."""
    old_isa, old_threads = xnorinfer.get_isa(), _runtime._thread_setting()
    xnorinfer.set_isa(isa)
    xnorinfer.set_num_threads(threads)
    try:
        yield
    finally:
        xnorinfer.set_isa(old_isa)
        xnorinfer.set_num_threads(old_threads)


def run_everywhere(fn):
    """fn() under every instruction set this CPU has and 1 and 2 threads: {(isa, threads): result}."""
    results = {}
    for isa, threads in itertools.product(ISAS, THREADS):
        with kernel_config(isa, threads):
            results[(isa, threads)] = fn()
    return results


@pytest.fixture(params=[(isa, t) for isa in ISAS for t in THREADS], ids=lambda p: f"{p[0]}-{p[1]}t")
def each_kernel_config(request):
    with kernel_config(*request.param):
        yield request.param

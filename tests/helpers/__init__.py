"""The test suite's helpers, a package so that tests (and the benchmarks that need them) import
them by one name: `from helpers import run_everywhere`, `from helpers import graphs`,
`from helpers.reference import conv2d_nhwc`. pyproject.toml puts tests/ on pytest's path.

    __init__         run_everywhere / kernel_config: a body under every ISA and thread count
    reference        NumPy references of the kernels (signs, padding, conv, epilogue)
    graphs           small hand-built graphs; ResNet-20 XNOR built by hand from a module
    torch_reference  the PyTorch reference models plus dyadic-grid and checkpoint-writing helpers
    hostile          hand-made hostile .xnr archives and images; `finishes` (a hang check)
    fuzz_models      the seeded mutation fuzzer and its worker (`python -m helpers.fuzz_models`)
"""

import contextlib
import itertools

import xnorinfer
from xnorinfer import _runtime

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

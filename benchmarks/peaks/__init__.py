"""Peak references for the benchmarks: small C loops on cache-resident data (or, for memory, a
streaming read) that say what a core can do, so that a kernel's speed reads as a share of it.

They are benchmark code, not engine code: each `benchmarks/peaks/<name>.c` is compiled on first
use with the system C compiler (`$CC`, default `cc`) into a temporary shared library and called
through ctypes. Like the engine, the files carry per-function target attributes instead of -march
flags, so one build has every x86 level and a function runs only where the CPU has its features.

    from peaks import load
    lib = load("bgemm_avx2")     # a ctypes.CDLL of benchmarks/peaks/bgemm_avx2.c
"""

import ctypes
import functools
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


@functools.cache
def load(name):
    """benchmarks/peaks/<name>.c, compiled once per process, as a ctypes.CDLL."""
    source = HERE / f"{name}.c"
    out = Path(tempfile.mkdtemp(prefix="xnorinfer-peaks-")) / f"{name}.so"
    cc = shlex.split(os.environ.get("CC", "cc"))
    # -ffp-contract=off as in the engine's build: a float peak loop is explicit about its FMAs
    engine = HERE.parent.parent / "xnorinfer" / "csrc"  # a file may include an engine kernel to run it alike
    cmd = [*cc, "-O2", "-fPIC", "-shared", "-ffp-contract=off", f"-I{engine}", str(source), "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"building the peak loops failed: {' '.join(cmd)}\n{result.stderr}")
    return ctypes.CDLL(str(out))

"""Build of the C/Cython extension xnorinfer._core.

The kernels need no -march flag: each SIMD kernel carries its own target attribute and is picked
at run time (xnorinfer/csrc/isa.c). OpenMP is probed by compiling a small program; without it the
build still succeeds and every kernel runs on one thread."""

import os
import shlex
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CSRC = Path("xnorinfer") / "csrc"

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def openmp_flags(compiler):
    """(compile flags, link flags) that enable OpenMP for this compiler, or None."""
    if os.environ.get("XNORINFER_DISABLE_OPENMP"):
        return None
    candidates = (
        [(["/openmp"], [])]
        if compiler.compiler_type == "msvc"
        else [
            (["-fopenmp"], ["-fopenmp"]),
            (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),  # Apple clang with libomp
        ]
    )
    # The extension's link line carries CFLAGS and LDFLAGS (e.g. -L/opt/libomp/lib), but
    # distutils links executables with the bare compiler: without them the probe could fail where
    # the real build would work, or pass where it would not.
    env_link = shlex.split(os.environ.get("CFLAGS", "")) + shlex.split(os.environ.get("LDFLAGS", ""))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(OPENMP_PROBE)
        for cflags, ldflags in candidates:
            try:
                objs = compiler.compile([str(src)], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=env_link + ldflags)
            except Exception:  # the compiler said no: try the next spelling
                continue
            return cflags, ldflags
    return None


class BuildExt(build_ext):
    def build_extensions(self):
        flags = openmp_flags(self.compiler)
        if flags is None:
            # pip shows this only with -v; `xnorinfer --version` and show_config() repeat it at run time.
            print(
                "\n" + "*" * 78 + "\nxnorinfer: WARNING: OpenMP not available (or disabled): building "
                "SINGLE-THREADED kernels.\nInstall libgomp (gcc) or libomp (clang), with matching CFLAGS and "
                "LDFLAGS, and rebuild.\n" + "*" * 78,
                file=sys.stderr,
            )
        for ext in self.extensions:
            if self.compiler.compiler_type != "msvc":
                # -fno-trapping-math: nothing reads the FP exception flags, and without it GCC
                # will not turn the epilogue's PReLU select into a vector blend.
                # -ffp-contract=off: no fused multiply-adds where PyTorch rounds twice (and the
                # same results on CPUs with and without FMA).
                ext.extra_compile_args += [
                    "-O3",
                    "-std=c11",
                    "-fno-strict-aliasing",
                    "-fno-trapping-math",
                    "-ffp-contract=off",
                ]
            if flags is not None:
                ext.extra_compile_args += flags[0]
                ext.extra_link_args += flags[1]
        super().build_extensions()


extensions = [
    Extension(
        "xnorinfer._core",
        sources=["xnorinfer/_core.pyx"] + sorted(str(p) for p in CSRC.glob("*.c")),
        depends=sorted(str(p) for p in CSRC.glob("*.h")),  # a changed kernel body rebuilds
        include_dirs=[str(CSRC)],
    )
]

# Guarded so that tests can import openmp_flags without Cython (a build requirement only); pip
# and setuptools run this file as __main__.
if __name__ == "__main__":
    from Cython.Build import cythonize

    setup(
        ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}),
        cmdclass={"build_ext": BuildExt},
    )

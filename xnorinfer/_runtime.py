"""Run-time configuration: which SIMD kernels run, and on how many threads."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import warnings

from . import _core
from ._version import __version__

ISA_ENV = "XNORINFER_ISA"
_NAMES = _core.isa_names()


def available_isas() -> list[str]:
    """Instruction sets this build has kernels for and this CPU can run, best last."""
    return [name for i, name in enumerate(_NAMES) if _core.isa_supported(i)]


def get_isa() -> str:
    """The instruction set the binary kernels use now."""
    return _NAMES[_core.isa_get()]


def set_isa(name: str) -> None:
    """Force the kernels of one instruction set: 'scalar', 'avx2', 'avx512bw', 'avx512' or 'neon'.

    Raises ValueError for an unknown name and RuntimeError if this CPU or build lacks it."""
    if name not in _NAMES:
        raise ValueError(f"unknown instruction set {name!r}; known: {', '.join(_NAMES)}")
    index = _NAMES.index(name)
    if not _core.isa_set(index):
        why = "this CPU lacks it" if _core.isa_compiled(index) else "this build has no kernel for it"
        raise RuntimeError(
            f"instruction set {name!r} is not available ({why}); available: {', '.join(available_isas())}"
        )


def get_num_threads() -> int:
    """Threads the kernels use: the count set_num_threads pinned, else OpenMP's, read on every call
    (so OMP_NUM_THREADS and threadpoolctl's threadpool_limits(user_api="openmp") take effect); 1
    in a process made by fork() (see _after_fork_in_child)."""
    return _core.get_num_threads()


def set_num_threads(n: int | None) -> None:
    """Pin the threads the kernels use (1 without OpenMP, and in a forked child); None unpins,
    so that the count follows OpenMP's (and threadpoolctl's limits) again."""
    if n is None:
        _core.set_num_threads(0)
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be an int >= 1 (or None), got {n!r}")
    _core.set_num_threads(n)


def _thread_setting() -> int | None:
    """What set_num_threads was last given (None: unpinned), to restore it later."""
    return _core.get_thread_pin() or None


# ---- fork ---------------------------------------------------------------------------------------
# OpenMP's runtime (libgomp) keeps its worker threads in a pool that fork() does not copy: a
# parallel region in the child waits for them forever (a child's predict hung after its parent
# had run on 2 threads). So a forked child runs every kernel on one thread, which never starts a
# team; it says so once, when it first runs a model, if it was meant to use more.

_fork_warning = None  # the warning a forked child still has to give, or None
_threads_at_fork = 1  # the parent's thread count, read before the fork: the child touches no OpenMP


def _before_fork() -> None:
    global _threads_at_fork
    _threads_at_fork = _core.get_num_threads()


def _after_fork_in_child() -> None:
    global _fork_warning
    _core.after_fork_in_child()
    threads = _threads_at_fork
    if threads > 1:
        _fork_warning = (
            f"xnorinfer: this process was made by fork() after its parent set up {threads} "
            "OpenMP threads; its kernels run on 1 thread (OpenMP does not survive a fork). "
            "Use the 'spawn' or 'forkserver' start method for multi-threaded workers."
        )


def warn_if_forked() -> None:
    """Give a forked child's one warning (Model.predict calls this)."""
    global _fork_warning
    if _fork_warning is not None:
        message, _fork_warning = _fork_warning, None
        warnings.warn(message, RuntimeWarning, stacklevel=3)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


_blas_controller = None


def blas_single_threaded():
    """A context in which NumPy's BLAS runs on one thread, for the one layer that calls it (a
    grouped float convolution). Letting BLAS start its own threads next to the kernels' OpenMP
    team oversubscribes the cores; limiting it around every run instead would cost ~10 us a run
    and wake BLAS's threads to spin on the other core."""
    global _blas_controller
    try:
        if _blas_controller is None:
            from threadpoolctl import ThreadpoolController

            _blas_controller = ThreadpoolController()
        return _blas_controller.limit(limits=1, user_api="blas")
    except Exception:  # threadpoolctl cannot see this BLAS: nothing to limit
        return contextlib.nullcontext()


SINGLE_THREADED = (
    "WARNING: this xnorinfer was built without OpenMP: every kernel runs on ONE thread. "
    "Rebuild with a compiler that has OpenMP (gcc: libgomp; clang: libomp; pass matching "
    "CFLAGS and LDFLAGS), or install a wheel, which bundles it (docs/install.md)."
)


def single_threaded_warning() -> str | None:
    """The warning to show when the build has no OpenMP (pip hides the build's own warning)."""
    return None if _core.openmp_enabled() else SINGLE_THREADED


def show_config(file=None) -> None:
    """Print the version, the build's OpenMP and SIMD kernels, and what this CPU selected; a
    single-threaded build ends with a warning."""
    compiled = [name for i, name in enumerate(_NAMES) if _core.isa_compiled(i)]
    forced = os.environ.get(ISA_ENV)
    bgemm, rows, channels = _core.isa_kernels(_core.isa_get())
    lines = [
        f"xnorinfer {__version__}",
        f"python    {platform.python_version()} on {platform.system()} {platform.machine()}",
        f"openmp    {'enabled' if _core.openmp_enabled() else 'disabled (single-threaded build)'}",
        f"threads   {get_num_threads()}",
        f"cpu       {', '.join(_core.cpu_features()) or 'no SIMD feature the kernels use'}",
        f"compiled  {', '.join(compiled)}",
        f"supported {', '.join(available_isas())}",
        f"selected  {get_isa()}" + (f" (forced by {ISA_ENV}={forced})" if forced else ""),
        f"bgemm     {bgemm}: tiles of {rows} rows x {channels} output channels",
    ]
    warning = single_threaded_warning()
    if warning:
        lines.append(warning)
    print("\n".join(lines), file=file or sys.stdout)


def _apply_environment() -> None:
    forced = os.environ.get(ISA_ENV)
    if forced:
        try:
            set_isa(forced.strip().lower())
        except (ValueError, RuntimeError) as exc:
            raise RuntimeError(f"{ISA_ENV}={forced}: {exc}") from None

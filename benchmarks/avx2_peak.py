"""The AVX2 popcount peak: binary-GEMM micro-kernels on L1-resident panels
(benchmarks/peaks/bgemm_avx2.c), every variant tried for the engine's AVX2 kernel, and that kernel
itself compiled from its source and run on L1-resident data of real layers' shapes. The best
micro-kernel is the AVX2 reference that bconv_layers.py gives each layer's share of.

    python benchmarks/avx2_peak.py                      # a table, Gbit-MAC/s
    python benchmarks/avx2_peak.py --json benchmarks/results/avx2_peak.json

The variants take turns in rounds (a slow spell of a shared machine hits each alike); each cell is
the median over rounds of one timed call of about 0.1 s."""

import argparse
import ctypes
import json
import time
from pathlib import Path

import numpy as np
from peaks import load

from xnorinfer.bench import ROUNDS, cpu_name

K = 64  # words per row of the micro-kernels (bgemm_avx2.c)
# name: (rows, channels, what it is)
MICRO = {
    "byte_lut_4x8": (4, 8, "split after the XOR (the kernel before issue 17)"),
    "byte_lut_2x16": (2, 16, "the same, 2 rows x 16 channels"),
    "nibble_act_4x8": (4, 8, "weights as nibble planes, each activation split after its broadcast"),
    "nibble_act_2x16": (2, 16, "the same, 2 rows x 16 channels"),
    "nibble_3x8": (3, 8, "both operands as nibble planes"),
    "nibble_4x8": (4, 8, "the same, 4 rows"),
    "nibble_6x8": (6, 8, "the same, 6 rows (spills)"),
    "nibble_2x16": (2, 16, "the same, 2 rows x 16 channels"),
    "tables_3x64": (3, 64, "a table per activation nibble, weights a nibble per byte"),
    "tables_4x64": (4, 64, "the same, 4 rows"),
}
# The engine's kernel: (rows, panels of 8 channels, taps, words per tap) of a bconv.c call
ENGINE = {
    "3x3, 128 channels (K = 18 words)": (48, 16, 9, 2),
    "3x3, 256 channels (K = 36)": (48, 16, 9, 4),
    "3x3, 512 channels (K = 72)": (48, 16, 9, 8),
    "1x1, 1024 channels (K = 16)": (48, 16, 1, 16),
}


def measure(rounds=ROUNDS, seconds=0.1):
    """{"micro": {name: Gbit-MAC/s}, "engine": {shape: Gbit-MAC/s}, "peak": (name, Gbit-MAC/s)}."""
    lib = load("bgemm_avx2")
    lib.xi_peak_init(ctypes.c_uint64(12345))
    lib.xi_peak_init_tables()
    calls = {}
    for name, (rows, channels, _) in MICRO.items():
        fn = getattr(lib, f"xi_peak_{name}")
        fn.restype, fn.argtypes = ctypes.c_int64, [ctypes.c_int64]
        calls[("micro", name)] = (lambda reps, fn=fn: fn(reps), rows * channels * K * 64)
    engine = lib.xi_peak_engine
    engine.restype, engine.argtypes = ctypes.c_int64, [ctypes.c_int64] + [ctypes.c_int] * 4
    for label, shape in ENGINE.items():
        m, panels, taps, words = shape
        calls[("engine", label)] = (lambda reps, shape=shape: engine(reps, *shape), m * panels * 8 * taps * words * 64)
    reps = {}
    for key, (call, _) in calls.items():  # calls of about `seconds` each
        t = time.perf_counter()
        call(10)
        reps[key] = max(1, int(seconds / max(time.perf_counter() - t, 1e-9) * 10))
    samples = {key: [] for key in calls}
    for _ in range(rounds):
        for key, (call, macs) in calls.items():
            t = time.perf_counter()
            if call(reps[key]) < 0:
                raise RuntimeError(f"{key}: shape too large for bgemm_avx2.c's buffers")
            samples[key].append(reps[key] * macs / (time.perf_counter() - t) / 1e9)
    result = {"micro": {}, "engine": {}}
    for (kind, name), rates in samples.items():
        result[kind][name] = float(np.median(rates))
    best = max(result["micro"], key=result["micro"].get)
    result["peak"] = (best, result["micro"][best])
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    args = parser.parse_args()
    result = measure()
    peak = result["peak"][1]
    print(f"{cpu_name()}; 1 thread; Gbit-MAC/s, median of {ROUNDS} rounds")
    for name, rate in result["micro"].items():
        print(f"  micro {name:18s} {rate:6.0f}  {MICRO[name][2]}")
    for label, rate in result["engine"].items():
        print(f"  engine kernel, {label:34s} {rate:6.0f}  {100 * rate / peak:3.0f}% of the peak")
    if args.json:
        what = {name: micro[2] for name, micro in MICRO.items()}
        Path(args.json).write_text(json.dumps({"machine": cpu_name(), **result, "what": what}, indent=1) + "\n")


if __name__ == "__main__":
    main()

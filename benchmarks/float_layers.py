"""Float layer speed per instruction set: the stem convs (GMAC/s) and batch-1 dense layers
(GB/s of weights, caches flushed), each as a share of a reference measured in the same run:
the core's FMA peak (benchmarks/peaks/fma.c: 8 lanes for avx2, 16 for the AVX-512 levels) for a
conv, a streaming read of the same weight bytes (benchmarks/peaks/stream.c, flushed the same way)
for a dense layer. The ISAs and the references take turns in rounds.

    python benchmarks/float_layers.py
    python benchmarks/float_layers.py --threads 2 --json benchmarks/results/float_layers_2t.json

Convs run as the engine runs them: ReActNet-A's stem with its BatchNorm folded (scale, bias) and
the signs packed for the next binary layer, ReActNet-18's and AlexNet's with the max pooling
fused (xi_conv2d_max_pool; its time counts, its work does not). Each stem is timed twice: the
conv alone (its float output written, no packing or pooling) and the fused op. MACs count real
output channels and every tap, padding included."""

import argparse
import ctypes
import json
import sys
import time
from pathlib import Path

import numpy as np

import xnorinfer
from xnorinfer.bench import ROUNDS, cpu_name
from xnorinfer.ops import float_ops as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peaks import load  # noqa: E402

# name, (input side, channels in, channels out, kernel, stride, padding, max pooling (k, s, p) or None)
CONVS = [
    ("ReActNet-A stem 3x3/2 3->32 +pack", (224, 3, 32, 3, 2, 1, None)),
    ("ReActNet-18 stem 7x7/2 3->64 +maxpool", (224, 3, 64, 7, 2, 3, (3, 2, 1))),
    ("AlexNet stem 11x11/4 3->96 +maxpool", (227, 3, 96, 11, 4, 0, (3, 2, 0))),
]
# name, (inputs, outputs): the models' float classifiers
DENSES = [
    ("ReActNet-A fc 1024->1000", (1024, 1000)),
    ("ReActNet-18 fc 512->1000", (512, 1000)),
    ("AlexNet fc 4096->1000", (4096, 1000)),
]
FLUSH_BYTES = 64 << 20  # more than any last-level cache slice here
PEAK_ITERS = 2_000_000


def peak_of(isa):
    """The FMA peak loop and the streaming read that stand for `isa` (None for scalar)."""
    if isa == "avx2":
        return "avx2", 8
    if isa.startswith("avx512"):
        return "avx512", 16
    return None, None


def bind_conv(rng, side, cin, cout, k, stride, pad, pool):
    """(conv alone, the fused op as the engine runs it, MACs): the conv alone writes its float
    output and nothing else (no sign packing, no pooling)."""
    x = rng.standard_normal((1, side, side, cin)).astype(np.float32)
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    scale = (rng.random(cout) + 0.5).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    ho = (side + 2 * pad - k) // stride + 1
    if pool is None:
        packed = np.zeros((1, ho, ho, (cout + 63) // 64), np.uint64)
        conv, _ = F.bind_conv2d(x, w, bias, stride, pad, scale=scale)
        fused, _ = F.bind_conv2d(x, w, bias, stride, pad, scale=scale, packed=packed)
    else:
        conv, mid = F.bind_conv2d(x, w, bias, stride, pad, scale=scale, relu=True)
        mid[...] = 0
        pooled, _ = F.bind_pool2d("max", mid, *pool)
        fused = F.bind_conv2d_max_pool(conv, pooled)
    return conv, fused, ho * ho * cout * cin * k * k


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=40, help="timed calls per layer and ISA, over all rounds")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--convs-only", action="store_true", help="skip the dense layers")
    args = parser.parse_args()
    xnorinfer.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    isas = xnorinfer.available_isas()
    fma, stream = load("fma"), load("stream")
    for lib, kind in ((fma, "fma"), (stream, "stream")):
        for level in ("avx2", "avx512"):
            getattr(lib, f"xi_{'peak_fma' if kind == 'fma' else 'stream'}_{level}").restype = ctypes.c_float
    per_round = max(1, args.repeats // ROUNDS)
    flush = np.ones(FLUSH_BYTES, np.uint8)

    def timed(fn, flushed=False):
        times = []
        fn()
        for _ in range(per_round):
            if flushed:
                np.add(flush, 1, out=flush)  # written: evicts the weights from every cache level
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return times

    levels = sorted({peak_of(isa)[0] for isa in isas} - {None})
    lanes = {"avx2": 8, "avx512": 16}
    chains = {lv: getattr(fma, f"xi_peak_fma_{lv}_chains")() for lv in levels}

    def peak_turn(level):
        fn = getattr(fma, f"xi_peak_fma_{level}")
        start = time.perf_counter()
        fn(ctypes.c_int64(PEAK_ITERS))
        return lanes[level] * chains[level] * PEAK_ITERS / (time.perf_counter() - start) / 1e9

    peaks = {lv: [] for lv in levels}
    report = {"machine": cpu_name(), "threads": args.threads, "repeats": per_round * ROUNDS, "isas": isas}
    report["fma_peak_gmacs"] = {}
    report["convs"], report["denses"] = [], []
    print(f"{cpu_name()}; threads {args.threads}; median of {per_round * ROUNDS}, the ISAs taking turns")
    print("convs: GMAC/s (ms) [share of that ISA's same-run FMA peak, 1 core]")
    conv_rows = []
    for name, spec in CONVS:
        conv, fused, macs = bind_conv(rng, *spec)
        samples = {(isa, kind): [] for isa in isas for kind in ("conv", "fused")}
        for _ in range(ROUNDS):
            for isa in isas:
                xnorinfer.set_isa(isa)
                samples[isa, "conv"] += timed(conv)
                samples[isa, "fused"] += timed(fused)
            for lv in levels:
                peaks[lv].append(peak_turn(lv))
        conv_rows.append((name, spec, macs, samples))
    peak = {lv: float(np.median(v)) for lv, v in peaks.items()}
    report["fma_peak_gmacs"] = peak
    print("FMA peak, GMAC/s per core: " + ", ".join(f"{lv} {v:.1f}" for lv, v in peak.items()))
    print("per layer: the conv alone (its FMA work, no packing or pooling), then the fused op as the engine runs it")
    print(f"{'layer':40s}" + "".join(f"{isa:>24s}" for isa in isas))
    for name, spec, macs, samples in conv_rows:
        row = {"layer": name, "geometry": list(spec), "macs": macs, "results": {}}
        lines = {"conv": [], "fused": []}
        for isa in isas:
            lv = peak_of(isa)[0]
            res = {}
            for kind in ("conv", "fused"):
                t = float(np.median(samples[isa, kind]))
                g = macs / t / 1e9
                share = g / (peak[lv] * args.threads) if lv else None
                res[kind] = {"gmacs": g, "ms": t * 1e3, "share_of_peak": share}
                cell = f"{g:6.1f} ({t * 1e3:6.3f})" + (f" {share:4.0%}" if share is not None else "     ")
                lines[kind].append(cell)
            # the fused op's figures at the top level, as before the conv-alone split
            row["results"][isa] = {**res["fused"], "conv": res["conv"]}
        report["convs"].append(row)
        print((name.split(" +")[0] + " conv").ljust(40) + "".join(f"{c:>24s}" for c in lines["conv"]))
        print(("  " + name).ljust(40) + "".join(f"{c:>24s}" for c in lines["fused"]))
    if args.convs_only:
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        return

    print("dense, batch 1, caches flushed: GB/s of weights (ms) [share of a same-run streaming read]")
    print(
        f"{'layer':40s}" + "".join(f"{isa:>24s}" for isa in isas) + "".join(f"{'stream ' + lv:>18s}" for lv in levels)
    )
    for name, (inp, outp) in DENSES:
        w = rng.standard_normal((outp, inp)).astype(np.float32)
        b = rng.standard_normal(outp).astype(np.float32)
        x = rng.standard_normal((1, inp)).astype(np.float32)
        run, _ = F.bind_dense(x, F.DenseWeights(w), b)
        ptr, n = w.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), ctypes.c_int64(w.size)
        streams = {lv: getattr(stream, f"xi_stream_{lv}") for lv in levels}
        samples = {isa: [] for isa in isas}
        ssamples = {lv: [] for lv in levels}
        for _ in range(ROUNDS):
            for isa in isas:
                xnorinfer.set_isa(isa)
                samples[isa] += timed(run, flushed=True)
            for lv in levels:
                ssamples[lv] += timed(lambda fn=streams[lv]: fn(ptr, n), flushed=True)
        st = {lv: float(np.median(v)) for lv, v in ssamples.items()}
        row = {"layer": name, "shape": [outp, inp], "bytes": w.nbytes, "results": {}, "stream_ms": {}}
        cells = []
        for isa in isas:
            t = float(np.median(samples[isa]))
            lv = peak_of(isa)[0] or "avx2"
            share = st[lv] / t if lv in st else None
            row["results"][isa] = {"gbs": w.nbytes / t / 1e9, "ms": t * 1e3, "share_of_stream": share}
            cells.append(f"{w.nbytes / t / 1e9:6.1f} ({t * 1e3:6.3f})" + (f" {share:4.0%}" if share else "     "))
        for lv in levels:
            row["stream_ms"][lv] = st[lv] * 1e3
            cells.append(f"{w.nbytes / st[lv] / 1e9:6.1f} ({st[lv] * 1e3:6.3f})")
        report["denses"].append(row)
        print(
            name.ljust(40)
            + "".join(f"{c:>24s}" for c in cells[: len(isas)])
            + "".join(f"{c:>18s}" for c in cells[len(isas) :])
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

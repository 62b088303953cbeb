"""Binary convolution speed per instruction set: Gbit-MAC/s of single layers, weights prepared,
activations already packed, at a given thread count. One run compares every ISA this CPU has.

    python benchmarks/bconv_layers.py                 # ReActNet-A's 3x3 layer 56x56x128 -> 128, 1 thread
    python benchmarks/bconv_layers.py --all --threads 2
    python benchmarks/bconv_layers.py --all --json benchmarks/results/bconv_layers.json

Where the CPU has AVX2, the same run also measures the AVX2 popcount peak (benchmarks/avx2_peak.py:
the best binary-GEMM micro-kernel on L1-resident panels) and prints each layer's AVX2 share of it.
The JSON is what benchmarks/tables.py turns into docs/performance.md's single-layer table."""

import argparse
import json
from pathlib import Path

import avx2_peak
import numpy as np

import xnorinfer
from xnorinfer.bench import ROUNDS, cpu_name, sample_seconds
from xnorinfer.ops import BinaryConvWeights, bconv2d, pack_signs

# (side, channels in, channels out, kernel, stride): the first is the reference layer;
# --all adds one of each kind ReActNet-A has.
LAYERS = [(56, 128, 128, 3, 1)]
REACTNET_A = [
    (112, 32, 32, 3, 1),
    (112, 32, 32, 1, 1),
    (56, 128, 128, 1, 1),
    (28, 256, 256, 3, 1),
    (14, 512, 512, 3, 1),
    (14, 512, 512, 1, 1),
    (7, 1024, 1024, 3, 1),
    (14, 512, 512, 3, 2),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--all", action="store_true", help="also every layer kind of ReActNet-A")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    args = parser.parse_args()
    xnorinfer.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    isas = xnorinfer.available_isas()
    report = {"machine": cpu_name(), "threads": args.threads, "repeats": args.repeats, "isas": isas, "layers": []}
    peak = None
    if "avx2" in isas:
        variant, peak = avx2_peak.measure()["peak"]
        report["avx2_peak"] = {"variant": variant, "gbitmacs": peak}
        print(f"AVX2 popcount peak (micro-kernel {variant}, L1-resident, 1 thread): {peak:.0f} Gbit-MAC/s")
    print(f"threads {args.threads}; median of {args.repeats}, the ISAs taking turns; Gbit-MAC/s (ms)")
    print(f"{'layer':28s}" + "".join(f"{isa:>20s}" for isa in isas) + ("  avx2/peak" if peak else ""))
    for side, cin, cout, k, stride in LAYERS + (REACTNET_A if args.all else []):
        x = pack_signs(rng.standard_normal((1, side, side, cin)).astype(np.float32))
        weights = BinaryConvWeights.from_float(rng.standard_normal((cout, cin, k, k)).astype(np.float32))
        out = np.empty_like(bconv2d(x, weights, stride, k // 2))
        macs = out.shape[1] * out.shape[2] * cout * cin * k * k
        # The ISAs take turns (ROUNDS of them), so that a slow spell of a shared machine hits each
        # alike and their ratios hold.
        samples = {isa: [] for isa in isas}
        for _ in range(ROUNDS):
            for isa in isas:
                xnorinfer.set_isa(isa)
                bconv2d(x, weights, stride, k // 2, out=out)  # warm caches after the other ISA
                samples[isa] += sample_seconds(
                    lambda: bconv2d(x, weights, stride, k // 2, out=out), max(1, args.repeats // ROUNDS)
                )
        cells = []
        row = {"side": side, "cin": cin, "cout": cout, "kernel": k, "stride": stride, "results": {}}
        for isa in isas:
            t = float(np.median(samples[isa]))
            cells.append(f"{macs / t / 1e9:8.0f} ({t * 1e3:6.3f})")
            row["results"][isa] = {"gbitmacs": macs / t / 1e9, "ms": t * 1e3}
        report["layers"].append(row)
        share = ""
        if peak:  # the peak is one core's: a layer on more threads gets its share of threads x peak
            share = f"{100 * row['results']['avx2']['gbitmacs'] / (peak * args.threads):9.0f}%"
        print(f"{side}x{side}x{cin}->{cout} k{k} s{stride}".ljust(28) + "".join(f"{c:>20s}" for c in cells) + share)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

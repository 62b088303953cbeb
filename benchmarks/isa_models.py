"""Whole-model latency under every SIMD level this CPU has, the levels taking turns in one run
(random-parameter ReActNet-A at 224x224 and ReActNet-18, batch 1): the ratios between levels hold
even when the machine's speed drifts.

    python benchmarks/isa_models.py [--threads 1] [--rounds 7]"""

import argparse
import statistics
import time

import numpy as np

import xnorinfer
from xnorinfer import bench
from xnorinfer.testing import torch_models


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--models", default="reactnet-a,reactnet-18")
    args = parser.parse_args()
    xnorinfer.set_num_threads(args.threads)
    isas = [isa for isa in xnorinfer.available_isas() if isa != "scalar"]
    print(f"{bench.cpu_name()}; {args.threads} thread(s); median over {args.rounds} rounds of the best of 5, ms")
    for name in args.models.split(","):
        arch, side, factory = bench.MODELS[name]
        reference = getattr(torch_models, factory)()
        torch_models.randomize_(reference, seed=0)
        engine = xnorinfer.convert.from_torch(reference.state_dict(), arch, input_size=side)
        x = np.random.default_rng(0).standard_normal((1, 3, side, side)).astype(np.float32)
        best = {isa: [] for isa in isas}
        for _ in range(args.rounds):
            for isa in isas:
                xnorinfer.set_isa(isa)
                engine.predict(x)
                calls = []
                for _ in range(5):
                    start = time.perf_counter()
                    engine.predict(x)
                    calls.append(time.perf_counter() - start)
                best[isa].append(min(calls))
        ms = {isa: 1e3 * statistics.median(v) for isa, v in best.items()}
        fastest = min(ms.values())
        print(f"{name:12s}" + "".join(f"  {isa} {m:6.2f} ({m / fastest:.2f}x)" for isa, m in ms.items()))


if __name__ == "__main__":
    main()

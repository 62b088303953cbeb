"""BWN models (binary weights, float activations) against PyTorch fp32 and ONNX Runtime, and this
build of the engine against another one (today's main, say), in one run.

    python benchmarks/bwn.py --threads 1,2 --baseline /tmp/xi-main --json bwn.json

Models (random parameters, XNOR-Net-PyTorch layouts, built by the bwn-* converters): AlexNet at
227x227, NIN at 32x32, LeNet-5 at 28x28. PyTorch runs them in fp32 eval with alpha * sign(W) held
as ordinary weights; ONNX Runtime runs the same exported graph. Each engine runs in a worker
process of its own (so that two builds can be compared, and so that its memory can be read):
the runtimes take turns, round after round, so a slow spell of the machine hits all alike.

Reported per model and thread count: median latency at batch 1 and throughput at batch 16 of
every runtime, ratios against PyTorch, and each engine's process growth (VmRSS) over load + one
predict, against the .xnr file's size. `--dense` also times the BWN dense layers at batch 1 with
the caches flushed, against a same-run streaming read of their packed 1-bit weights."""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]
MODELS = {  # name: (arch, input side, input channels, xnorinfer.testing.torch_models factory)
    "alexnet": ("bwn-alexnet", 227, 3, "AlexNetXNOR"),
    "nin": ("bwn-nin", 32, 3, "NIN"),
    "lenet5": ("bwn-lenet5", 28, 1, "LeNet5"),
}


def rss_kib(field="VmRSS"):
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith(field)).split()[1])


def worker(root, path, threads, side, channels):
    """An engine in its own process: reports its memory, then answers "b1 N" / "b16 N" with the
    times of N predicts at that batch size."""
    sys.path.insert(0, root)
    import xnorinfer

    xnorinfer.set_num_threads(threads)
    rng = np.random.default_rng(0)
    # float32 directly: a freed float64 temporary of 20 MiB would raise glibc's mmap threshold, and
    # the load's own temporaries would then stay in the heap and count as growth
    x1 = rng.standard_normal((1, channels, side, side), dtype=np.float32)
    x16 = rng.standard_normal((16, channels, side, side), dtype=np.float32)
    before = rss_kib()
    model = xnorinfer.load(path)
    model.predict(x1)
    grown = rss_kib() - before
    print(
        json.dumps(
            {
                "rss_growth_mib": grown / 1024,
                "file_mib": os.path.getsize(path) / 2**20,
                "xnorinfer": str(Path(xnorinfer.__file__).parent),
            }
        ),
        flush=True,
    )
    for line in sys.stdin:
        kind, n = line.split()
        x = x1 if kind == "b1" else x16
        print(json.dumps(sample(lambda: model.predict(x), int(n))), flush=True)


def sample(fn, n):
    fn()  # warm caches and threads after the other runtimes' turns
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


class Worker:
    def __init__(self, root, path, threads, side, channels):
        self.p = subprocess.Popen(
            [sys.executable, __file__, "--worker", root, str(path), str(threads), str(side), str(channels)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, OMP_NUM_THREADS=str(threads)),
        )
        self.info = json.loads(self.p.stdout.readline())

    def __call__(self, kind, n):
        self.p.stdin.write(f"{kind} {n}\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def bench_model(name, threads, engines, args, tmp):
    import torch

    import xnorinfer
    from xnorinfer.testing import torch_models as ref

    arch, side, channels, factory = MODELS[name]
    reference = getattr(ref, factory)(binary_activations=False)
    ref.randomize_(reference, seed=0)
    path = Path(tmp) / f"{name}.xnr"
    xnorinfer.convert.from_torch(reference.state_dict(), arch, input_size=side).save(path)
    ptorch = copy.deepcopy(reference).eval()
    ref.xnor_binarize_(ptorch)  # alpha * sign(W) as ordinary float weights
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((1, channels, side, side)).astype(np.float32)
    x16 = rng.standard_normal((16, channels, side, side)).astype(np.float32)
    runners = {}
    with torch.no_grad():
        runners["pytorch"] = lambda kind, n: sample(lambda: ptorch(torch.from_numpy(x1 if kind == "b1" else x16)), n)
        try:
            import onnxruntime as ort

            onnx_path = f"{tmp}/{name}.onnx"
            torch.onnx.export(
                ptorch, torch.from_numpy(x1), onnx_path, input_names=["x"], dynamic_axes={"x": {0: "n"}}, dynamo=False
            )
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
            runners["onnxruntime"] = lambda kind, n: sample(
                lambda: session.run(None, {"x": x1 if kind == "b1" else x16}), n
            )
        except ImportError:
            pass
        workers = {label: Worker(root, path, threads, side, channels) for label, root in engines.items()}
        runners.update(workers)
        times = {label: {"b1": [], "b16": []} for label in runners}
        for _ in range(args.rounds):
            for label, run in runners.items():
                for kind in ("b1", "b16"):
                    time.sleep(0.1)  # another runtime's spinning threads go to sleep
                    times[label][kind] += run(kind, args.repeats if kind == "b1" else max(1, args.repeats // 4))
    result = {"model": name, "threads": threads, "file_mib": workers[next(iter(engines))].info["file_mib"]}
    for label, t in times.items():
        result[label] = {"latency_ms": 1e3 * float(np.median(t["b1"])), "ips16": 16 / float(np.median(t["b16"]))}
        if label in workers:
            result[label]["rss_growth_mib"] = workers[label].info["rss_growth_mib"]
    for w in workers.values():
        w.close()
    return result


def dense_report(args):
    """Each BWN dense layer of AlexNet at batch 1, caches flushed before every call, against a
    streaming read of its packed weights (a uint64 sum over them) flushed the same way."""
    import xnorinfer
    from xnorinfer import ops
    from xnorinfer.testing import torch_models as ref

    reference = ref.AlexNetXNOR(binary_activations=False)
    ref.randomize_(reference, seed=0)
    model = xnorinfer.convert.from_torch(reference.state_dict(), "bwn-alexnet", input_size=227)
    flush = np.ones(64 << 20, np.uint8)  # 64 MiB: more than any last-level cache here
    rows = []
    for node in model._executor.graph.nodes:
        if node.op != "bwn_dense":
            continue
        p = node.params
        weights = ops.BWNDenseWeights(p["weight_bits"], p["alpha"], node.attrs["in_features"])
        x = np.random.default_rng(0).standard_normal((1, weights.in_channels)).astype(np.float32)
        words = weights.packed

        def timed(fn):
            out = []
            for _ in range(args.repeats):
                np.add(flush, 1, out=flush)  # written: evicts the weights from every cache level
                start = time.perf_counter()
                fn()
                out.append(time.perf_counter() - start)
            return 1e3 * float(np.median(out))

        layer = timed(lambda: ops.bwn_dense(x, weights, p.get("bias")))
        stream = timed(lambda: np.add.reduce(words.reshape(-1)))
        rows.append(
            {
                "layer": node.name,
                "shape": [weights.out_channels, weights.in_channels],
                "packed_kib": words.nbytes / 1024,
                "layer_ms": layer,
                "stream_ms": stream,
                "ratio": layer / stream,
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=8, help="batch-1 calls per turn (a quarter at batch 16)")
    parser.add_argument("--baseline", help="a source tree of another build (its extension built in place)")
    parser.add_argument("--dense", action="store_true", help="also time the dense layers with flushed caches")
    parser.add_argument("--json")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        root, path, threads, side, channels = args.worker
        return worker(root, path, int(threads), int(side), int(channels))
    import torch

    engines = {"xnorinfer": str(HERE)}
    if args.baseline:
        engines["baseline"] = str(Path(args.baseline).resolve())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for name in filter(None, args.models.split(",")):
                r = bench_model(name, threads, engines, args, tmp)
                results.append(r)
                print(f"\n{name}, {threads} thread(s), file {r['file_mib']:.2f} MiB")
                for label in [k for k in r if isinstance(r[k], dict)]:
                    m = r[label]
                    mem = (
                        f"  RSS +{m['rss_growth_mib']:.1f} MiB ({m['rss_growth_mib'] / r['file_mib']:.2f}x file)"
                        if "rss_growth_mib" in m
                        else ""
                    )
                    print(
                        f"  {label:12s} b1 {m['latency_ms']:9.2f} ms "
                        f"({r['pytorch']['latency_ms'] / m['latency_ms']:5.2f}x pytorch)  "
                        f"b16 {m['ips16']:8.1f} img/s ({m['ips16'] / r['pytorch']['ips16']:5.2f}x){mem}",
                        flush=True,
                    )
    report = {"results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.dense:
        import xnorinfer

        torch.set_num_threads(1)
        xnorinfer.set_num_threads(1)
        report["dense"] = dense_report(args)
        for row in report["dense"]:
            print(
                f"dense {row['layer']} {row['shape']}: {row['layer_ms']:.3f} ms, stream of {row['packed_kib']:.0f} KiB "
                f"{row['stream_ms']:.3f} ms: {row['ratio']:.2f}x"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

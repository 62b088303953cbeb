"""Speed of xnorinfer against PyTorch (and ONNX Runtime when installed) on the same models, in one
run on one machine at one thread count, so that the ratios are meaningful even where absolute
timings are noisy.

    xnorinfer bench --threads 1,2 --json --output bench.json --png bench.png
    xnorinfer bench --quick                     # seconds: the smoke run CI does

Needs the `bench` extra (pip install "xnorinfer[bench]": torch, and onnxruntime, onnx and
matplotlib for the ONNX Runtime column and the chart). The PyTorch models come from
xnorinfer.testing.torch_models, inside the package, so an installed xnorinfer runs it anywhere.

Models (random parameters, official architectures): ReActNet-A and ReActNet-18 at 224x224, NIN at
32x32. PyTorch runs them in fp32 eval with the binary weights precomputed (alpha * sign(W) held as
an ordinary conv weight: the fastest honest PyTorch); ONNX Runtime runs the same exported graph.
Reported: median (and best) latency at batch 1, throughput at batch 16, and for the engine a
per-layer breakdown with Gbit-MAC/s and the share of this CPU's measured popcount peak. The
runtimes take turns in rounds, so a slow spell of a shared machine hits them alike."""

from __future__ import annotations

import copy
import platform
import sys
import tempfile
import time

import numpy as np

import xnorinfer
from xnorinfer.graph.opset import node_macs
from xnorinfer.graph.passes import step_name, step_op, steps
from xnorinfer.ops import BinaryConvWeights, bconv2d, pack_signs

MODELS = {  # name: (arch, input side, torch_reference factory name)
    "reactnet-a": ("reactnet-a", 224, "ReActNetA"),
    "reactnet-18": ("reactnet-18", 224, "ReActNet18"),
    "nin": ("xnor-nin", 32, "NIN"),
}


# Rounds of turns: a slow spell of this shared machine (a neighbour on the other core for a few
# seconds) then spoils a few turns of each runtime, not the median of one.
ROUNDS = 8


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def sample_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    return float(np.median(sample_seconds(fn, repeats)))


def turn_seconds(fn, repeats, min_seconds=0.0):
    """One runtime's turn in a round: after another runtime's turn its thread pool may still spin
    for a while, taking a core from this one, so pause until it sleeps and warm caches and threads
    with one unmeasured call. Then at least `repeats` calls, and more until the turn has lasted
    min_seconds (so a fast runtime's median rests on as many calls as a slow one's time allows)."""
    time.sleep(0.2)
    fn()
    times = sample_seconds(fn, repeats)
    while sum(times) < min_seconds:
        times += sample_seconds(fn, 1)
    return times


def popcount_peak(repeats):
    """This CPU's XNOR-popcount rate on a large, compute-bound binary conv (Gbit-MAC/s)."""
    rng = np.random.default_rng(0)
    x = pack_signs(rng.standard_normal((1, 8, 8, 2048)).astype(np.float32))
    weights = BinaryConvWeights.from_float(rng.standard_normal((1024, 2048, 3, 3)).astype(np.float32))
    out = bconv2d(x, weights, 1, 1)
    t = median_seconds(lambda: bconv2d(x, weights, 1, 1, out=out), repeats)
    return 8 * 8 * 1024 * 2048 * 9 / t / 1e9


def fast_torch(model):
    """The model with every binary weight precomputed: HardBinaryConv -> Conv2d(alpha * sign(W))."""
    import torch
    import torch.nn as nn

    from xnorinfer.testing import torch_models as ref

    model = copy.deepcopy(model).eval()
    if any(isinstance(m, ref.BinConv2d) for m in model.modules()):
        ref.xnor_binarize_(model)  # XNOR-Net: conv weights become alpha * sign(W) once
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, ref.HardBinaryConv):
                w = child.real_weights().detach()
                alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
                conv = nn.Conv2d(
                    child.in_chn, child.out_chn, child.kernel_size, child.stride, child.padding, bias=False
                )
                conv.weight.data = torch.sign(w) * alpha
                setattr(parent, name, conv)
    return model


def bench_model(name, args, peak):
    import torch

    from xnorinfer.testing import torch_models as ref

    arch, side, factory = MODELS[name]
    reference = getattr(ref, factory)()
    ref.randomize_(reference, seed=0)
    engine = xnorinfer.convert.from_torch(reference.state_dict(), arch, input_size=side)
    ptorch = fast_torch(reference)
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((1, 3, side, side)).astype(np.float32)
    x16 = rng.standard_normal((args.batch, 3, side, side)).astype(np.float32)
    result = {"model": name, "input": side, "batch": args.batch}
    runners = {
        "xnorinfer": lambda x: engine.predict(x),
        "pytorch": lambda x: ptorch(torch.from_numpy(x)),
    }
    try:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/{name}.onnx"
            torch.onnx.export(
                ptorch, torch.from_numpy(x1), path, input_names=["x"], dynamic_axes={"x": {0: "n"}}, dynamo=False
            )
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads_now
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        runners["onnxruntime"] = lambda x: session.run(None, {"x": x})
    except ImportError:
        result["onnxruntime"] = "not installed"
    # The runtimes take turns, ROUNDS times, so that a slow spell of this shared machine hits each
    # of them alike and the ratios hold even when the absolute times drift.
    latency = {label: [] for label in runners}
    batch = {label: [] for label in runners}
    with torch.no_grad():
        for run in runners.values():  # warm-up
            run(x1), run(x16)
        for _ in range(ROUNDS):
            for label, run in runners.items():
                latency[label] += turn_seconds(lambda: run(x1), max(1, args.repeats // ROUNDS), args.turn_seconds)
                batch[label] += turn_seconds(lambda: run(x16), max(1, args.repeats // (4 * ROUNDS)))
    for label in runners:
        result[label] = {
            "latency_ms": 1e3 * float(np.median(latency[label])),
            "latency_best_ms": 1e3 * min(latency[label]),
            "throughput_ips": args.batch / float(np.median(batch[label])),
        }

    # Per-layer breakdown of the engine at batch 1.
    executor = engine._executor
    x = np.ascontiguousarray(x1.transpose(0, 2, 3, 1))
    runs = [dict() for _ in range(max(3, args.repeats // 2))]
    for timings in runs:
        executor.run(x, timings=timings)
    layers = []
    for members in steps(executor.graph):  # a block's time is its first layer's
        node = members[0]
        seconds = float(np.median([t[node.name] for t in runs]))
        binary = sum(node_macs(member, executor.infos)[0] for member in members)
        row = {
            "layer": step_name(members),
            "op": step_op(members),
            "output": str(executor.infos[node.output]),
            "ms": seconds * 1e3,
        }
        if binary:
            row["gbitmacs"] = binary / seconds / 1e9
            row["peak_pct"] = 100 * row["gbitmacs"] / peak
        layers.append(row)
    result["layers"] = layers
    return result


def print_report(report, file=None):
    def say(text):
        print(text, file=file or sys.stdout)

    say(
        f"\n{report['machine']}; threads {report['threads']}; ISA {report['isa']}; "
        f"popcount peak {report['peak_gbitmacs']:.0f} Gbit-MAC/s per run of 1 layer"
    )
    say(f"\n{'model':12s} {'runtime':12s} {'latency ms':>11s} {'best ms':>8s} {'img/s @16':>10s} {'vs engine':>10s}")
    for r in report["models"]:
        base = r["xnorinfer"]["latency_ms"]
        for label in ("xnorinfer", "pytorch", "onnxruntime"):
            if isinstance(r.get(label), dict):
                m = r[label]
                say(
                    f"{r['model']:12s} {label:12s} {m['latency_ms']:11.2f} {m['latency_best_ms']:8.2f} "
                    f"{m['throughput_ips']:10.1f} {m['latency_ms'] / base:9.1f}x"
                )
    for r in report["models"]:
        say(f"\n{r['model']}: engine layers (batch 1)")
        for row in r["layers"]:
            extra = f"{row['gbitmacs']:8.0f} Gbit-MAC/s {row['peak_pct']:5.1f}% of peak" if "gbitmacs" in row else ""
            say(f"  {row['layer']:56s} {row['op']:17s} {row['ms']:8.3f} ms  {extra}")


def draw(reports, path):
    """One panel per thread count: latency at batch 1 of each runtime, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["xnorinfer", "pytorch", "onnxruntime"]
    fig, axes = plt.subplots(1, len(reports), figsize=(4.2 * len(reports), 3.6), sharey=True, squeeze=False)
    for ax, report in zip(axes[0], reports):
        models = [r["model"] for r in report["models"]]
        for i, label in enumerate(labels):
            values = [r[label]["latency_ms"] if isinstance(r.get(label), dict) else 0 for r in report["models"]]
            bars = ax.bar(np.arange(len(models)) + (i - 1) * 0.27, values, 0.27, label=label)
            ax.bar_label(bars, [f"{v:.3g}" if v else "" for v in values], fontsize=7)
        ax.set_xticks(np.arange(len(models)), models)
        ax.set_yscale("log")
        ax.set_title(f"{report['threads']} thread(s), ISA {report['isa']}", fontsize=10)
    axes[0][0].set_ylabel("latency at batch 1 (ms, log scale)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"xnorinfer vs PyTorch fp32 vs ONNX Runtime fp32 ({reports[0]['machine']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def add_arguments(parser):
    """The benchmark's options, on `xnorinfer bench`'s parser (the CLI adds --json, --output, --quiet)."""
    parser.add_argument("--threads", default="1", help="thread counts, comma-separated (default 1; e.g. 1,2)")
    parser.add_argument(
        "--isa",
        default="",
        help="SIMD paths to run, comma-separated, or 'all' that this CPU has (default: the selected one)",
    )
    parser.add_argument("--repeats", type=int, default=20, help="latency calls per runtime and model (default 20)")
    parser.add_argument(
        "--turn-seconds",
        type=float,
        default=0.3,
        help="each runtime's latency turn lasts at least this long (more calls for fast ones; default 0.3)",
    )
    parser.add_argument("--batch", type=int, default=16, help="batch size of the throughput measurement (default 16)")
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"models to run, comma-separated (default {','.join(MODELS)})"
    )
    parser.add_argument("--quick", action="store_true", help="NIN only, few repeats: a smoke run of seconds")
    parser.add_argument("--png", metavar="FILE", help="draw a latency chart to FILE (needs matplotlib)")


def run(args, out=None) -> list[dict]:
    """Runs the benchmark; prints each thread count's report to `out` unless args.json or
    args.quiet, and returns the reports."""
    from ._optional import require_torch

    torch = require_torch("xnorinfer bench", extra="bench")
    if args.quick:
        args.models, args.repeats, args.batch, args.turn_seconds = "nin", 3, 4, 0.0
    unknown = sorted(set(args.models.split(",")) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown benchmark model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    isas = _isas(args.isa)
    text = not (args.json or args.quiet)
    selected = xnorinfer.get_isa()
    reports = []
    try:
        for isa in isas:
            xnorinfer.set_isa(isa)
            for threads in (int(t) for t in args.threads.split(",")):
                args.threads_now = threads
                torch.set_num_threads(threads)
                xnorinfer.set_num_threads(threads)
                peak = popcount_peak(max(3, args.repeats // 4))  # this ISA's
                report = {
                    "machine": cpu_name(),
                    "threads": threads,
                    "isa": isa,
                    "peak_gbitmacs": peak,
                    "torch": torch.__version__,
                    "models": [bench_model(name, args, peak) for name in args.models.split(",")],
                }
                if text:
                    print_report(report, out)
                reports.append(report)
    finally:
        xnorinfer.set_isa(selected)
    if len(reports) > 1 and text:
        head = reports[0]
        first = {r["model"]: r["xnorinfer"]["latency_ms"] for r in head["models"]}
        print(f"\nengine speed against {head['isa']} at {head['threads']} thread(s):", file=out)
        for report in reports[1:]:
            for r in report["models"]:
                print(
                    f"  {r['model']:12s} {report['isa']:9s} {report['threads']} thread(s): "
                    f"{first[r['model']] / r['xnorinfer']['latency_ms']:.2f}x",
                    file=out,
                )
    if args.png:
        draw(reports, args.png)
    return reports


def _isas(spec: str) -> list[str]:
    """The ISAs `--isa` names: '' for the selected one, 'all' for every one this CPU has."""
    available = xnorinfer.available_isas()
    if not spec:
        return [xnorinfer.get_isa()]
    if spec == "all":
        return available
    isas = spec.split(",")
    missing = [isa for isa in isas if isa not in available]
    if missing:
        raise ValueError(f"--isa {', '.join(missing)}: not available here; available: {', '.join(available)}")
    return isas


def main(argv=None) -> int:
    """`python -m xnorinfer.bench ...`, the same as `xnorinfer bench ...`."""
    from xnorinfer.cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

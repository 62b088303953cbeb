"""A/B speed of two source trees, each with its own .venv (built from it): one worker process per
tree, run alternately in one run, so that a slow spell of a shared machine hits both alike.

    python benchmarks/ab_compare.py ../base ../branch            # base first, the ratio is branch/base
    python benchmarks/ab_compare.py A B --rounds 9 --isas avx2 --threads 1

Cases (each under every ISA and thread count asked for):
  cifar10     the shipped cifar10_reactnet model, predict on a batch of 8 (32x32)
  bconv3x3    a 3x3 binary conv, 56x56x128 -> 128, batch 1
  bconv3x3_28 a 3x3 binary conv, 28x28x256 -> 256, batch 1
  bconv1x1    a 1x1 binary conv, 14x14x256 -> 256, batch 1
  imagenet    an ImageNet-size model at batch 1: the shipped `reactnet_a` where it exists, else
              ReActNet-A at 224x224 with random parameters (tests' PyTorch reference, converted
              once by tree A's venv, which then needs torch), the same file for both trees

Each round measures every case once in each tree, the trees' order alternating between rounds; a
turn is a pause (the other worker's OpenMP threads stop spinning), one unmeasured call, then the
median of `reps` calls. Printed: per case the median over rounds of each tree's turn medians and
their ratio B/A, then the median and the largest ratio. The worker side runs this same file in each
tree's interpreter and uses only what both trees have (xnorinfer.load, set_isa, set_num_threads,
the ops)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {"cifar10": 15, "bconv3x3": 15, "bconv3x3_28": 15, "bconv1x1": 60, "imagenet": 5}  # name: calls a turn


# ---- worker: runs inside one tree's .venv -------------------------------------------------------


def make_imagenet_model(path: str) -> None:
    """The shipped ReActNet-A, or one converted from the PyTorch reference with random
    parameters, saved to `path`."""
    import xnorinfer

    try:
        model = xnorinfer.load("reactnet_a")
    except (OSError, ValueError):
        from xnorinfer.testing import torch_models as ref

        reference = ref.ReActNetA()
        ref.randomize_(reference, seed=0)
        model = xnorinfer.convert.from_torch(reference.state_dict(), "reactnet-a", input_size=224)
    model.save(path)


def worker(imagenet_path: str) -> None:
    """Reads "isa threads case reps" lines; answers each with the median seconds of a call."""
    import numpy as np

    import xnorinfer
    from xnorinfer.ops import BinaryConvWeights, bconv2d, pack_signs

    rng = np.random.default_rng(0)
    cifar = xnorinfer.load("cifar10_reactnet")
    x_cifar = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    x3 = pack_signs(rng.standard_normal((1, 56, 56, 128)).astype(np.float32))
    w3 = BinaryConvWeights.from_float(rng.standard_normal((128, 128, 3, 3)).astype(np.float32))
    out3 = bconv2d(x3, w3, 1, 1)
    x28 = pack_signs(rng.standard_normal((1, 28, 28, 256)).astype(np.float32))
    w28 = BinaryConvWeights.from_float(rng.standard_normal((256, 256, 3, 3)).astype(np.float32))
    out28 = bconv2d(x28, w28, 1, 1)
    x1 = pack_signs(rng.standard_normal((1, 14, 14, 256)).astype(np.float32))
    w1 = BinaryConvWeights.from_float(rng.standard_normal((256, 256, 1, 1)).astype(np.float32))
    out1 = bconv2d(x1, w1, 1, 0)
    imagenet = xnorinfer.load(imagenet_path) if imagenet_path else None
    if imagenet is not None:
        c, h, w = imagenet.input_size
        x_imagenet = rng.standard_normal((1, c, h, w)).astype(np.float32)
    calls = {
        "cifar10": lambda: cifar.predict(x_cifar),
        "bconv3x3": lambda: bconv2d(x3, w3, 1, 1, out=out3),
        "bconv3x3_28": lambda: bconv2d(x28, w28, 1, 1, out=out28),
        "bconv1x1": lambda: bconv2d(x1, w1, 1, 0, out=out1),
        "imagenet": lambda: imagenet.predict(x_imagenet),
    }
    print("ready", flush=True)
    for line in sys.stdin:
        isa, threads, case, reps = line.split()
        try:
            xnorinfer.set_isa(isa)
        except (ValueError, RuntimeError) as exc:
            print(f"skip {exc}".replace("\n", " "), flush=True)
            continue
        xnorinfer.set_num_threads(int(threads))
        call = calls[case]
        time.sleep(0.2)
        call()
        times = []
        for _ in range(int(reps)):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        print(statistics.median(times), flush=True)


# ---- driver -------------------------------------------------------------------------------------


def start_worker(tree: Path, imagenet_path: str) -> subprocess.Popen:
    python = tree / ".venv" / "bin" / "python"
    command = [str(python), str(Path(__file__).resolve()), "--worker", imagenet_path]
    proc = subprocess.Popen(command, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"{tree}: the worker did not start")
    return proc


def ask(proc: subprocess.Popen, isa: str, threads: int, case: str, reps: int) -> float | None:
    proc.stdin.write(f"{isa} {threads} {case} {reps}\n")
    proc.stdin.flush()
    answer = proc.stdout.readline().strip()
    if not answer:
        raise SystemExit("a worker died")
    return None if answer.startswith("skip") else float(answer)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="tree A (the baseline), with A/.venv")
    parser.add_argument("b", type=Path, help="tree B, with B/.venv: ratios are B / A")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--isas", default="avx2,avx512")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args(argv)
    cases = args.cases.split(",")
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)} (known: {', '.join(CASES)})")
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}

    with tempfile.TemporaryDirectory() as tmp:
        imagenet_path = ""
        if "imagenet" in cases:
            imagenet_path = os.path.join(tmp, "imagenet.xnr")
            python = trees["A"] / ".venv" / "bin" / "python"
            subprocess.run(
                [str(python), str(Path(__file__).resolve()), "--make-imagenet", imagenet_path],
                cwd=trees["A"],
                check=True,
            )
        workers = {label: start_worker(tree, imagenet_path) for label, tree in trees.items()}
        configs = [
            (isa, int(threads), case)
            for isa in args.isas.split(",")
            for threads in args.threads.split(",")
            for case in cases
        ]
        times = {config: {"A": [], "B": []} for config in configs}
        for round_ in range(args.rounds):
            order = ["A", "B"] if round_ % 2 == 0 else ["B", "A"]
            for config in configs:
                for label in order:
                    seconds = ask(workers[label], *config, CASES[config[2]])
                    if seconds is not None:
                        times[config][label].append(seconds)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        for proc in workers.values():
            proc.stdin.close()
            proc.wait()

    print(f"{cpu_name()}; A = {trees['A']}, B = {trees['B']}; {args.rounds} rounds")
    print(f"{'isa':7s} {'threads':>7s} {'case':10s} {'A ms':>9s} {'B ms':>9s} {'B/A':>6s}")
    ratios = []
    for (isa, threads, case), measured in times.items():
        if not measured["A"] or not measured["B"]:
            print(f"{isa:7s} {threads:7d} {case:10s} (not run: this CPU lacks {isa})")
            continue
        a, b = statistics.median(measured["A"]), statistics.median(measured["B"])
        ratios.append(b / a)
        print(f"{isa:7s} {threads:7d} {case:10s} {a * 1e3:9.3f} {b * 1e3:9.3f} {b / a:6.3f}")
    if ratios:
        print(f"ratio B/A: median {statistics.median(ratios):.3f}, max {max(ratios):.3f} over {len(ratios)} cases")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2] if len(sys.argv) > 2 else "")
    elif sys.argv[1:2] == ["--make-imagenet"]:
        make_imagenet_model(sys.argv[2])
    else:
        sys.exit(main())

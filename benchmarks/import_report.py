"""How long from_module takes, and how fast what it imports runs next to the same network built
by hand (ResNet-20, tests/helpers/graphs.py's resnet20_by_hand) or by the dedicated converter
(ReActNet-A): the two run in turns in one process, so their ratio holds on a noisy machine. The
models are the test suite's (tests/byom), so tests/ goes on the path:

    PYTHONPATH=tests python benchmarks/import_report.py [--rounds 8] [--threads 1]"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

import xnorinfer
from xnorinfer.convert import from_module, from_torch

try:
    from byom import reactnet_official, xnor_resnet
    from helpers.graphs import resnet20_by_hand
except ModuleNotFoundError as exc:
    raise SystemExit(f"{exc}: run PYTHONPATH=tests python benchmarks/import_report.py") from exc


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def turns(models: dict, x: np.ndarray, rounds: int, min_seconds: float = 0.2) -> dict:
    """Median ms per predict of each model, the models taking turns `rounds` times."""
    times = {name: [] for name in models}
    for model in models.values():
        model.predict(x)  # plans and caches
    for _ in range(rounds):
        for name, model in models.items():
            calls, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < min_seconds or calls < 3:
                model.predict(x)
                calls += 1
            times[name].append(elapsed / calls * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    xnorinfer.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    print(
        f"xnorinfer {xnorinfer.__version__}, torch {torch.__version__}, ISA {xnorinfer.get_isa()}, "
        f"{args.threads} thread(s)\n"
    )

    resnet = xnor_resnet.resnet20_xnor()
    xnor_resnet.randomize(resnet, 0)
    xnor_resnet.prepare(resnet)
    reactnet = reactnet_official.reactnet(num_classes=1000)
    reactnet_official.randomize(reactnet, 0, input_size=224, calibrate=False)
    reactnet.eval()
    cases = [
        (
            "ResNet-20 XNOR (sign of ReLU), 32x32",
            resnet,
            (1, 3, 32, 32),
            lambda: resnet20_by_hand(resnet),
            "hand-built graph",
        ),
        (
            "ReActNet-A, 224x224",
            reactnet,
            (1, 3, 224, 224),
            lambda: from_torch(reactnet.state_dict(), "reactnet-a"),
            "dedicated converter",
        ),
    ]
    rows = []
    for title, module, shape, other, other_name in cases:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        _, bare = timed(lambda: from_module(module, x, check=False))
        imported, checked = timed(lambda: from_module(module, x))
        medians = turns({"imported": imported, other_name: other()}, x.numpy(), args.rounds)
        ratio = medians["imported"] / medians[other_name]
        rows.append((title, bare, checked, medians["imported"], medians[other_name], other_name, ratio))
    print("| module | import (s) | with self-check (s) | predict, imported (ms) | the other (ms) | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for title, bare, checked, mine, theirs, other_name, ratio in rows:
        print(f"| {title} | {bare:.2f} | {checked:.2f} | {mine:.3f} | {theirs:.3f} ({other_name}) | {ratio:.3f} |")


if __name__ == "__main__":
    main()

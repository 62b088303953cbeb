"""Per architecture: PyTorch checkpoint -> .xnr -> engine, measured against the reference models
of the test suite's tests/helpers/torch_reference.py. Prints the max logit difference on grid
parameters (exact arithmetic) and layer by layer on realistic random parameters, the
centred-logit difference of the realistic model end to end, the file size against the minimum
(packed binary weights + fp32 rest) and the load time. Needs torch, and the test suite's helpers on the path:

    PYTHONPATH=tests python benchmarks/conversion_report.py"""

import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import xnorinfer
from xnorinfer.convert import from_torch
from xnorinfer.testing import compare

try:
    from helpers import torch_reference as ref
except ModuleNotFoundError as exc:
    raise SystemExit(f"{exc}: run PYTHONPATH=tests python benchmarks/conversion_report.py") from exc

CASES = [
    # arch, factory, checkpoint kind, grid input shape, input size for the realistic run
    ("reactnet-a", lambda: ref.ReActNetA(), "reactnet", (2, 3, 224, 224), 224),
    ("reactnet-18", lambda: ref.ReActNet18(), "reactnet", (2, 3, 224, 224), 224),
    ("xnor-nin", lambda: ref.NIN(), "nin", (4, 3, 32, 32), 32),
    ("xnor-lenet5", lambda: ref.LeNet5(), "lenet", (4, 1, 28, 28), 28),
    ("xnor-alexnet", lambda: ref.AlexNetXNOR(), "alexnet", (2, 3, 227, 227), 227),
    ("bwn-nin", lambda: ref.NIN(binary_activations=False), "nin", (4, 3, 32, 32), 32),
    ("bwn-lenet5", lambda: ref.LeNet5(binary_activations=False), "lenet", (4, 1, 28, 28), 28),
    ("bwn-alexnet", lambda: ref.AlexNetXNOR(binary_activations=False), "alexnet", (2, 3, 227, 227), 227),
]


def reference(model, arch, centered):
    if arch.startswith(("xnor", "bwn")):
        model = copy.deepcopy(model)
        ref.xnor_binarize_(model, centered=centered)
    return model.eval()


def minimum_bytes(model):
    """Binary weights at 1 bit, every other parameter and BN statistic at 4 bytes."""
    binary = sum(
        (m.weights if getattr(m, "flat", False) else m.weight).numel()
        for _, m, kind, _ in ref._classify(model)
        if kind in ("hbconv", "xnorw")
    )
    total = sum(t.numel() for k, t in model.state_dict().items() if not k.endswith("num_batches_tracked"))
    return binary / 8 + (total - binary) * 4


def main():
    print(
        f"{'arch':13} {'grid max|d|/max':>16} {'layer max rel':>14} {'centred rel':>12} {'file MB':>8} "
        f"{'min MB':>7} {'load ms':>8}"
    )
    for arch, make, kind, grid_shape, size in CASES:
        centered = True
        with tempfile.TemporaryDirectory() as tmp:
            # grid: exact arithmetic
            model = make()
            ref.gridify_(model, seed=0)
            x = ref.grid_input(grid_shape, seed=0)
            path = Path(tmp) / "ckpt.pth"
            ref.save_like_training(model, path, kind=kind)
            engine = from_torch(path, arch, centered=False, input_size=size)
            with torch.no_grad():
                want = reference(model, arch, False)(x).numpy()
            grid = np.abs(engine.predict(x.numpy()) - want).max() / np.abs(want).max()
            # realistic random parameters
            model = make()
            ref.randomize_(model, seed=1)
            ref.save_like_training(model, path, kind=kind)
            engine = from_torch(path, arch, centered=centered, input_size=size)
            xr = torch.randn(4, *grid_shape[1:], generator=torch.Generator().manual_seed(1))
            refm = reference(model, arch, centered)
            report = compare(engine, refm, xr.numpy())  # every layer fed PyTorch's own input
            layers = max([row.max_rel for row in report.layers if row.op != "pack_signs"] + [report.max_rel])
            with torch.no_grad():
                want = refm(xr).numpy()
            got = engine.predict(xr.numpy())
            cw, cg = want - want.mean(0), got - got.mean(0)
            centred = np.abs(cg - cw).max() / max(np.abs(cw).max(), 1e-30)
            out = Path(tmp) / "m.xnr"
            engine.save(out)
            start = time.perf_counter()
            xnorinfer.load(out)
            load_ms = (time.perf_counter() - start) * 1e3
            print(
                f"{arch:13} {grid:16.2e} {layers:14.2e} {centred:12.2e} {out.stat().st_size / 1e6:8.3f} "
                f"{minimum_bytes(model) / 1e6:7.3f} {load_ms:8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

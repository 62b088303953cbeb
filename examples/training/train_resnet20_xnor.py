"""Train the XNOR-Net-PyTorch-fork-style ResNet-20 (tests/byom/xnor_resnet.py) on CIFAR-10 on one
CPU thread, the way that fork trains (BinOp around every step), and save the checkpoint in the
fork's own layout, as the test checkpoint tests/data/resnet20_xnor_cifar10.pth.

    nice -n 19 python examples/training/train_resnet20_xnor.py --data ../shared/data --minutes 14

It is a test fixture, not a good model: a few minutes on a subset of the training split. The
accuracy printed at the end is on the 1,000 lossless test images (test_exact_x) of the data's npz.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import data
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from byom.xnor_resnet import BinOp, resnet20_bwn, resnet20_xnor, save_checkpoint  # noqa: E402


def normalize(x_uint8: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(x_uint8).permute(0, 3, 1, 2).float().div(255)
    mean = torch.tensor(data.CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(data.CIFAR10_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random crop of the 4-pixel zero-padded image and random horizontal flip (standard CIFAR)."""
    n = len(x)
    padded = F.pad(x, (4, 4, 4, 4))
    dx, dy = torch.randint(0, 9, (2, n), generator=gen)
    out = torch.stack([padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32] for i in range(n)])
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return out


@torch.no_grad()
def accuracy(model, bin_op, x, y, batch=250) -> float:
    model.eval()
    bin_op.binarization()
    correct = sum(int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum()) for i in range(0, len(x), batch))
    bin_op.restore()
    return 100.0 * correct / len(x)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--out", default="tests/data/resnet20_xnor_cifar10.pth")
    p.add_argument("--flavour", choices=["xnor", "bwn"], default="xnor")
    p.add_argument("--train-images", type=int, default=25000, help="first N of a fixed shuffle of the training split")
    p.add_argument("--minutes", type=float, default=14.0, help="training wall time; the LR follows a cosine over it")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    cifar = data.load("cifar10", args.data)
    order = np.random.default_rng(args.seed).permutation(len(cifar["y_train"]))[: args.train_images]
    x_train, y_train = normalize(cifar["x_train"][order]), torch.from_numpy(cifar["y_train"][order]).long()
    with np.load(Path(args.data) / "cifar10_jpeg.npz", allow_pickle=False) as z:
        x_exact, y_exact = normalize(z["test_exact_x"]), torch.from_numpy(z["test_exact_y"]).long()
    print(f"data: {len(x_train)} training images, {len(x_exact)} lossless test images ({time.time() - t0:.0f} s)")

    model = (resnet20_xnor if args.flavour == "xnor" else resnet20_bwn)(num_classes=10)
    bin_op = BinOp(model)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    optimizer = torch.optim.Adam(
        [{"params": decay, "weight_decay": 1e-5}, {"params": no_decay, "weight_decay": 0}], lr=args.lr
    )
    criterion = nn.CrossEntropyLoss()

    budget = args.minutes * 60
    start, step, images, epoch = time.time(), 0, 0, 0
    done = False
    while not done:
        epoch += 1
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(perm) - args.batch_size + 1, args.batch_size):
            elapsed = time.time() - start
            if elapsed >= budget:
                done = True
                break
            for group in optimizer.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
            idx = perm[i : i + args.batch_size]
            inputs, target = augment(x_train[idx], gen), y_train[idx]
            bin_op.binarization()
            loss = criterion(model(inputs), target)
            optimizer.zero_grad()
            loss.backward()
            bin_op.restore()
            bin_op.updateBinaryGradWeight()
            optimizer.step()
            step, images = step + 1, images + len(idx)
            if step % 50 == 0:
                print(
                    f"epoch {epoch} step {step} loss {loss.item():.3f} lr {optimizer.param_groups[0]['lr']:.2e} "
                    f"{images / (time.time() - start):.0f} img/s",
                    flush=True,
                )
    train_time = time.time() - start
    acc = accuracy(model, bin_op, x_exact, y_exact)
    print(
        f"trained {step} steps, {images} images ({images / len(x_train):.1f} epochs) in {train_time / 60:.1f} min; "
        f"top-1 on the 1,000 lossless test images: {acc:.1f}%"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, args.out, best_acc=acc)
    print(f"saved {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

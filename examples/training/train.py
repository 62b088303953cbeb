"""Train a binary network on CIFAR-10 or Fashion-MNIST with PyTorch (CPU by default), write a
checkpoint in the format of the reference code, and convert it to an .xnr model.

    python examples/training/train.py --dataset cifar10 --model reactnet --epochs 40 \\
        --data ../shared/data --out weights/cifar10_reactnet

Models: `reactnet` (ReActNet-A-style: RSign, RPReLU, binary 3x3 and 1x1 convs, avg-pool/concat
reduction blocks), `xnor` and `bwn` (XNOR-Net-PyTorch's LeNet-5, Fashion-MNIST only)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

import data
from bnn_layers import ReActNetA

WIDTHS = {"cifar10": [16, 32, 64, 64, 128, 128, 256, 256], "fashion-mnist": [16, 32, 64, 64, 128, 128]}


def build(args, num_classes, in_channels):
    if args.model == "reactnet":
        widths = [w * args.width_multiplier for w in WIDTHS[args.dataset]]
        return ReActNetA(widths, num_classes, in_channels, stem_stride=1), "reactnet-a"
    if args.dataset != "fashion-mnist":
        raise SystemExit("the xnor and bwn models are LeNet-5, for Fashion-MNIST")
    from xnor_lenet import LeNet5
    return LeNet5(num_classes, binary_activations=args.model == "xnor"), f"{args.model}-lenet5"


def to_tensor(x_uint8, mean, std):
    x = torch.from_numpy(x_uint8).permute(0, 3, 1, 2).float().div_(255)
    return (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


def augment(x, pad=4):
    """Random crop with zero padding and horizontal flip (per batch, on tensors)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx = np.random.randint(0, 2 * pad + 1, 2)
    x = padded[:, :, dy:dy + h, dx:dx + w]
    flip = torch.rand(n) < 0.5
    x[flip] = x[flip].flip(3)
    return x


def evaluate(model, x, y, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return 100.0 * correct / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["cifar10", "fashion-mnist"], required=True)
    parser.add_argument("--model", choices=["reactnet", "xnor", "bwn"], default="reactnet")
    parser.add_argument("--data", default="../shared/data", help="folder with the .npz files")
    parser.add_argument("--out", required=True, help="output prefix: writes PREFIX.pth.tar, PREFIX.xnr, PREFIX.json")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width-multiplier", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--time-limit", type=float, default=None, help="stop after this many minutes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only this many training images (smoke runs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training forward (~1.6x on CPU)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = data.load(args.dataset, args.data)
    if args.limit:
        pick = np.random.default_rng(args.seed).permutation(len(ds["y_train"]))[:args.limit]
        ds["x_train"], ds["y_train"] = ds["x_train"][pick], ds["y_train"][pick]
    x_train, x_test = to_tensor(ds["x_train"], ds["mean"], ds["std"]), to_tensor(ds["x_test"], ds["mean"], ds["std"])
    y_train, y_test = torch.from_numpy(ds["y_train"].astype(np.int64)), torch.from_numpy(ds["y_test"].astype(np.int64))
    model, arch = build(args, len(ds["classes"]), x_train.shape[1])
    model.to(args.device)
    forward = torch.compile(model) if args.compile else model

    # Adam with no weight decay on the binary latent weights (as ReActNet), cosine schedule.
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step / (args.epochs * steps_per_epoch), 1.0))))
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    start, best, history = time.time(), 0.0, []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train))
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", leave=False)
        for step in bar:
            idx = order[step * args.batch_size:(step + 1) * args.batch_size]
            xb = augment(x_train[idx], pad=4 if args.dataset == "cifar10" else 2)
            loss = criterion(forward(xb.to(args.device)), y_train[idx].to(args.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        acc = evaluate(model, x_test.to(args.device), y_test.to(args.device))
        history.append({"epoch": epoch + 1, "test_top1": acc, "minutes": (time.time() - start) / 60})
        print(f"epoch {epoch + 1}: test top-1 {acc:.2f}% ({(time.time() - start) / 60:.1f} min)", flush=True)
        best = max(best, acc)
        torch.save({"epoch": epoch + 1, "state_dict": model.state_dict(), "best_top1_acc": torch.tensor(acc),
                    "optimizer": optimizer.state_dict()}, f"{out}.pth.tar")
        elapsed = (time.time() - start) / 60
        if args.time_limit and elapsed * (epoch + 2) / (epoch + 1) > args.time_limit:  # the next epoch would not fit
            print("time limit reached", flush=True)
            break

    import xnorinfer

    model_xnr = xnorinfer.convert.from_torch(f"{out}.pth.tar", arch, classes=ds["classes"], mean=ds["mean"],
                                             std=ds["std"], input_size=x_train.shape[2], stem_stride=1,
                                             dataset=args.dataset)
    model_xnr.metadata["training"] = {"command": "python examples/training/train.py " + " ".join(sys.argv[1:]),
                                      "epochs": len(history), "batch_size": args.batch_size, "lr": args.lr,
                                      "optimizer": "Adam, cosine schedule, label smoothing 0.1",
                                      "minutes": round((time.time() - start) / 60, 1), "seed": args.seed}
    model_xnr.save(f"{out}.xnr")
    with open(f"{out}.json", "w") as f:
        json.dump({"arch": arch, "history": history, "pytorch_test_top1": history[-1]["test_top1"]}, f, indent=1)
    print(f"wrote {out}.pth.tar, {out}.xnr ({Path(f'{out}.xnr').stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

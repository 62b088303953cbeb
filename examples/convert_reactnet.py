"""The official ReActNet-A ImageNet checkpoint -> .xnr -> classify a photo.

Download `model_best.pth.tar` of ReActNet-A from the ReActNet repository's release page yourself
(xnorinfer never downloads anything), then:

    pip install "xnorinfer[torch]"
    python examples/convert_reactnet.py model_best.pth.tar photo.jpg [--classes imagenet_classes.txt]

The converter reads the training checkpoint with torch.load(weights_only=True), checks every key,
and writes reactnet_a.xnr (about 8 MB: the binary weights packed 64 to a word). Preprocessing is
ImageNet's: shorter side to 256, centre crop 224, mean/std normalisation."""

import argparse

import xnorinfer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("images", nargs="*")
    parser.add_argument("--classes", help="a text file with the 1000 ImageNet class names, one per line")
    parser.add_argument("--output", default="reactnet_a.xnr")
    args = parser.parse_args()

    classes = None
    if args.classes:
        with open(args.classes, encoding="utf-8") as f:
            classes = [line.strip() for line in f if line.strip()]
    model = xnorinfer.convert.from_torch(args.checkpoint, arch="reactnet-a", classes=classes, dataset="imagenet")
    model.save(args.output)
    print(model.summary().splitlines()[-1])
    print(f"wrote {args.output}")
    for path, top in zip(args.images, xnorinfer.classify(args.images, model=model, top_k=5)):
        print(f"{path}: " + ", ".join(f"{label} ({p:.1%})" for label, p in top))


if __name__ == "__main__":
    main()

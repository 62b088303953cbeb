"""Classify images from Python with the shipped CIFAR-10 model (or any .xnr model).

python examples/classify.py examples/images/*.png
python examples/classify.py --model weights/fashion_mnist_reactnet.xnr shirt.jpg"""

import argparse

import xnorinfer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--model", help="a .xnr file (default: the shipped CIFAR-10 ReActNet)")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()

    model = xnorinfer.load(args.model) if args.model else None  # None: the shipped default
    for path, top in zip(args.images, xnorinfer.classify(args.images, model=model, top_k=args.top_k)):
        print(f"{path}: " + ", ".join(f"{label} ({p:.1%})" for label, p in top))


if __name__ == "__main__":
    main()

"""The `xnorinfer` command line: classify images, convert checkpoints, import PyTorch modules,
describe models, benchmark."""

from __future__ import annotations

import argparse
import enum
import glob
import json
import os
import sys
import time
import traceback
from pathlib import Path

from ._version import __version__


class ExitCode(enum.IntEnum):
    """The `xnorinfer` command's exit codes, for every subcommand."""

    OK = 0          # all good
    BAD_INPUT = 1   # some inputs (images, a model or checkpoint file) were bad: each reported, the rest done
    USAGE = 2       # the command line is wrong (argparse's own code)
    INTERNAL = 3    # a bug in xnorinfer: one line, the traceback with --debug


# Failures of the inputs, not of xnorinfer: a missing or corrupt file, a checkpoint that does not
# match, a model whose logits overflow, torch not installed for convert.
INPUT_ERRORS = (OSError, ValueError, ImportError, FloatingPointError)


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _classes(text: str) -> list[str]:
    """A file with one class name per line, or a comma-separated list."""
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    return [c.strip() for c in text.split(",")]


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}


def expand_inputs(items: list[str]) -> list[str]:
    """Files as given, folders as the images inside them (recursively, sorted), globs expanded."""
    paths = []
    for item in items:
        if os.path.isdir(item):
            found = [os.path.join(root, name) for root, _, names in os.walk(item) for name in names
                     if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES]
            paths.extend(sorted(found))
        elif any(ch in item for ch in "*?[") and not os.path.exists(item):
            paths.extend(sorted(glob.glob(item, recursive=True)) or [item])  # no match: reported as missing
        else:
            paths.append(item)
    return paths


def cmd_classify(args) -> int:
    from tqdm import tqdm

    from . import set_num_threads
    from .classify import classify_batches, resolve_model

    if args.threads:
        set_num_threads(args.threads)
    model = resolve_model(args.model)
    paths = expand_inputs(args.images)
    if not paths:
        print("xnorinfer classify: error: no images found", file=sys.stderr)
        return ExitCode.BAD_INPUT
    failures, records = 0, []
    progress = tqdm(total=len(paths), unit="img", disable=None if len(paths) > 1 else True, file=sys.stderr)
    for path, top, error in classify_batches(paths, model, args.top_k, args.batch_size):
        progress.update()
        if error is not None:
            failures += 1
            records.append({"image": path, "error": str(error)})
            if not args.json:
                progress.write(f"xnorinfer classify: error: {error}", file=sys.stderr)
            continue
        records.append({"image": path, "predictions": [{"label": label, "probability": round(p, 6)}
                                                       for label, p in top]})
        if not args.json:
            progress.write(f"{path}: " + ", ".join(f"{label} {p:.3f}" for label, p in top))
    progress.close()
    if args.json:
        print(json.dumps(records, indent=2))
    return ExitCode.BAD_INPUT if failures else ExitCode.OK


def cmd_convert(args) -> int:
    from . import convert

    start = time.perf_counter()
    model = convert.from_torch(args.checkpoint, args.arch, classes=args.classes, input_size=args.input_size,
                               mean=args.mean, std=args.std, centered=not args.plain_bwn,
                               stem_stride=args.stem_stride, dataset=args.dataset)
    model.save(args.output)
    size = os.path.getsize(args.output)
    print(f"{args.checkpoint} -> {args.output}: {model.metadata['arch']}, {model.metadata['num_classes']} classes, "
          f"input {tuple(model.metadata['input_size'])}, {size / 1e6:.2f} MB, {time.perf_counter() - start:.1f} s")
    return 0


def cmd_import(args) -> int:
    import torch

    from .convert.torch_module import from_module, load_module

    start = time.perf_counter()
    module, source = load_module(args.factory, args.weights, state_dict_key=args.state_dict_key,
                                 prepare=args.prepare)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(*args.input_shape, generator=generator)
    model = from_module(module, example, mean=args.mean, std=args.std, classes=args.classes, name=args.name,
                        source=source)
    model.save(args.output)
    size = os.path.getsize(args.output)
    print(f"{args.factory} -> {args.output}: {model.metadata['num_classes']} outputs, input "
          f"{tuple(model.metadata['input_size'])}, {size / 1e6:.2f} MB, {time.perf_counter() - start:.1f} s")
    return 0


def _shape(text: str) -> list[int]:
    try:
        shape = [int(v) for v in text.split(",")]
    except ValueError:
        shape = []
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W (four positive integers), got {text!r}")
    return shape


def cmd_info(args) -> int:
    from .model import load

    start = time.perf_counter()
    model = load(args.model)
    load_ms = (time.perf_counter() - start) * 1e3
    if args.json:
        print(json.dumps(model.metadata, indent=2))
        return 0
    meta = dict(model.metadata)
    classes = meta.pop("classes", [])
    print(f"{args.model}: {os.path.getsize(args.model) / 1e6:.2f} MB, loaded in {load_ms:.0f} ms")
    for key, value in meta.items():
        print(f"  {key}: {value}")
    shown = ", ".join(classes[:10]) + (f", ... ({len(classes)} in all)" if len(classes) > 10 else "")
    print(f"  classes: {shown}\n")
    print(model.summary())
    return 0


BENCH_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def cmd_bench(bench_args: list[str]) -> int:
    """Runs benchmarks/bench.py: it needs the source checkout (its PyTorch reference models live in
    tests/) and the torch extra."""
    if not BENCH_SCRIPT.is_file():
        raise OSError(f"{BENCH_SCRIPT} not found: `xnorinfer bench` runs from a source checkout "
                      "(pip install -e \".[test]\")")
    import importlib.util

    spec = importlib.util.spec_from_file_location("xnorinfer_bench", BENCH_SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(bench_args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .convert import ARCHS

    parser = argparse.ArgumentParser(prog="xnorinfer", description="Inference engine for binarized neural networks.",
                                     epilog="exit codes: " + ", ".join(f"{c.value} {c.name.lower()}" for c in ExitCode))
    parser.add_argument("--version", action="version", version=f"xnorinfer {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an internal error")
    # --debug after the subcommand too; SUPPRESS keeps a subcommand from resetting the main one's
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", parents=[debug], help="classify images (default model: the shipped CIFAR-10 ReActNet)")
    p.add_argument("images", nargs="+", help="image files, folders or globs")
    p.add_argument("--model", help="a .xnr model (default: the shipped CIFAR-10 model)")
    p.add_argument("--top-k", type=_positive_int, default=5, help="predictions per image (default 5)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--threads", type=_positive_int, help="threads for the kernels (default: OMP_NUM_THREADS or all cores)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="images per forward pass (default 32)")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("convert", parents=[debug], help="convert a PyTorch checkpoint to an .xnr model (needs torch)")
    p.add_argument("checkpoint", help="checkpoint file (training checkpoint dict or state_dict)")
    p.add_argument("-o", "--output", required=True, help="model file to write (.xnr)")
    p.add_argument("--arch", required=True, choices=sorted(ARCHS), help="architecture of the checkpoint")
    p.add_argument("--classes", type=_classes, help="class names: a file with one per line, or a,b,c")
    p.add_argument("--input-size", type=int, help="input side in pixels (default: the architecture's)")
    p.add_argument("--mean", type=_floats, help="per-channel preprocessing mean, e.g. 0.485,0.456,0.406")
    p.add_argument("--std", type=_floats, help="per-channel preprocessing std")
    p.add_argument("--stem-stride", type=int, default=2, choices=[1, 2],
                   help="reactnet-a: stride of the first conv (2 official, 1 for small images)")
    p.add_argument("--dataset", help="name of the training data, recorded in the metadata")
    p.add_argument("--plain-bwn", action="store_true",
                   help="XNOR/BWN archs: binarize as alpha*sign(W), without XNOR-Net's mean-centring")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("import", parents=[debug],
                       help="import any binarized PyTorch module from its model code (needs torch)")
    p.add_argument("factory", help="path/to/model.py:function that returns the nn.Module")
    p.add_argument("--weights", help="checkpoint loaded into the module (torch.load with weights_only=True)")
    p.add_argument("--state-dict-key", help="entry of the checkpoint holding the state_dict "
                                            "(default: 'state_dict' or 'model' if present)")
    p.add_argument("--prepare", help="path/to/file.py:function called with the module before import "
                                     "(e.g. one that binarizes weights in place)")
    p.add_argument("--input-shape", type=_shape, required=True, help="example input N,C,H,W, e.g. 1,3,32,32")
    p.add_argument("-o", "--output", required=True, help="model file to write (.xnr)")
    p.add_argument("--classes", type=_classes, help="class names: a file with one per line, or a,b,c")
    p.add_argument("--mean", type=_floats, help="per-channel preprocessing mean")
    p.add_argument("--std", type=_floats, help="per-channel preprocessing std")
    p.add_argument("--name", help="architecture name recorded in the metadata (default: the class name)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("info", parents=[debug], help="describe a model file: metadata and layers")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("bench", help="speed against PyTorch and ONNX Runtime (source checkout, needs torch); "
                                     "options as benchmarks/bench.py --help", add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER)  # main() hands them to the script as they are
    return parser


def main(argv=None) -> int:
    """Runs one command; returns its ExitCode."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = argv[:2] == ["--debug", "bench"]
    if argv[debug:debug + 1] == ["bench"]:  # every option belongs to the benchmark script, --help included
        command, run = "bench", lambda: cmd_bench(argv[debug + 1:])
    else:
        args = build_parser().parse_args(argv)  # a usage error exits here with ExitCode.USAGE
        command, run, debug = args.command, lambda: args.func(args), args.debug
    try:
        return ExitCode(run())
    except INPUT_ERRORS as exc:
        # Expected failures (missing file, bad model, checkpoint mismatch) get one clear line.
        print(f"xnorinfer {command}: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except Exception as exc:  # noqa: BLE001 -- anything else is a bug: say so in one line
        if debug:
            traceback.print_exc()
        print(f"xnorinfer {command}: internal error: {type(exc).__name__}: {exc}"
              + ("" if debug else " (run with --debug for the traceback)"), file=sys.stderr)
        return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())

"""The `xnorinfer` command line: classify images, convert checkpoints, import PyTorch modules,
describe models, benchmark."""

from __future__ import annotations

import argparse
import contextlib
import enum
import glob
import json
import os
import sys
import time
import traceback

from ._version import __version__


class ExitCode(enum.IntEnum):
    """The `xnorinfer` command's exit codes, for every subcommand."""

    OK = 0  # all good
    BAD_INPUT = 1  # some inputs (images, a model or checkpoint file) were bad: each reported, the rest done
    USAGE = 2  # the command line is wrong (argparse's own code)
    INTERNAL = 3  # a bug in xnorinfer: one line, the traceback with --debug


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
            found = [
                os.path.join(root, name)
                for root, _, names in os.walk(item)
                for name in names
                if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
            ]
            paths.extend(sorted(found))
        elif any(ch in item for ch in "*?[") and not os.path.exists(item):
            paths.extend(sorted(glob.glob(item, recursive=True)) or [item])  # no match: reported as missing
        else:
            paths.append(item)
    return paths


@contextlib.contextmanager
def results_stream(args):
    """Where a subcommand's results go: the file named by --output, else stdout."""
    if getattr(args, "results", None):
        with open(args.results, "w", encoding="utf-8") as f:
            yield f
    else:
        yield sys.stdout


def emit_json(args, value) -> None:
    with results_stream(args) as out:
        print(json.dumps(value, indent=2), file=out)


def classify_record(path, top, error) -> dict:
    """One image's entry in classify's --json and --jsonl output (and examples/dask_classify.py's)."""
    if error is not None:
        return {"image": path, "error": str(error)}
    return {"image": path, "predictions": [{"label": label, "probability": round(p, 6)} for label, p in top]}


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
    show_bar = None if len(paths) > 1 and not args.quiet else True  # None: tqdm shows it on a terminal only
    with results_stream(args) as out:
        progress = tqdm(total=len(paths), unit="img", disable=show_bar, file=sys.stderr)
        # On the terminal the bar's own write keeps result lines from tearing it; a file gets plain lines.
        write = progress.write if out is sys.stdout else (lambda text, file: print(text, file=file))
        for path, top, error in classify_batches(paths, model, args.top_k, args.batch_size):
            progress.update()
            failures += error is not None
            record = classify_record(path, top, error)
            if args.jsonl:  # one line per image as soon as it is done, for long runs and pipes
                print(json.dumps(record), file=out, flush=True)
            elif args.json:
                records.append(record)
            elif error is not None:
                write(f"xnorinfer classify: error: {error}", file=sys.stderr)
            else:
                write(f"{path}: " + ", ".join(f"{label} {p:.3f}" for label, p in top), file=out)
        progress.close()
        if args.json:
            print(json.dumps(records, indent=2), file=out)
    return ExitCode.BAD_INPUT if failures else ExitCode.OK


def report_written(args, summary: dict, line: str) -> None:
    """convert and import: the written model's summary as JSON, or as one line unless --quiet."""
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        print(line)


def cmd_convert(args) -> int:
    from . import convert

    start = time.perf_counter()
    model = convert.from_torch(
        args.checkpoint,
        args.arch,
        classes=args.classes,
        input_size=args.input_size,
        mean=args.mean,
        std=args.std,
        centered=not args.plain_bwn,
        stem_stride=args.stem_stride,
        dataset=args.dataset,
    )
    model.save(args.output)
    summary = {
        "source": args.checkpoint,
        "output": args.output,
        "arch": model.metadata["arch"],
        "num_classes": model.metadata["num_classes"],
        "input_size": list(model.metadata["input_size"]),
        "bytes": os.path.getsize(args.output),
        "seconds": round(time.perf_counter() - start, 3),
    }
    report_written(
        args,
        summary,
        f"{args.checkpoint} -> {args.output}: {summary['arch']}, {summary['num_classes']} "
        f"classes, input {tuple(summary['input_size'])}, {summary['bytes'] / 1e6:.2f} MB, "
        f"{summary['seconds']:.1f} s",
    )
    return 0


def cmd_import(args) -> int:
    from .convert.torch_module import _torch, from_module, load_module

    torch = _torch()  # without torch: the error says what to install, not "No module named 'torch'"

    start = time.perf_counter()
    module, source = load_module(args.factory, args.weights, state_dict_key=args.state_dict_key, prepare=args.prepare)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(*args.input_shape, generator=generator)
    model = from_module(
        module, example, mean=args.mean, std=args.std, classes=args.classes, name=args.name, source=source
    )
    model.save(args.output)
    summary = {
        "source": args.factory,
        "output": args.output,
        "num_classes": model.metadata["num_classes"],
        "input_size": list(model.metadata["input_size"]),
        "bytes": os.path.getsize(args.output),
        "seconds": round(time.perf_counter() - start, 3),
    }
    report_written(
        args,
        summary,
        f"{args.factory} -> {args.output}: {summary['num_classes']} outputs, input "
        f"{tuple(summary['input_size'])}, {summary['bytes'] / 1e6:.2f} MB, "
        f"{summary['seconds']:.1f} s",
    )
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
    from . import shipped
    from .model import load

    path = shipped.resolve(args.model)
    start = time.perf_counter()
    model = load(path)
    load_ms = (time.perf_counter() - start) * 1e3
    if args.json:
        emit_json(args, model.metadata)
        return 0
    meta = dict(model.metadata)
    classes = meta.pop("classes", [])
    with results_stream(args) as out:
        print(f"{path}: {os.path.getsize(path) / 1e6:.2f} MB, loaded in {load_ms:.0f} ms", file=out)
        for key, value in meta.items():
            print(f"  {key}: {value}", file=out)
        shown = ", ".join(classes[:10]) + (f", ... ({len(classes)} in all)" if len(classes) > 10 else "")
        print(f"  classes: {shown}\n", file=out)
        print(model.summary(), file=out)
    return 0


def cmd_models(args) -> int:
    from . import shipped

    rows = shipped.describe()
    if args.json:
        emit_json(args, rows)
        return 0
    with results_stream(args) as out:
        print(f"{'name':28s} {'data set':14s} {'arch':12s} {'top-1':>7s} {'size':>8s}  path", file=out)
        for r in rows:
            top1 = f"{r['top1_engine']:.2f}%" if r["top1_engine"] is not None else "?"
            name = r["name"] + (" *" if r["default"] else "")
            print(
                f"{name:28s} {r['dataset'] or '?':14s} {r['arch'] or '?':12s} {top1:>7s} "
                f"{r['bytes'] / 1e6:6.2f} MB  {r['path']}",
                file=out,
            )
        if not args.quiet:
            print(
                "* the default model. top-1: the engine's accuracy on the full test split; "
                "model cards beside the files (.md)",
                file=out,
            )
    return 0


def cmd_bench(args) -> int:
    from . import bench

    with results_stream(args) as out:
        reports = bench.run(args, out)
        if args.json:
            print(json.dumps(reports if len(reports) > 1 else reports[0], indent=1), file=out)
    return 0


def version_text() -> str:
    from ._runtime import single_threaded_warning

    warning = single_threaded_warning()
    return f"xnorinfer {__version__}" + (f"\n{warning}" if warning else "")


EXIT_CODES = "exit codes:\n" + "\n".join(
    f"  {c.value}  {text}"
    for c, text in zip(
        ExitCode,
        (
            "ok",
            "some inputs were bad (each reported, the rest done)",
            "usage error",
            "internal error (a bug; --debug for the traceback)",
        ),
    )
)


def build_parser() -> argparse.ArgumentParser:
    from . import bench
    from .convert import ARCHS

    # Raw: keeps the exit-code table and --version's warning line as written.
    parser = argparse.ArgumentParser(
        prog="xnorinfer",
        description="Inference engine for binarized neural networks.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=version_text(),
        help="print the version (and a warning if the build is single-threaded) and exit",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of an internal error")
    # Options every subcommand takes, after its name. --debug there too: SUPPRESS keeps a
    # subcommand from resetting the main parser's value.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="print the traceback of an internal error"
    )
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar or status lines; results and errors are still printed",
    )
    results = argparse.ArgumentParser(add_help=False)
    results.add_argument(
        "--output",
        dest="results",
        metavar="FILE",
        help="write the results (text, or JSON with --json) to FILE instead of stdout",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help, parents=(), **kwargs):
        return sub.add_parser(
            name,
            parents=[common, *parents],
            help=help,
            description=help,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )

    p = command("classify", "classify images (default model: the shipped CIFAR-10 ReActNet)", [results])
    p.add_argument("images", nargs="+", help="image files, folders (searched recursively) or globs")
    p.add_argument(
        "--model", help="a .xnr file, or a shipped model's name (see `xnorinfer models`; default cifar10_reactnet)"
    )
    p.add_argument("--top-k", type=_positive_int, default=5, help="predictions per image (default 5)")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print the results as one JSON array at the end")
    form.add_argument(
        "--jsonl", action="store_true", help="print one JSON object per image as soon as it is classified (NDJSON)"
    )
    p.add_argument(
        "--threads", type=_positive_int, help="threads for the kernels (default: OMP_NUM_THREADS or all cores)"
    )
    p.add_argument("--batch-size", type=_positive_int, default=32, help="images per forward pass (default 32)")
    p.set_defaults(func=cmd_classify)

    p = command("convert", "convert a PyTorch checkpoint to an .xnr model (needs torch)")
    p.add_argument("checkpoint", help="checkpoint file (training checkpoint dict or state_dict)")
    p.add_argument("-o", "--output", required=True, help="model file to write (.xnr)")
    p.add_argument("--arch", required=True, choices=sorted(ARCHS), help="architecture of the checkpoint")
    p.add_argument("--classes", type=_classes, help="class names: a file with one per line, or a,b,c")
    p.add_argument("--input-size", type=int, help="input side in pixels (default: the architecture's)")
    p.add_argument("--mean", type=_floats, help="per-channel preprocessing mean, e.g. 0.485,0.456,0.406")
    p.add_argument("--std", type=_floats, help="per-channel preprocessing std")
    p.add_argument(
        "--stem-stride",
        type=int,
        default=2,
        choices=[1, 2],
        help="reactnet-a: stride of the first conv (2 official, 1 for small images)",
    )
    p.add_argument("--dataset", help="name of the training data, recorded in the metadata")
    p.add_argument(
        "--plain-bwn",
        action="store_true",
        help="XNOR/BWN archs: binarize as alpha*sign(W), without XNOR-Net's mean-centring",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary of the written model")
    p.set_defaults(func=cmd_convert)

    p = command("import", "import any binarized PyTorch module from its model code (needs torch)")
    p.add_argument("factory", help="path/to/model.py:function that returns the nn.Module")
    p.add_argument("--weights", help="checkpoint loaded into the module (torch.load with weights_only=True)")
    p.add_argument(
        "--state-dict-key",
        help="entry of the checkpoint holding the state_dict (default: 'state_dict' or 'model' if present)",
    )
    p.add_argument(
        "--prepare",
        help="path/to/file.py:function called with the module before import (e.g. one that binarizes weights in place)",
    )
    p.add_argument("--input-shape", type=_shape, required=True, help="example input N,C,H,W, e.g. 1,3,32,32")
    p.add_argument("-o", "--output", required=True, help="model file to write (.xnr)")
    p.add_argument("--classes", type=_classes, help="class names: a file with one per line, or a,b,c")
    p.add_argument("--mean", type=_floats, help="per-channel preprocessing mean")
    p.add_argument("--std", type=_floats, help="per-channel preprocessing std")
    p.add_argument("--name", help="architecture name recorded in the metadata (default: the class name)")
    p.add_argument("--json", action="store_true", help="print a JSON summary of the written model")
    p.set_defaults(func=cmd_import)

    p = command("info", "describe a model: metadata and layers", [results])
    p.add_argument("model", help="a .xnr file, or a shipped model's name")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=cmd_info)

    p = command("models", "list the shipped models: name, data set, accuracy, size, path", [results])
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_models)

    p = command(
        "bench",
        "speed against PyTorch and ONNX Runtime on random-parameter models "
        "(needs the bench extra: torch; onnxruntime and matplotlib optional)",
        [results],
    )
    bench.add_arguments(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the report")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv=None) -> int:
    """Runs one command; returns its ExitCode."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)  # a usage error exits here with ExitCode.USAGE
    command, run, debug = args.command, lambda: args.func(args), args.debug
    try:
        return ExitCode(run())
    except BrokenPipeError:
        # The reader has gone (`xnorinfer classify photos/ | head`): stop quietly, as Unix tools do.
        # stdout goes to /dev/null so that Python's own flush at exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except INPUT_ERRORS as exc:
        # Expected failures (missing file, bad model, checkpoint mismatch) get one clear line.
        print(f"xnorinfer {command}: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except Exception as exc:  # noqa: BLE001 -- anything else is a bug: say so in one line
        if debug:
            traceback.print_exc()
        print(
            f"xnorinfer {command}: internal error: {type(exc).__name__}: {exc}"
            + ("" if debug else " (run with --debug for the traceback)"),
            file=sys.stderr,
        )
        return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())

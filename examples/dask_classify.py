"""Classify a folder (or globs, or a list of paths) on a Dask cluster: a LocalCluster of worker
processes by default, or any running scheduler for a real cluster.

    python examples/dask_classify.py photos/ --workers 4 --json > labels.json
    python examples/dask_classify.py "shards/*/*.jpg" --scheduler tcp://10.0.0.5:8786 --json

The model travels once to every worker (a Model pickles as its file bytes; `scatter(...,
broadcast=True)`), and each task classifies a chunk of paths in batches, so a worker loads the
model once and reads the images itself: the workers need the images at the same paths (a shared
file system on a real cluster). The JSON is exactly what `xnorinfer classify --json` prints.
Needs `pip install "xnorinfer[dask]"`. Workers run their kernels with --threads-per-worker
OpenMP threads (the worker's own Dask thread count stays 1: one chunk at a time)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys

import xnorinfer
from xnorinfer.classify import classify_batches
from xnorinfer.cli import ExitCode, classify_record, expand_inputs


def classify_chunk(paths, model, top_k, batch_size, threads):
    """Runs on a worker: the chunk's records in order."""
    xnorinfer.set_num_threads(threads)
    return [classify_record(path, top, error) for path, top, error in classify_batches(paths, model, top_k, batch_size)]


def classify_on_cluster(paths, client, model, top_k=5, batch_size=32, chunk=256, threads=1):
    """Records for `paths`, in their order, computed by the client's workers."""
    # One copy per worker, not one per task. hash=False: a content-hashed key is shared with an
    # earlier call's scatter, whose release would then delete this call's model from the workers.
    shared = client.scatter(model, broadcast=True, hash=False)
    chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    # partial, not keywords to map: client.map has a batch_size argument of its own
    task = functools.partial(classify_chunk, top_k=top_k, batch_size=batch_size, threads=threads)
    futures = client.map(task, chunks, model=shared, pure=False)
    return [record for part in client.gather(futures) for record in part]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", help="image files, folders (searched recursively) or globs")
    parser.add_argument("--model", help="a .xnr file or a shipped model's name (default cifar10_reactnet)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--threads-per-worker", type=int, default=1, help="kernel threads per worker (default 1)")
    parser.add_argument(
        "--scheduler", help="address of a running scheduler (tcp://host:8786) instead of a LocalCluster"
    )
    parser.add_argument("--top-k", type=int, default=5, help="predictions per image (default 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    parser.add_argument("--chunk", type=int, default=256, help="images per task (default 256)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON, as xnorinfer classify --json")
    args = parser.parse_args(argv)

    from dask.distributed import Client, LocalCluster

    model = xnorinfer.load(args.model or "cifar10_reactnet")
    paths = expand_inputs(args.images)
    with contextlib.ExitStack() as stack:  # closes the client before its cluster: no lost-task warnings
        if args.scheduler:
            client = stack.enter_context(Client(args.scheduler))
        else:
            # worker processes (OpenMP inside each), on loopback only and without the web dashboard
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=args.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
        records = classify_on_cluster(
            paths, client, model, args.top_k, args.batch_size, args.chunk, args.threads_per_worker
        )
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for r in records:
            if "error" in r:
                print(f"dask_classify: error: {r['error']}", file=sys.stderr)
            else:
                print(f"{r['image']}: " + ", ".join(f"{p['label']} {p['probability']:.3f}" for p in r["predictions"]))
    return ExitCode.BAD_INPUT if any("error" in r for r in records) else ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of examples/dask_classify.py against workers (docs/performance.md's scaling table).

    python benchmarks/dask_scaling.py [--images 1000] [--workers 1,2] [--runs 3] [--json OUT]

Writes N CIFAR-10 test images (the lossless ones in ../shared/data/cifar10_jpeg.npz; random 32x32
pictures without it) as PNG files to a temporary folder, then times, with the shipped
cifar10_reactnet and top 5:
  - the in-process baseline: xnorinfer.classify.classify_batches at 1 and 2 OpenMP threads;
  - classify_on_cluster on a running LocalCluster of W worker processes x 1 thread, for each W
    (steady state: the cluster is started and warmed up with one call before timing);
  - the whole `dask_classify.py --workers W --json` command, cluster start included.
Each figure is images/s, best and median of --runs. Needs the dask extra."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import xnorinfer  # noqa: E402
from xnorinfer.classify import classify_batches  # noqa: E402


def write_images(folder: Path, n: int) -> tuple[list[str], str]:
    data = ROOT.parent / "shared" / "data" / "cifar10_jpeg.npz"
    if data.is_file():
        with np.load(data) as d:
            pixels, source = d["test_exact_x"][:n], "CIFAR-10 test images (lossless)"
    else:
        pixels, source = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), np.uint8), "random pixels"
    if len(pixels) < n:
        raise SystemExit(f"only {len(pixels)} images available")
    paths = []
    for i, p in enumerate(pixels):
        path = folder / f"{i:05d}.png"
        Image.fromarray(p).save(path)
        paths.append(str(path))
    return paths, source


def rate(n, seconds):
    return {"best": round(n / min(seconds), 1), "median": round(n / statistics.median(seconds), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000, help="number of images (default 1000)")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (default 3)")
    parser.add_argument("--chunk", type=int, default=125, help="images per Dask task (default 125)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    args = parser.parse_args(argv)

    from dask.distributed import Client, LocalCluster
    from dask_classify import classify_on_cluster

    model = xnorinfer.load("cifar10_reactnet")
    result = {
        "machine": os.uname().machine,
        "cpus": os.cpu_count(),
        "images": args.images,
        "isa": xnorinfer.get_isa(),
        "model": "cifar10_reactnet",
        "top_k": 5,
        "chunk": args.chunk,
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        paths, result["source"] = write_images(Path(tmp), args.images)

        for threads in (1, 2):
            xnorinfer.set_num_threads(threads)
            list(classify_batches(paths[:64], model, 5, 32))  # warm-up
            seconds = []
            for _ in range(args.runs):
                start = time.perf_counter()
                records = list(classify_batches(paths, model, 5, 32))
                seconds.append(time.perf_counter() - start)
            local = [top[0][0] for _, top, _ in records]
            result["runs"][f"in-process, {threads} thread(s)"] = rate(len(paths), seconds)
        xnorinfer.set_num_threads(1)

        for workers in (int(w) for w in args.workers.split(",")):
            with (
                LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
                ) as cluster,
                Client(cluster) as client,
            ):
                classify_on_cluster(paths[:64], client, model, chunk=32)  # warm-up: workers import xnorinfer
                seconds = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    records = classify_on_cluster(paths, client, model, chunk=args.chunk)
                    seconds.append(time.perf_counter() - start)
            assert [r["predictions"][0]["label"] for r in records] == local, "Dask labels differ from the local run"
            result["runs"][f"Dask, {workers} worker(s) x 1 thread, steady state"] = rate(len(paths), seconds)

            seconds = []
            for _ in range(args.runs):
                start = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        str(ROOT / "examples" / "dask_classify.py"),
                        tmp,
                        "--workers",
                        str(workers),
                        "--chunk",
                        str(args.chunk),
                        "--json",
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                seconds.append(time.perf_counter() - start)
            result["runs"][f"dask_classify.py --workers {workers}, whole command"] = rate(len(paths), seconds)

    for name, r in result["runs"].items():
        print(f"{name:55s} {r['best']:8.1f} img/s (median {r['median']:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The speed tables of docs/performance.md and README.md, generated from benchmarks/results/*.json.

    python benchmarks/tables.py            # rewrite the tables in place
    python benchmarks/tables.py --check    # exit 1 if a file's tables differ from the JSON's

Each table sits between two markers, `<!-- tables:NAME:begin -->` and `<!-- tables:NAME:end -->`;
only the lines between them are rewritten, so the prose around them is the writers' own.
tests/test_tables.py checks that the committed files hold exactly what the committed JSON gives.

Sources: bench.json and bench_xeon.json (`xnorinfer bench --json`), bconv_layers.json (`benchmarks/bconv_layers.py
--json`), avx2_peak.json (`benchmarks/avx2_peak.py --json`), arm_mca.json (`benchmarks/arm_mca.py
--save`), dask_scaling.json (`benchmarks/dask_scaling.py --json`). Tables from runs that wrote no
JSON are hand-written and say so next to them."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

MODEL_NAMES = {"reactnet-a": "ReActNet-A", "reactnet-18": "ReActNet-18", "nin": "NIN"}
ARM_LOOPS = {  # arm_mca.json's keys: what a step is, and its unit
    "bgemm": "binary GEMM, bit-MACs/cycle",
    "pack": "sign packer with bias, floats/cycle",
    "conv": "float conv (stem), 6 x 16 block, FMA lanes/cycle (peak 8)",
    "dense": "dense, 4 outputs x 16 inputs, FMA lanes/cycle (load-bound)",
    "pool": "max pooling, 16 channels per tap, floats/cycle",
}


def load(name: str):
    return json.loads((RESULTS / name).read_text())


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _model(m: dict) -> str:
    return f"{MODEL_NAMES.get(m['model'], m['model'])}, {m['input']}x{m['input']}"


def _bench_rows(reports, keep, best):
    rows = []
    for report in reports:
        for m in report["models"]:
            if not keep(report, m):
                continue
            x = m["xnorinfer"]
            engine = f"{x['latency_ms']:.2f} ms" + (f" ({x['latency_best_ms']:.2f})" if best else "")
            others = []
            for label in ("pytorch", "onnxruntime"):
                r = m.get(label)  # "not installed" when it was not
                ms = r["latency_ms"] if isinstance(r, dict) else None
                others.append(f"{ms:.1f} ms ({ms / x['latency_ms']:.1f}x)" if ms else "-")
            rows.append([_model(m), str(report["threads"]), engine, *others, f"{x['throughput_ips']:.0f}"])
    return rows


def bench() -> str:
    """Whole models at batch 1, every thread count of the run (docs/performance.md)."""
    header = ["model", "threads", "xnorinfer median (best)", "PyTorch", "ONNX Runtime", "img/s at batch 16"]
    return table(header, _bench_rows(load("bench.json"), lambda r, m: True, best=True))


def _binary_share(m: dict, peak: float) -> str:
    """The share of the ISA's popcount peak the model's binary layers reach together: their bit-MACs
    over their time (a block counts as its convolutions together)."""
    rows = [row for row in m["layers"] if "gbitmacs" in row]
    macs = sum(row["gbitmacs"] * row["ms"] for row in rows)  # Gbit-MAC/s x ms = 1e6 bit-MACs
    ms = sum(row["ms"] for row in rows)
    return f"{100 * macs / ms / peak:.0f}%" if ms else "-"


def bench_isas(name: str) -> str:
    """One CPU's run of every ISA (`xnorinfer bench --isa ... --json`): per ISA, model and thread
    count the engine against PyTorch and ONNX Runtime, and its binary layers' share of that ISA's
    popcount peak measured in the same run (one core's, times the threads)."""
    header = ["ISA", "model", "threads", "xnorinfer median", "PyTorch", "ONNX Runtime", "binary layers, % of peak"]
    reports = load(name)
    # The peak is one core's times the threads: a 2-thread run's own single-layer peak is a few
    # milliseconds on two shared cores, too noisy to divide by.
    one_core = {r["isa"]: r["peak_gbitmacs"] for r in reports if r["threads"] == 1}
    rows = []
    for report in reports:
        peak = one_core.get(report["isa"], report["peak_gbitmacs"] / report["threads"]) * report["threads"]
        for m, row in zip(report["models"], _bench_rows([report], lambda r, m: True, best=False)):
            rows.append([report["isa"], *row[:-1], f"{_binary_share(m, peak)} of {peak:.0f}"])
    return table(header, rows)


def readme_forced_isas() -> str:
    """The README's AVX2 and AVX-512BW rows: each path forced on one CPU, every model at 1 thread."""
    header = ["path", "model", "xnorinfer median", "PyTorch fp32", "ONNX Runtime fp32"]
    rows = []
    for report in load("bench_xeon.json"):
        if report["isa"] in ("avx2", "avx512bw") and report["threads"] == 1:
            rows += [[report["isa"], *row[:1], *row[2:5]] for row in _bench_rows([report], lambda r, m: True, False)]
    return table(header, rows)


def readme_avx512() -> str:
    """The README's rows: every model at 1 thread, the first model at the other thread counts."""
    reports = load("bench.json")
    first = reports[0]["models"][0]["model"]
    header = ["model", "threads", "xnorinfer median", "PyTorch fp32", "ONNX Runtime fp32", "img/s at batch 16"]
    rows = _bench_rows(reports, lambda r, m: r["threads"] == 1, best=False)
    rows += _bench_rows(reports, lambda r, m: r["threads"] != 1 and m["model"] == first, best=False)
    return table(header, rows)


def _layer(row: dict) -> str:
    k, side = row["kernel"], row["side"]
    text = f"{k}x{k}, {side}x{side}x{row['cin']} → {row['cout']}"
    return text + (f", stride {row['stride']}" if row["stride"] != 1 else "")


def bconv_layers() -> str:
    """Single binary convolutions, Gbit-MAC/s per ISA (docs/performance.md)."""
    report = load("bconv_layers.json")
    peak = report.get("avx2_peak", {}).get("gbitmacs")  # one core's: a run on more threads has threads x
    rows = []
    for row in report["layers"]:
        cells = [f"{row['results'][isa]['gbitmacs']:.0f}" for isa in report["isas"]]
        if peak:
            cells.append(f"{100 * row['results']['avx2']['gbitmacs'] / (peak * report['threads']):.0f}%")
        rows.append([_layer(row), *cells])
    share = [f"avx2 share of its peak ({peak:.0f})"] if peak else []
    return table(["layer", *report["isas"], *share], rows)


def avx2_peak() -> str:
    """The AVX2 binary-GEMM micro-kernels tried, and the engine's kernel on L1-resident data."""
    result = load("avx2_peak.json")
    peak = result["peak"][1]
    rows = [[f"`{name}`", result["what"][name], f"{rate:.0f}"] for name, rate in result["micro"].items()]
    rows += [
        [f"engine kernel, {label}", "bgemm_3x8_avx2 as the engine calls it", f"{rate:.0f} ({100 * rate / peak:.0f}%)"]
        for label, rate in result["engine"].items()
    ]
    return table(["kernel", "what", "Gbit-MAC/s"], rows)


def arm_mca() -> str:
    """Modelled throughput of the NEON loops per CPU model (llvm-mca)."""
    results = load("arm_mca.json")
    cpus = list(results)
    rows = [[label] + [f"{results[cpu][loop]:.1f}" for cpu in cpus] for loop, label in ARM_LOOPS.items()]
    return table(["loop", *cpus], rows)


def _dask_label(key: str) -> str:
    for pattern, label in (
        (r"in-process, (\d+) thread\(s\)", "in one process, {} OpenMP thread(s)"),
        (r"Dask, (\d+) worker\(s\) x 1 thread, steady state", "Dask, {} worker(s) x 1 thread"),
        (r"dask_classify\.py --workers (\d+), whole command", "`dask_classify.py --workers {}`, whole command"),
    ):
        match = re.fullmatch(pattern, key)
        if match:
            return label.format(match[1])
    return key


def dask_scaling() -> str:
    """Images/s of the Dask example and of one process (docs/performance.md)."""
    runs = load("dask_scaling.json")["runs"]
    one = next((r["best"] for key, r in runs.items() if key.startswith("Dask, 1 worker")), None)
    rows = []
    for key, r in runs.items():
        cell = f"{r['best']:.0f} ({r['median']:.0f})"
        if key.startswith("Dask, ") and not key.startswith("Dask, 1 worker") and one:
            cell += f": {r['best'] / one:.2f}x one worker"
        rows.append([_dask_label(key), cell])
    return table(["run", "images/s: best (median)"], rows)


TABLES = {
    "docs/performance.md": {
        "bench": bench,
        "bench_xeon": lambda: bench_isas("bench_xeon.json"),
        "bconv_layers": bconv_layers,
        "avx2_peak": avx2_peak,
        "arm_mca": arm_mca,
        "dask_scaling": dask_scaling,
    },
    "README.md": {
        "readme-avx512": readme_avx512,
        "readme-avx2": readme_forced_isas,
        "readme-arm": arm_mca,
    },
}


def render(text: str, tables: dict) -> str:
    """text with each named table's markers enclosing what its function generates now."""
    for name, make in tables.items():
        begin, end = f"<!-- tables:{name}:begin -->", f"<!-- tables:{name}:end -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if len(pattern.findall(text)) != 1:
            raise ValueError(f"need exactly one {begin} ... {end}")
        block = f"{begin}\n\n{make()}\n\n{end}"
        text = pattern.sub(lambda _: block, text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, tables in TABLES.items():
        path = ROOT / name
        text = path.read_text()
        new = render(text, tables)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python benchmarks/tables.py)", file=sys.stderr)
        return 1
    for name in stale:
        print(f"rewrote the tables in {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

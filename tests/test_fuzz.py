"""The seeded mutation fuzzer over the shipped models (tests/helpers/fuzz_models.py): every case loads
cleanly or fails with ModelFormatError, and a model that loads predicts finite logits or raises
FloatingPointError. No crash, no hang, peak RSS under RSS_CAP_MB.

XNORINFER_FUZZ_CASES (default 200 per model, 800 in all) and XNORINFER_FUZZ_SEED run it longer
or elsewhere; a failure names the seed, the case and its mutation."""

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from helpers import fuzz_models

PER_MODEL = int(os.environ.get("XNORINFER_FUZZ_CASES", "200"))
SEED = int(os.environ.get("XNORINFER_FUZZ_SEED", "14"))
RSS_CAP_MB = 300  # measured with ru_maxrss: an address-space limit would break OpenMP's threads
CASES_PER_WORKER = 200  # one Python start and import for this many cases
TESTS = Path(fuzz_models.__file__).resolve().parents[1]  # the worker runs as helpers.fuzz_models from here


def run_workers(paths: list[Path]) -> dict[int, dict]:
    """{case index: {"outcome", "rss_mb"}}, restarting a worker after a case that ended it."""
    results, todo = {}, list(range(len(paths)))
    while todo:
        batch, todo = todo[:CASES_PER_WORKER], todo[CASES_PER_WORKER:]
        listing = paths[0].parent / f"batch-{batch[0]}.txt"
        listing.write_text("".join(f"{i} {paths[i]}\n" for i in batch))
        proc = subprocess.run(
            [sys.executable, "-c", fuzz_models.LAUNCH, sys.executable, "-m", "helpers.fuzz_models", str(listing)],
            cwd=TESTS,
            capture_output=True,
            text=True,
            timeout=fuzz_models.CASE_TIMEOUT_S * len(batch) + 60,
        )
        started = None
        for line in proc.stdout.splitlines():
            record = json.loads(line)
            if "baseline_rss_mb" in record:  # what the worker starts with: must leave room to measure
                assert record["baseline_rss_mb"] < RSS_CAP_MB / 3, record
            elif "start" in record:
                started = record["start"]
            else:
                results[record["case"]] = record
        if started is not None and started not in results:  # the worker died in this case
            why = "HANG (watchdog)" if "Timeout" in proc.stderr else f"CRASH (exit code {proc.returncode})"
            results[started] = {"outcome": f"{why}: {proc.stderr[-500:]}", "rss_mb": 0}
            todo = [i for i in batch if i not in results] + todo
        elif proc.returncode != 0:
            raise AssertionError(f"fuzz worker failed outside a case: {proc.stderr[-2000:]}")
    return results


def test_fuzzed_model_files_fail_cleanly_in_bounded_memory(tmp_path):
    began = time.perf_counter()
    labels, paths = [], []  # the files go to disk as they are made: this process stays small
    for i, (label, data) in enumerate(fuzz_models.cases(SEED, PER_MODEL)):
        labels.append(label)
        paths.append(tmp_path / f"case{i}.xnr")
        paths[-1].write_bytes(data)
    results = run_workers(paths)
    elapsed = time.perf_counter() - began

    assert len(results) == len(labels) >= 4 * PER_MODEL
    failures = [
        f"case {i} ({labels[i]}): {r['outcome']}"
        for i, r in sorted(results.items())
        if r["outcome"] not in ("refused", "ok", "overflow")
    ]
    assert not failures, f"seed {SEED}:\n" + "\n".join(failures)
    heaviest = max(results, key=lambda i: results[i]["rss_mb"])
    peak = results[heaviest]["rss_mb"]
    assert peak < RSS_CAP_MB, f"case {heaviest} ({labels[heaviest]}) peaked at {peak} MB"
    outcomes = Counter(r["outcome"] for r in results.values())
    # The mutations reach every layer: most are refused, and a fair share load and run.
    assert outcomes["refused"] > len(labels) // 3 and outcomes["ok"] + outcomes["overflow"] > len(labels) // 10, (
        outcomes
    )
    print(f"\nfuzz: {len(labels)} cases, seed {SEED}, {dict(outcomes)}, peak RSS {peak:.0f} MB, {elapsed:.1f} s")

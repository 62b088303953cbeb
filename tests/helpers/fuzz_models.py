"""A seeded mutation fuzzer over the shipped models (tests/test_fuzz.py runs it).

`cases(seed, per_model)` makes mutated .xnr files: bit flips, truncation, zip structure (flags,
methods, sizes, CRCs, duplicate, missing and extra entries, directory bytes), zip bombs, every
manifest and metadata field, the array table and the arrays' contents.

`python -m helpers.fuzz_models CASE_LIST` (from tests/) is the worker: it loads each listed file, and when that
succeeds runs predict, classify and summary on it, and prints one JSON line per case with its
outcome and the process's peak RSS so far. Many cases share one worker process (a Python start
and `import xnorinfer` cost more than most cases); a watchdog ends the process if a case hangs,
and the driver restarts a worker after the case that ended it."""

from __future__ import annotations

import copy
import json
import random
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

from helpers import hostile

ROOT = Path(__file__).resolve().parents[2]
MODELS = sorted((ROOT / "weights").glob("*.xnr"))
CASE_TIMEOUT_S = 30  # one case; the slowest legitimate one (load, predict, classify) takes ~0.1 s

# How often each kind of mutation is drawn.
KINDS = {"flip": 3, "truncate": 1, "zip": 3, "bomb": 1, "manifest": 7, "array_table": 2, "array_data": 3}

HOSTILE_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    3,
    7,
    64,
    2**31,
    2**63,
    10**19,
    -(10**19),
    1e308,
    -1e308,
    1e-320,
    0.5,
    float("inf"),
    float("nan"),
    "",
    "x" * 2000,
    "zero",
    "one",
    "minus_one",
    "hwc",
    "chw",
    "dense",
    [],
    [0],
    [1, 1],
    [0, 0, 0, 0],
    [2**40, 1],
    [-1, 3],
    [1, 2, 3],
    [3, 32, 32],
    [1, 28, 28],
    [20_000, 20_000, 3],
    {},
    {"a": 1},
    {"crop": 20_000},
    {"crop": 0},
    {"resize": 4096, "crop": 4096},
    list(range(1000)),
    ["a"] * 10,
]
HOSTILE_FLOATS = np.array([3e38, -3e38, 1e30, -1e30, np.inf, -np.inf, np.nan, 0.0, 1e-45, 65504.0], np.float32)


def cases(seed: int, per_model: int):
    """Yields (description, file bytes): per_model mutations of each shipped model, reproducible."""
    rng = random.Random(seed)
    for path in MODELS:
        blob = path.read_bytes()
        manifest, arrays = hostile.parts(blob)
        kinds = [k for k, weight in KINDS.items() for _ in range(weight)]
        for i in range(per_model):
            kind = rng.choice(kinds)
            label, data = MUTATORS[kind](rng, blob, manifest, arrays)
            yield f"{path.stem}#{i} {kind}: {label}", data


def _flip(rng, blob, manifest, arrays):
    data = bytearray(blob)
    flips = rng.randint(1, 16)
    for _ in range(flips):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return f"{flips} bits", bytes(data)


def _truncate(rng, blob, manifest, arrays):
    keep = rng.randrange(len(blob))
    return f"first {keep} bytes", blob[:keep]


def _zip(rng, blob, manifest, arrays):
    text = json.dumps(manifest).encode()
    entries = [hostile.entry("model.json", text, zipfile.ZIP_DEFLATED), hostile.entry("arrays.bin", arrays)]
    how = rng.choice(
        ["flags", "method", "size", "crc", "duplicate", "drop", "extra", "swap", "directory", "local header", "name"]
    )
    e = rng.choice(entries)
    if how == "flags":
        e["flags"] = rng.choice([0x1, 0x8, 0x40, 0x800, 0xFFFF])
    elif how == "method":
        e["method"] = rng.choice([1, 6, 9, 12, 14, 19, 93, 95, 98, 99, 0xFFFF])
    elif how == "size":
        e["size"] = rng.choice([0, 1, e["size"] - 1, e["size"] + 1, 2**31, 2**32 - 1])
    elif how == "crc":
        e["crc"] = rng.randrange(2**32)
    elif how == "duplicate":
        entries.append(copy.deepcopy(rng.choice(entries)))
    elif how == "drop":
        entries.remove(e)
    elif how == "extra":
        entries.append(hostile.entry(rng.choice(["a.txt", "model.json/", "../x", "arrays.bin.bak"]), b"hello"))
    elif how == "swap":
        entries.reverse()
    elif how == "name":
        e["name"] = rng.choice(["MODEL.JSON", "model.json\0", "arrays.bin ", ""])
    data = bytearray(hostile.archive(entries))
    if how == "directory":  # the central directory and end record: the archive's last bytes
        for _ in range(rng.randint(1, 4)):
            data[len(data) - 1 - rng.randrange(min(len(data), 160))] = rng.randrange(256)
    elif how == "local header":
        data[rng.randrange(30)] = rng.randrange(256)
    return how, bytes(data)


def _bomb(rng, blob, manifest, arrays):
    size = rng.choice([17 << 20, 100 << 20, 1 << 30, int(1.9 * (1 << 30))])
    return f"{size >> 20} MiB", hostile.archive(
        [hostile.bomb_manifest(manifest, size), hostile.entry("arrays.bin", arrays)]
    )


def _paths(value, prefix=()):
    """Every (path, value) in a JSON document."""
    yield prefix, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:50]):
            yield from _paths(v, prefix + (i,))


def _manifest(rng, blob, manifest, arrays):
    m = copy.deepcopy(manifest)
    focus = rng.choice(["metadata", "attrs", "graph", "anywhere"])
    if focus == "metadata":
        candidates = [p for p, _ in _paths(m["metadata"], ("metadata",))]
    elif focus == "attrs":
        candidates = [p for p, _ in _paths(m["graph"]["nodes"], ("graph", "nodes")) if "attrs" in p]
    elif focus == "graph":
        candidates = [p for p, _ in _paths(m["graph"], ("graph",)) if len(p) <= 4]
    else:
        candidates = [p for p, _ in _paths(m)]
    path = rng.choice([p for p in candidates if p] or [("metadata",)])
    parent = m
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    action = rng.choice(["replace"] * 6 + ["delete", "add key", "wrap"])
    if action == "replace":
        parent[key] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
    elif action == "delete":
        del parent[key]
    elif action == "add key" and isinstance(parent, dict):
        parent[rng.choice(["dilation", "transposed", "x", "attrs", "zero_to", "pad_value"])] = rng.choice(
            HOSTILE_VALUES[:20]
        )
    else:
        parent[key] = [parent[key]]
    return f"{action} {'/'.join(map(str, path))}", hostile.model_file(m, arrays)


def _array_table(rng, blob, manifest, arrays):
    m = copy.deepcopy(manifest)
    key = rng.choice(sorted(m["arrays"]))
    spec = m["arrays"][key]
    field = rng.choice(["shape", "offset", "dtype", "swap"])
    if field == "shape":
        spec["shape"] = rng.choice(
            [[], [0], spec["shape"][::-1], spec["shape"] + [1], [2**63], [2**32, 2**32], [d + 1 for d in spec["shape"]]]
        )
    elif field == "offset":
        spec["offset"] = rng.choice([1, 4, spec["offset"] + 64, len(arrays), 2**62])
    elif field == "dtype":
        spec["dtype"] = rng.choice(["float64", "uint64", "float32", "int8", "object"])
    else:
        other = rng.choice(sorted(m["arrays"]))
        m["arrays"][key], m["arrays"][other] = m["arrays"][other], spec
    return f"{field} of {key}", hostile.model_file(m, arrays)


def _array_data(rng, blob, manifest, arrays):
    data = bytearray(arrays)
    key = rng.choice(sorted(manifest["arrays"]))
    spec = manifest["arrays"][key]
    count = int(np.prod(spec["shape"]))
    hits = rng.randint(1, max(1, min(count, 64)))
    for _ in range(hits):
        i = spec["offset"] + 4 * rng.randrange(count) * (2 if spec["dtype"] == "uint64" else 1)
        if spec["dtype"] == "float32" and rng.random() < 0.8:
            data[i : i + 4] = HOSTILE_FLOATS[rng.randrange(len(HOSTILE_FLOATS))].tobytes()
        else:
            data[i : i + 4] = struct.pack("<I", rng.randrange(2**32))
    return f"{hits} values of {key} ({spec['dtype']})", hostile.model_file(manifest, bytes(data))


MUTATORS = {
    "flip": _flip,
    "truncate": _truncate,
    "zip": _zip,
    "bomb": _bomb,
    "manifest": _manifest,
    "array_table": _array_table,
    "array_data": _array_data,
}


# ---- the worker -----------------------------------------------------------------------------------


def run_case(path: str, index: int) -> str:
    """The outcome of one case: 'refused', 'ok', 'overflow', or 'RAW ...' / 'NAN ...' (failures)."""
    import xnorinfer

    try:
        model = xnorinfer.load(path)
    except xnorinfer.ModelFormatError:
        return "refused"
    except Exception as exc:  # noqa: BLE001 -- the fuzzer's finding
        return f"RAW at load: {type(exc).__name__}: {str(exc)[:300]}"
    rng = np.random.default_rng(index)
    c, h, w = model.input_size
    try:
        logits = model.predict(rng.standard_normal((2, c, h, w)).astype(np.float32))
        if not np.isfinite(logits).all():
            return "NAN logits returned"
        image = rng.integers(0, 256, (h + 5, w + 3, 3), dtype=np.uint8)
        top = xnorinfer.classify([image], model=model, top_k=3)[0]
        if not all(np.isfinite(p) for _, p in top):
            return "NAN probabilities returned"
        model.summary()
    except FloatingPointError:
        return "overflow"
    except Exception as exc:  # noqa: BLE001 -- the fuzzer's finding
        return f"RAW after load: {type(exc).__name__}: {str(exc)[:300]}"
    return "ok"


def worker(case_list: str) -> None:
    import faulthandler
    import resource
    import warnings

    warnings.simplefilter("ignore")  # overflow warnings from NumPy while folding hostile parameters
    print(
        json.dumps({"baseline_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}), flush=True
    )
    for line in Path(case_list).read_text().splitlines():
        index, path = line.split(" ", 1)
        print(json.dumps({"start": int(index)}), flush=True)
        faulthandler.dump_traceback_later(CASE_TIMEOUT_S, exit=True)  # a hang ends the process
        outcome = run_case(path, int(index))
        faulthandler.cancel_dump_traceback_later()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"case": int(index), "outcome": outcome, "rss_mb": round(rss_mb, 1)}), flush=True)


# Linux carries a process's peak RSS (ru_maxrss) across fork and exec, so a worker started by
# pytest would report pytest's own peak (hundreds of MB once torch is imported). A process that
# a small intermediate process starts begins afresh: its launcher runs this first.
LAUNCH = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"

if __name__ == "__main__":
    worker(sys.argv[1])

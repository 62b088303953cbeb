"""Memory and load time of ReActNet-A (official architecture, random parameters, 224x224).

    python benchmarks/memory.py

Peak RSS (Linux: /proc/self/status VmHWM) is measured in fresh processes: a bare `import numpy`, and
one that imports xnorinfer, loads the model and classifies one image; the difference is what the
engine costs. Load time is the median of 20 more loads of the .xnr file in that process, after
its peak is read."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

# Peak RSS in KiB: VmHWM, which starts afresh at exec (ru_maxrss would carry this parent's peak).
PEAK = """
def peak_kib():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM")).split()[1])
"""
BARE = PEAK + "import numpy\nprint(peak_kib())"
ENGINE = (
    PEAK
    + """
import sys, time
import numpy as np
import xnorinfer
path = sys.argv[1]
model = xnorinfer.load(path)
model.predict(np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32))
peak = peak_kib()  # before the timed loads: each of them holds two models for a moment
del model
loads = []
for _ in range(20):
    start = time.perf_counter()
    model = xnorinfer.load(path)
    loads.append(time.perf_counter() - start)
print(peak, 1e3 * float(np.median(loads)))
"""
)


def main():
    import xnorinfer
    from xnorinfer.testing import torch_models as ref

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reactnet_a.xnr"
        model = ref.ReActNetA()
        ref.randomize_(model, seed=0)
        xnorinfer.convert.from_torch(model.state_dict(), "reactnet-a").save(path)
        bare_kb = int(subprocess.run([sys.executable, "-c", BARE], capture_output=True, text=True, check=True).stdout)
        out = subprocess.run([sys.executable, "-c", ENGINE, str(path)], capture_output=True, text=True, check=True)
        engine_kb, load_ms = out.stdout.split()
        result = {
            "file_mb": round(path.stat().st_size / 1e6, 2),
            "bare_numpy_peak_rss_mb": round(bare_kb / 1024, 1),
            "engine_peak_rss_mb": round(int(engine_kb) / 1024, 1),
            "engine_above_numpy_mb": round((int(engine_kb) - bare_kb) / 1024, 1),
            "load_ms_median": round(float(load_ms), 1),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

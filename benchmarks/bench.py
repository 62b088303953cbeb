"""The benchmark now lives in the package (xnorinfer/bench.py, `xnorinfer bench`), so that an
installed xnorinfer runs it. This shim keeps `python benchmarks/bench.py ...` working and keeps
bconv_layers.py's `from bench import ROUNDS, sample_seconds`."""

import sys

from xnorinfer.bench import ROUNDS, main, sample_seconds  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())

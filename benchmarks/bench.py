"""The benchmark lives in the package (xnorinfer/bench.py, `xnorinfer bench`), so that an
installed xnorinfer runs it; this shim keeps `python benchmarks/bench.py ...` working."""

import sys

from xnorinfer.bench import main

if __name__ == "__main__":
    sys.exit(main())

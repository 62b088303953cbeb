#!/usr/bin/env bash
# Builds tests/c/kernel_check.c with the C kernels and runs it: on this machine under
# AddressSanitizer and UBSan, then for aarch64 and 32-bit ARMv7 (armhf) under qemu user-mode
# emulation (ARMv6 as Raspberry Pi OS 32-bit builds, ARMv7 as Debian armhf does and with NEON
# enabled). Each run checks every ISA its CPU supports (the scalar kernels and NEON on ARM) and
# prints them. The ARM legs need gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf and qemu-user
# (or Debian's qemu-user-static); they are skipped with a message when those are missing, unless
# XNORINFER_REQUIRE_ARM=1 (CI) makes that a failure.
#   tests/c/run.sh [cases]     default 300 cases on every leg (the ARM ones take ~10-40 s each)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../../xnorinfer/csrc"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cases=${1:-300}
flags=(-O2 -std=c11 -fno-trapping-math -ffp-contract=off -fopenmp -Wall -Wextra -Werror -I"$src")
gcc "${flags[@]}" -g -fsanitize=address,undefined -fno-sanitize-recover=all \
    "$here/kernel_check.c" "$src"/*.c -o "$out/check-native"
echo "x86-64 (ASan+UBSan): $("$out/check-native" "$cases")"
# The same sources -Wall -Wextra -Werror clean with clang too (with OpenMP: needs libomp-dev), and
# without OpenMP (clang; gcc then warns only that it ignores the pragmas).
if command -v clang >/dev/null; then
    no_omp=()
    for f in "${flags[@]}"; do [ "$f" = -fopenmp ] || no_omp+=("$f"); done
    clang "${no_omp[@]}" -fsyntax-only "$here/kernel_check.c" "$src"/*.c
    if echo '#include <omp.h>' | clang -fopenmp -x c -fsyntax-only - 2>/dev/null; then
        clang "${flags[@]}" -fsyntax-only "$here/kernel_check.c" "$src"/*.c && echo "clang: no warnings"
    else
        echo "clang: no warnings without OpenMP (with it skipped: no omp.h for clang, apt install libomp-dev)"
    fi
else
    echo "clang: skipped (not installed)"
fi

find_tool() { # the first of the given commands that exists
    for t in "$@"; do command -v "$t" >/dev/null && { echo "$t"; return 0; }; done
    return 1
}

missing=0
# leg name, cross compiler, qemu binaries, extra flags
arm_leg() {
    local name=$1 cc=$2 qemus=$3; shift 3
    local qemu
    if ! command -v "$cc" >/dev/null || ! qemu=$(find_tool $qemus); then
        echo "$name: skipped (needs $cc and one of: $qemus)"
        missing=1
        return 0
    fi
    # (static glibc's libgomp warns about dlopen at link time; the check never loads anything)
    "$cc" "${flags[@]}" "$@" -static "$here/kernel_check.c" "$src"/*.c -o "$out/check-$name" 2>"$out/ld.log" ||
        { cat "$out/ld.log"; return 1; }
    grep -v "dlopen\|goacc_profiling" "$out/ld.log" >&2 || true
    # The scalar GEMM must not call libgcc's __popcountdi2 per word (32-bit ARM has no popcount).
    if "${cc%gcc}nm" "$out/check-$name" | grep -q __popcount; then
        echo "$name: the kernels call a libgcc popcount routine"; return 1
    fi
    local start=$SECONDS
    echo "$name ($qemu): $("$qemu" "$out/check-$name" "$cases") [$((SECONDS - start)) s]"
}
arm_leg aarch64 aarch64-linux-gnu-gcc "qemu-aarch64 qemu-aarch64-static"
# Raspberry Pi OS 32-bit's flags (ARMv6, ARM mode), Debian armhf's (ARMv7 Thumb-2): NEON by target
# attribute and HWCAP in both; then a -mfpu=neon build.
arm_leg armv6 arm-linux-gnueabihf-gcc "qemu-arm qemu-arm-static" -march=armv6+fp -marm
arm_leg armv7 arm-linux-gnueabihf-gcc "qemu-arm qemu-arm-static"
arm_leg armv7-neon arm-linux-gnueabihf-gcc "qemu-arm qemu-arm-static" -mfpu=neon
if [ "$missing" = 1 ] && [ "${XNORINFER_REQUIRE_ARM:-0}" = 1 ]; then
    echo "ARM legs required (XNORINFER_REQUIRE_ARM=1) but their tools are missing"; exit 1
fi

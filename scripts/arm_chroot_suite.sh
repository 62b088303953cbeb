#!/usr/bin/env bash
# The whole pytest suite in Debian bookworm arm64 and armhf root filesystems under qemu user-mode
# emulation, as a user on Raspberry Pi OS 64-bit / 32-bit would install the project (docs/arm.md).
# Slow (tens of minutes per architecture), so not in CI; tests/c/run.sh is the kernels' fast check.
#
#   sudo scripts/arm_chroot_suite.sh [arm64] [armhf] [-- pytest args]
#
# Needs root (chroot, mounts), debootstrap and qemu-user-static, and a kernel with binfmt_misc:
# each ARM binary the chroot runs (python3, gcc, cc1, as, ld) is started through qemu by the
# kernel. If /proc/sys/fs/binfmt_misc is not mounted it is mounted; qemu's handlers are registered
# from /usr/lib/binfmt.d with the F flag (the interpreter opened now, so the chroot needs no copy)
# when missing, and those the script registered are removed again at exit.
# (proot -q qemu-aarch64-static does not work in its place with Debian bookworm's proot 5.1 and
# qemu 7.2: the guest sees the host's root, not the rootfs.)
#
# Root filesystems stay in $XNORINFER_CHROOT_DIR (default /var/tmp/xnorinfer-chroots/<arch>, about
# 0.6 GB each) and are reused; delete one to rebuild it. Each run copies the working tree (git's
# tracked and untracked, not ignored, files) to /root/xnorinfer there, builds it in a venv with
# --system-site-packages over Debian's NumPy 1.24, Pillow, tqdm and threadpoolctl (PyPI has no
# armv7 wheels; bookworm, hence Raspberry Pi OS, ships these), pytest and hypothesis from PyPI
# (bookworm's hypothesis is older than the test extra's 6.80), and runs pytest. No PyTorch: PyPI
# has none for armv7, and on arm64 its wheel is large and slow under qemu, so the tests that need it
# skip (XNORINFER_CHROOT_TORCH=1 installs it on arm64). Expected skips: see docs/arm.md.
# Logs: $XNORINFER_CHROOT_DIR/<arch>.log; the last line per architecture is pytest's summary.
# Run it under `nice -n 19` on a shared machine.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
base=${XNORINFER_CHROOT_DIR:-/var/tmp/xnorinfer-chroots}
mirror=${XNORINFER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
archs=()
while [ $# -gt 0 ]; do
    case $1 in
    arm64 | armhf) archs+=("$1") ;;
    --) shift; break ;;
    *) echo "usage: $0 [arm64] [armhf] [-- pytest args]" >&2; exit 2 ;;
    esac
    shift
done
[ ${#archs[@]} -gt 0 ] || archs=(arm64 armhf)
pytest_args=("$@")
[ "$(id -u)" = 0 ] || { echo "needs root (chroot and mounts)" >&2; exit 2; }
for t in debootstrap chroot; do command -v $t >/dev/null || { echo "needs $t (apt-get install debootstrap)" >&2; exit 2; }; done

packages=python3,python3-dev,python3-venv,python3-pip,gcc,libc6-dev,ca-certificates,python3-numpy,python3-pil,python3-tqdm,python3-threadpoolctl
binfmt=/proc/sys/fs/binfmt_misc
registered=()
mounted=()
cleanup() {
    local m
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
    for m in "${registered[@]}"; do echo -1 >"$binfmt/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
trap "exit 130" INT TERM

qemu_name() { [ "$1" = arm64 ] && echo aarch64 || echo arm; }

ensure_binfmt() { # $1: qemu's name for the architecture
    local name=qemu-$1 conf=/usr/lib/binfmt.d/qemu-$1.conf
    if [ ! -e "$binfmt/register" ]; then # not here: mounted elsewhere, or not at all
        local at
        at=$(findmnt -n -t binfmt_misc -o TARGET | head -n1)
        if [ -n "$at" ]; then
            binfmt=$at
        else
            mount -t binfmt_misc binfmt_misc "$binfmt" ||
                { echo "cannot mount binfmt_misc: the chroot cannot start ARM programs" >&2; exit 1; }
            mounted+=("$binfmt")
        fi
    fi
    [ -e "$binfmt/$name" ] && return 0
    [ -e "$conf" ] || { echo "needs $conf (apt-get install qemu-user-static)" >&2; exit 1; }
    cat "$conf" >"$binfmt/register"
    registered+=("$name")
}

build_rootfs() { # $1: arch, $2: dir
    if [ -e "$2/etc/debian_version" ] && [ ! -d "$2/debootstrap" ]; then return 0; fi
    rm -rf "$2"
    local start=$SECONDS
    echo "$1: debootstrap (bookworm, $packages)"
    debootstrap --foreign --arch="$1" --variant=minbase --include="$packages" bookworm "$2" "$mirror"
    chroot "$2" /debootstrap/debootstrap --second-stage
    echo "$1: root filesystem built in $((SECONDS - start)) s"
}

ensure_packages() { # $1: dir; a root filesystem from an older package list gets the missing ones
    local missing
    missing=$(chroot "$1" dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' ${packages//,/ } 2>/dev/null |
        awk '$1 != "ii" {print $2}' | tr '\n' ' ') || true
    [ -z "${missing// /}" ] && chroot "$1" dpkg-query -W ${packages//,/ } >/dev/null 2>&1 && return 0
    echo "installing ${missing:-$packages}"
    chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        /bin/sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends ${packages//,/ }"
}

in_chroot() { # $1: dir, then a shell command run there
    local dir=$1; shift
    chroot "$dir" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 /bin/bash -c "$*"
}

run_arch() {
    local arch=$1 dir=$base/$1 log=$base/$1.log
    ensure_binfmt "$(qemu_name "$arch")"
    mkdir -p "$base"
    build_rootfs "$arch" "$dir"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    ensure_packages "$dir"
    # the host's CA bundle (pip in the chroot uses it), for hosts behind a TLS-inspecting proxy
    [ -e /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
    for m in proc sys dev; do
        mountpoint -q "$dir/$m" || { mount --bind "/$m" "$dir/$m"; mounted+=("$dir/$m"); }
    done
    # the shipped models' accuracy tests read ../shared/data (tests/test_shipped_models.py): bound
    # read-only where the checkout has it, else those tests skip
    if [ -d "$repo/../shared/data" ]; then
        mkdir -p "$dir/root/shared/data"
        mountpoint -q "$dir/root/shared/data" || {
            mount --bind "$repo/../shared/data" "$dir/root/shared/data" &&
                mount -o remount,bind,ro "$dir/root/shared/data" && mounted+=("$dir/root/shared/data")
        }
    fi
    rm -rf "$dir/root/xnorinfer" && mkdir -p "$dir/root/xnorinfer"
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) |
        tar -xf - -C "$dir/root/xnorinfer"
    local torch=""
    [ "$arch" = arm64 ] && [ "${XNORINFER_CHROOT_TORCH:-0}" = 1 ] && torch="torch==2.13.0"
    local start=$SECONDS
    {
        echo "== $arch: $(in_chroot "$dir" 'uname -m; python3 -c "import numpy, sys; print(sys.version.split()[0], numpy.__version__)"' | tr '\n' ' ')"
        in_chroot "$dir" "set -e; cd /root/xnorinfer
            [ -x /opt/venv/bin/python ] || python3 -m venv --system-site-packages /opt/venv
            /opt/venv/bin/pip install -q 'pytest>=7' 'hypothesis>=6.80' $torch
            /opt/venv/bin/pip install -q --no-deps -e .
            /opt/venv/bin/python -c 'import xnorinfer; xnorinfer.show_config()'"
        echo "== $arch: installed in $((SECONDS - start)) s"
        local t0=$SECONDS rc=0
        in_chroot "$dir" "cd /root/xnorinfer && /opt/venv/bin/python -m pytest -q -p no:cacheprovider -rs ${pytest_args[*]:-}" || rc=$?
        echo "== $arch: pytest exit $rc in $((SECONDS - t0)) s"
    } 2>&1 | tee "$log"
}

for a in "${archs[@]}"; do run_arch "$a"; done
for a in "${archs[@]}"; do
    echo "$a: $(grep -E '(passed|failed|error).* in [0-9.]+s' "$base/$a.log" | tail -n1) ($(grep '^== .*pytest exit' "$base/$a.log" | tail -n1 | sed 's/^== //'))"
done

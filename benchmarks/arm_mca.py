"""Modelled throughput of the NEON inner loops on ARM cores, with llvm-mca.

Compiles the NEON kernels with the aarch64 cross gcc and the extension's own flags (setup.py's
-O3 -std=c11 -fno-strict-aliasing -fno-trapping-math -ffp-contract=off) plus -DXI_MCA, which puts
LLVM-MCA-BEGIN/END comments around each inner loop's body (csrc/neon.h). The loop bodies are cut
out of the assembly and timed by llvm-mca for each CPU model:

    bgemm   bit-MACs per cycle: one step is MR rows x 8 channels x 64 bits
    pack    floats per cycle: one step packs 16 floats (the variant with a bias)
    conv    FMA lanes per cycle: one step of the float conv is 6 pixels x 16 channels
    dense   FMA lanes per cycle: one step of the dense layer is 4 outputs x 16 inputs
    pool    floats per cycle: one step of pooling is one tap of 16 channels (max or sum)

Where a loop is inlined several times (the GEMM's 1-4 row tiles, the packer's modes), the largest
copy is the one timed: the full 4-row tile, the packer with a bias, the NEON build's full
6 x 16 conv block, a whole-panel dense copy (the shortest: the last, partial panel's copy loops
over its rows), the pooling copy with the most instructions (max:
a compare and a select per vector). A model, not hardware: llvm-mca
assumes every load hits L1 and knows nothing of the loop's branch and front end beyond its model.
Usage: python benchmarks/arm_mca.py [--json] [--save]   (needs gcc-aarch64-linux-gnu, llvm-19)
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "xnorinfer" / "csrc"
CC = "aarch64-linux-gnu-gcc"
MCA = "llvm-mca-19"
FLAGS = ["-fopenmp", "-O3", "-std=c11", "-fno-strict-aliasing", "-fno-trapping-math", "-ffp-contract=off", "-DXI_MCA"]
# neoverse-n1: an A76-class core (llvm 19 times cortex-a76 with another model, so named exactly);
# cortex-a57: the proxy for the Raspberry Pi 4's A72; cortex-a55: in-order (A53-class, Pi 3 / Zero 2).
CPUS = ["neoverse-n1", "cortex-a57", "cortex-a55"]
# region name -> (source file, work per step, unit)
LOOPS = {
    "bgemm": ("bgemm_4x8_neon.c", 4 * 8 * 64, "bit-MACs"),
    "pack": ("bitpack_simd.c", 16, "floats"),
    "conv": ("float_ops.c", 6 * 16, "FMAs"),
    "dense": ("float_ops.c", 4 * 16, "FMAs"),
    "pool": ("float_ops.c", 16, "floats"),
}


def regions(asm, name):
    """The instruction lines of each BEGIN name ... END region, in order."""
    found, current = [], None
    for line in asm.splitlines():
        if f"LLVM-MCA-BEGIN {name}" in line:
            current = []
        elif "LLVM-MCA-END" in line and current is not None:
            found.append(current)
            current = None
        elif current is not None:
            text = line.split("//")[0].strip()
            if text and not text.startswith(".") and not text.endswith(":"):
                current.append(text)
    return found


def cycles_per_step(body, cpu, iterations=200):
    with tempfile.NamedTemporaryFile("w", suffix=".s") as f:
        f.write("\n".join(body) + "\n")
        f.flush()
        out = subprocess.run(
            [MCA, "-mtriple=aarch64-linux-gnu", f"-mcpu={cpu}", f"-iterations={iterations}", f.name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return int(re.search(r"Total Cycles:\s+(\d+)", out).group(1)) / iterations


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/arm_mca.{txt,json}")
    args = parser.parse_args()
    for tool in (CC, MCA):
        if not shutil.which(tool):
            sys.exit(f"arm_mca: {tool} not found (apt-get install gcc-aarch64-linux-gnu llvm-19)")
    results, lines = {cpu: {} for cpu in CPUS}, []
    for loop, (source, work, unit) in LOOPS.items():
        asm = subprocess.run(
            [CC, *FLAGS, "-I", str(CSRC), "-S", "-o", "-", str(CSRC / source)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        # dense: the whole-panel copies (constant rows); the partial-panel one has a row loop
        body = (min if loop == "dense" else max)(regions(asm, loop), key=len)
        for cpu in CPUS:
            cycles = cycles_per_step(body, cpu)
            results[cpu][loop] = round(work / cycles, 1)
            lines.append(
                f"{loop:6s} {cpu:12s} {cycles:6.2f} cycles/step  {work / cycles:6.1f} {unit}/cycle"
                f"  ({len(body)} instructions)"
            )
    gcc = subprocess.run([CC, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    mca = next(
        line.strip()
        for line in subprocess.run([MCA, "--version"], capture_output=True, text=True).stdout.splitlines()
        if "version" in line
    )
    text = "\n".join([f"# {gcc}; {mca}; flags {' '.join(FLAGS)}", *lines])
    print(text)
    if args.save:
        (ROOT / "benchmarks" / "results" / "arm_mca.txt").write_text(text + "\n")
        (ROOT / "benchmarks" / "results" / "arm_mca.json").write_text(json.dumps(results, indent=1) + "\n")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()

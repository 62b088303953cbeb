"""A first look at xnorinfer's kernels: one binary 3x3 convolution of ReActNet-A's size, checked
against a float convolution of the same +-1 tensors and timed against it."""

import time

import numpy as np

import xnorinfer
from xnorinfer import ops


def best_of(fn, repeats=10):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    xnorinfer.show_config()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 56, 56, 128)).astype(np.float32)  # NHWC activations
    w = rng.standard_normal((128, 128, 3, 3)).astype(np.float32)  # PyTorch OIHW latent weights

    weights = ops.BinaryConvWeights.from_float(w)  # 1 bit per weight
    packed = ops.pack_signs(x)  # 1 bit per activation
    binary = ops.bconv2d(packed, weights, stride=1, padding=1)  # zero padding, like PyTorch

    signs_x = np.where(x < 0, -1, 1).astype(np.float32)
    signs_w = np.where(w < 0, -1, 1).astype(np.float32)
    dense = ops.conv2d(signs_x, signs_w, stride=1, padding=1)
    assert np.array_equal(binary, dense), "binary and float convolutions disagree"

    t_bin = best_of(lambda: ops.bconv2d(ops.pack_signs(x), weights, stride=1, padding=1))
    t_float = best_of(lambda: ops.conv2d(signs_x, signs_w, stride=1, padding=1), repeats=3)
    macs = 56 * 56 * 128 * 128 * 9
    print("\n3x3 conv 56x56x128 -> 128: binary result equals the float convolution exactly")
    print(
        f"  xnorinfer ({xnorinfer.get_isa()}, {xnorinfer.get_num_threads()} threads): "
        f"{t_bin * 1e3:7.2f} ms  ({macs / t_bin / 1e9:6.0f} Gbit-MAC/s, packing included)"
    )
    print(f"  float32 NumPy im2col + GEMM:     {t_float * 1e3:7.2f} ms  ({t_float / t_bin:.1f}x slower)")
    print(f"  weights: {weights.packed.nbytes / 1024:.0f} KiB packed vs {w.nbytes / 1024:.0f} KiB float")


if __name__ == "__main__":
    main()

"""Hypothesis strategies for property tests of binary models and layers (the `testing` extra:
pip install "xnorinfer[testing]").

- inputs(model): input batches a model accepts, batch 1-3, with odd values and exact zeros.
- dyadic_parameters(shape) / on_grid(module, input_shape): values on a coarse dyadic grid, where
  float32 arithmetic is exact in any order, so engine and PyTorch outputs can be compared for
  equality. on_grid checks the exactness itself and raises GridError when it cannot be had.
- binary_conv_geometries(): random binary convolution shapes for kernel-level tests."""

from __future__ import annotations

import copy

import numpy as np
from hypothesis import strategies as st

# Values that break careless kernels: signed zeros (sign(0)), tiny and large magnitudes.
ODD_VALUES = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7, 1.0, -1.0, 1e4, -1e4], np.float32)


@st.composite
def inputs(draw, model, *, min_batch: int = 1, max_batch: int = 3, layout: str = "NCHW"):
    """A float32 batch for `model` (N, C, H, W), or (N, H, W, C) with layout="NHWC": normal
    values at a drawn scale, a drawn share of them replaced by ODD_VALUES (exact zeros included).
    Drawn from a seed: large images stay cheap to generate."""
    c, h, w = model.input_size
    n = draw(st.integers(min_batch, max_batch))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = (rng.standard_normal((n, c, h, w)) * draw(st.sampled_from([0.25, 1.0, 4.0]))).astype(np.float32)
    odd = rng.random(x.shape) < draw(st.sampled_from([0.0, 0.01, 0.2]))
    x[odd] = rng.choice(ODD_VALUES, int(odd.sum()))
    return x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def dyadic_parameters(shape, *, step: float = 2.0**-3, bound: float = 1.0, nonzero: bool = False):
    """float32 arrays of `shape` holding multiples of `step` (a power of 2) within +-bound: sums
    and products of a few of them are exact in float32, in any order."""
    if step <= 0 or np.log2(step) % 1:
        raise ValueError(f"step must be a power of 2, got {step}")
    top = int(bound / step)

    def build(seed):
        k = np.random.default_rng(seed).integers(-top, top + 1, size=shape)
        if nonzero:
            k[k == 0] = 1
        return (k * step).astype(np.float32)

    return st.integers(0, 2**32 - 1).map(build)


class GridError(ValueError):
    """A module's float32 forward cannot be made exact on the grid (see on_grid)."""


BN_STDS = (0.5, 1.0, 2.0)  # sqrt(var + eps): powers of 2, so the BatchNorm division is exact
ATTEMPTS = 8  # grids tried per draw before giving up


def on_grid(module, input_shape, *, step: float = 2.0**-3):
    """Strategy of (copy of `module` with every parameter and BatchNorm statistic on a dyadic grid,
    float32 input of `input_shape` on the grid) whose float32 forward is exact in any summation
    order. Each draw tries a few grids and checks them (float32 forward equal to float64 at every
    layer, every sum within 24 bits, no exact zero reaching torch.sign); raises GridError naming
    what stays inexact, e.g. a binary conv whose scale is a mean of |W| over 9 x C values."""

    def build(seed):
        problems = []
        for attempt in range(ATTEMPTS):
            rng = np.random.default_rng([seed, attempt])
            gridded = _gridify(copy.deepcopy(module), rng, step)
            x = (rng.integers(-16, 17, size=input_shape) * step).astype(np.float32)
            problems = exactness_problems(gridded, x)
            if not problems:
                return gridded, x
        raise GridError(f"{type(module).__name__} is not exact on a dyadic grid: " + "; ".join(problems[:5]))

    return st.integers(0, 2**32 - 1).map(build)


def _gridify(module, rng, step):
    import torch

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
                c = m.num_features
                stds = rng.choice(BN_STDS, c)
                m.running_var.copy_(torch.from_numpy((stds**2 - m.eps).astype(np.float32)))
                m.running_mean.copy_(torch.from_numpy(np.float32(rng.integers(-16, 17, c) * step)))
                if m.affine:
                    m.weight.copy_(torch.from_numpy(np.float32(rng.choice([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0], c))))
                    m.bias.copy_(torch.from_numpy(np.float32(rng.integers(-16, 17, c) * step)))
            else:
                for p in m.parameters(recurse=False):
                    top = int(1 / step)
                    p.copy_(torch.from_numpy((rng.integers(-top, top + 1, tuple(p.shape)) * step).astype(np.float32)))
    return module


def _grid_bits(values: np.ndarray) -> int:
    """Mantissa bits that hold every value of a float64 array on one common dyadic grid."""
    v = np.abs(values[np.isfinite(values) & (values != 0)])
    if v.size == 0:
        return 0
    mantissa, exponent = np.frexp(v)
    ints = (mantissa * 2.0**53).astype(np.int64)
    lowest = np.log2((ints & -ints).astype(np.float64)) + exponent - 53
    return int(np.floor(np.log2(v.max())) - lowest.min()) + 1


def exactness_problems(module, x) -> list[str]:
    """What keeps the float32 forward of `module` on x from being exact in any order (empty if
    nothing): layers whose float32 output differs from float64, sums of |terms| that need more
    than float32's 24 bits, exact zeros reaching torch.sign (PyTorch gives 0, a 1-bit sign +-1)."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    problems, zero_signs = [], []

    class SignWatch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in (torch.sign, torch.Tensor.sign) and bool((args[0] == 0).any()):
                zero_signs.append(func)
            return func(*args, **(kwargs or {}))

    def record(net, outs, sums):
        def hook(name):
            def run(m, inputs, output):
                outs[name] = output.detach().double().clone()
                if sums is not None and isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                    a = inputs[0].detach().double().abs()
                    w = m.weight.detach().double().abs()
                    s = (
                        F.linear(a, w)
                        if isinstance(m, torch.nn.Linear)
                        else F.conv2d(a, w, None, m.stride, m.padding, m.dilation, m.groups)
                    )
                    sums[name] = s.numpy()

            return run

        return [m.register_forward_hook(hook(n)) for n, m in net.named_modules() if n and not list(m.children())]

    m32, m64 = module.eval(), copy.deepcopy(module).double().eval()
    for bn in m64.modules():
        # the float64 copy divides by float32's sqrt(var + eps) exactly: what an exact engine does
        if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm) and bn.running_var is not None:
            std = torch.sqrt(bn.running_var.float() + bn.eps).double()
            bn.running_var.copy_(std * std)
            bn.eps = 0.0
    o32, o64, sums = {}, {}, {}
    handles = record(m32, o32, None) + record(m64, o64, sums)
    try:
        with torch.no_grad(), SignWatch():
            y32 = m32(torch.from_numpy(np.asarray(x, np.float32)))
        with torch.no_grad():
            y64 = m64(torch.from_numpy(np.asarray(x, np.float64)))
    finally:
        for h in handles:
            h.remove()
    for name in o64:
        if not torch.equal(o64[name], o32[name]):
            problems.append(f"{name} rounds in float32")
        elif _grid_bits(o64[name].numpy()) > 24:
            problems.append(f"{name}'s outputs need more than 24 bits")
    problems += [f"{name}'s sums of |terms| need more than 24 bits" for name, s in sums.items() if _grid_bits(s) > 24]
    if zero_signs:
        problems.append(f"{len(zero_signs)} torch.sign calls see exact zeros")
    if not torch.equal(y32.double(), y64):
        problems.append("the output rounds in float32")
    return problems


# The channel counts where packing changes: around each 64-bit word boundary.
WORD_EDGES = (1, 3, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 520)


@st.composite
def binary_conv_geometries(draw, *, max_channels: int = 520, max_pixels: int = 400):
    """A binary convolution's shape: dict(in_channels, out_channels, kernel, stride, padding
    (top, bottom, left, right), groups, pad_value, height, width, batch). Channels 1-520 (word
    edges favoured), kernels 1-5 (not square too), strides 1-3, padding 0-2 and asymmetric, groups;
    the image is just big enough for at least one output and at most max_pixels pixels."""
    edges = [c for c in WORD_EDGES if c <= max_channels]
    channels = draw(st.one_of(st.sampled_from(edges), st.integers(1, max_channels)))
    groups = draw(st.sampled_from([g for g in (1, 2, 3, 4, 8) if channels % g == 0]))
    out_channels = groups * draw(st.integers(1, max(1, 64 // groups)))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
    height = draw(st.integers(max(1, kernel[0] - padding[0] - padding[1]), 20))
    width = draw(st.integers(max(1, kernel[1] - padding[2] - padding[3]), max(1, min(20, max_pixels // height))))
    return dict(
        in_channels=channels,
        out_channels=out_channels,
        kernel=kernel,
        stride=stride,
        padding=padding,
        groups=groups,
        pad_value=draw(st.sampled_from(["zero", "one"])),
        height=height,
        width=width,
        batch=draw(st.integers(1, 3)),
    )

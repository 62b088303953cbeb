"""Converters for XNOR-Net-PyTorch checkpoints (jiecaoyu/XNOR-Net-PyTorch and its forks): NIN
(CIFAR-10), LeNet-5 (MNIST) and AlexNet (ImageNet), as XNOR-Net (binary weights and activations)
or BWN (binary weights, float activations).

Eval semantics reproduced: every Conv2d/Linear except the first and the last is binarized the way
BinOp.binarization() does before testing -- W is mean-centred over its input channels, clamped to
[-1, 1], and replaced by alpha[o] * sign(W) with alpha[o] = mean|W[o]| (`centered=False` skips the
centring and clamping: plain BWN). A binary layer runs BN(eps 1e-4) -> sign -> conv/linear (+bias)
-> ReLU, the binarized input zero-padded; NIN and LeNet-5 clamp BN gammas to >= 0.01 first."""

from __future__ import annotations

import numpy as np

from ..graph import GraphBuilder
from . import _torch_sums
from ._checkpoint import StateDict
from ._layers import Layers

GAMMA_MIN = 0.01  # NIN's and LeNet-5's forward() clamps every affine BN weight to this


def binarize(weight: np.ndarray, centered: bool) -> tuple[np.ndarray, np.ndarray]:
    """(latent weight whose signs are used, alpha) as XNOR-Net-PyTorch's BinOp computes them, in
    float32 and in its order of operations, so each sign and alpha is the bit-exact one PyTorch
    tested with. A centred weight of exactly 0 stays 0 (PyTorch's sign gives 0 there): the
    converter counts and reports those (StateDict.note_zero_weights)."""
    if weight.ndim not in (2, 4):
        raise ValueError(f"BinOp binarizes 2-D and 4-D weights, not {weight.shape}")
    torch = _torch_sums.torch_or_none()
    if torch is None:
        return _binarize_numpy(weight, centered)
    return _binarize_torch(torch, weight, centered)


def _binarize_torch(torch, weight: np.ndarray, centered: bool) -> tuple[np.ndarray, np.ndarray]:
    w = torch.from_numpy(np.ascontiguousarray(weight, np.float32))
    with torch.no_grad():
        if centered:  # meancenterConvParams(), then clampConvParams()
            w = w.add(w.mean(1, keepdim=True).mul(-1).expand_as(w)).clamp(-1.0, 1.0)
        n = w[0].nelement()
        if w.dim() == 4:  # binarizeConvParams()
            alpha = w.norm(1, 3, keepdim=True).sum(2, keepdim=True).sum(1, keepdim=True).div(n)
        else:
            alpha = w.norm(1, 1, keepdim=True).div(n)
    return np.ascontiguousarray(w.numpy()), alpha.reshape(-1).numpy()


def _binarize_numpy(weight: np.ndarray, centered: bool) -> tuple[np.ndarray, np.ndarray]:
    """The same without torch: NumPy's own mean adds in another order and can round the centred
    weight to the other side of 0, so the sums are torch's (see _torch_sums)."""
    f32 = np.float32
    w = np.ascontiguousarray(weight, f32)
    if centered:
        w = np.clip(w + -_torch_sums.mean_dim1(w), f32(-1), f32(1)).astype(f32)
    l1 = _torch_sums.abs_sum_last(w)[..., 0]  # norm(1, last dim)
    if w.ndim == 4:
        l1 = _torch_sums.sum_last(_torch_sums.sum_last(l1)[..., 0])[..., 0]  # .sum(2).sum(1)
    return w, (l1 / f32(w[0].size)).astype(f32)


class _XnorLayers(Layers):
    def __init__(self, builder, sd, binary_activations: bool, centered: bool, gamma_min):
        super().__init__(builder, sd)
        self.binary_activations, self.centered, self.gamma_min = binary_activations, centered, gamma_min

    def bin_layer(self, x: str, prefix: str, weight_shape, stride=1, padding=0) -> str:
        """XNOR-Net-PyTorch's BinConv2d (or its Linear form): BN -> sign -> conv -> ReLU."""
        linear = len(weight_shape) == 2
        inner = "linear" if linear else "conv"
        cin, cout = weight_shape[1], weight_shape[0]
        bn_channels = self.sd.shape(f"{prefix}.bn.weight")
        bn_channels = bn_channels[0] if bn_channels and linear else cin
        if linear and bn_channels != cin:
            # LeNet-5 (current code): BatchNorm2d on the (C, H, W) map, flattened after the sign.
            x = self.batch_norm(x, f"{prefix}.bn", bn_channels, eps=1e-4, gamma_min=self.gamma_min)
            x = self.b.add("flatten", x, f"{prefix}.flatten", {"order": "chw"})
        else:
            x = self.batch_norm(x, f"{prefix}.bn", cin, eps=1e-4, gamma_min=self.gamma_min)
        weight, alpha = binarize(self.sd.take(f"{prefix}.{inner}.weight", weight_shape), self.centered)
        bias = self.sd.take(f"{prefix}.{inner}.bias", (cout,))
        if self.binary_activations:
            x = self.binary_conv(x, f"{prefix}.{inner}", weight, stride, padding, alpha=alpha, bias=bias)
        else:
            x = self.bwn_conv(x, f"{prefix}.{inner}", weight, alpha, stride, padding, bias=bias)
        return self.b.add("relu", x, f"{prefix}.relu")


def _pool(b, kind, x, name, kernel, stride, padding):
    attrs = {"kernel": [kernel] * 2, "stride": [stride] * 2, "padding": [padding] * 2, "ceil_mode": False}
    if kind == "avg":
        attrs["count_include_pad"] = True
    return b.add(f"{kind}_pool2d", x, name, attrs)


def build_nin(sd: StateDict, binary_activations: bool, centered: bool, input_size: int = 32):
    b = GraphBuilder((input_size, input_size, 3))
    L = _XnorLayers(b, sd, binary_activations, centered, GAMMA_MIN)
    num_classes = (sd.shape("xnor.13.weight") or (10,))[0]
    x = L.conv(b.input, "xnor.0", (192, 3, 5, 5), padding=2, bias=True)
    x = L.batch_norm(x, "xnor.1", 192, eps=1e-4, affine=False)
    x = b.add("relu", x, "xnor.2")
    x = L.bin_layer(x, "xnor.3", (160, 192, 1, 1))
    x = L.bin_layer(x, "xnor.4", (96, 160, 1, 1))
    x = _pool(b, "max", x, "xnor.5", 3, 2, 1)
    x = L.bin_layer(x, "xnor.6", (192, 96, 5, 5), padding=2)
    x = L.bin_layer(x, "xnor.7", (192, 192, 1, 1))
    x = L.bin_layer(x, "xnor.8", (192, 192, 1, 1))
    x = _pool(b, "avg", x, "xnor.9", 3, 2, 1)
    x = L.bin_layer(x, "xnor.10", (192, 192, 3, 3), padding=1)
    x = L.bin_layer(x, "xnor.11", (192, 192, 1, 1))
    x = L.batch_norm(x, "xnor.12", 192, eps=1e-4, affine=False)
    x = L.conv(x, "xnor.13", (num_classes, 192, 1, 1), bias=True)
    x = b.add("relu", x, "xnor.14")
    x = _pool(b, "avg", x, "xnor.15", 8, 1, 0)
    x = b.add("flatten", x, "flatten", {"order": "chw"})
    return b.build(x), num_classes


def build_lenet5(sd: StateDict, binary_activations: bool, centered: bool, input_size: int = 28):
    """XNOR-Net-PyTorch's LeNet-5; the widths (20, 50, 500 in the reference) are read from the
    checkpoint, so wider variants of the same layout convert too."""
    b = GraphBuilder((input_size, input_size, 1))
    L = _XnorLayers(b, sd, binary_activations, centered, GAMMA_MIN)
    num_classes = (sd.shape("ip2.weight") or (10,))[0]
    conv1 = (sd.shape("conv1.weight") or (20,))[0]
    conv2 = (sd.shape("bin_conv2.conv.weight") or (50,))[0]
    hidden = (sd.shape("bin_ip1.linear.weight") or (500,))[0]
    flat = conv2 * 4 * 4
    x = L.conv(b.input, "conv1", (conv1, 1, 5, 5), bias=True)
    x = L.batch_norm(x, "bn_conv1", conv1, eps=1e-4, affine=False)
    x = b.add("relu", x, "relu_conv1")
    x = _pool(b, "max", x, "pool1", 2, 2, 0)
    x = L.bin_layer(x, "bin_conv2", (conv2, conv1, 5, 5))
    x = _pool(b, "max", x, "pool2", 2, 2, 0)
    if sd.shape("bin_ip1.bn.weight") == (flat,):
        # Older code: flatten, then BatchNorm1d(800).
        x = b.add("flatten", x, "flatten", {"order": "chw"})
    x = L.bin_layer(x, "bin_ip1", (hidden, flat))
    x = L.dense(x, "ip2", (num_classes, hidden))
    return b.build(x), num_classes


def build_alexnet(sd: StateDict, binary_activations: bool, centered: bool, input_size: int = 227):
    b = GraphBuilder((input_size, input_size, 3))
    L = _XnorLayers(b, sd, binary_activations, centered, None)  # AlexNet does not clamp BN weights
    num_classes = (sd.shape("classifier.4.weight") or (1000,))[0]
    f = "features"
    x = L.conv(b.input, f"{f}.0", (96, 3, 11, 11), stride=4, bias=True)
    x = L.batch_norm(x, f"{f}.1", 96, eps=1e-4)
    x = b.add("relu", x, f"{f}.2")
    x = _pool(b, "max", x, f"{f}.3", 3, 2, 0)
    x = L.bin_layer(x, f"{f}.4", (256, 96, 5, 5), padding=2)
    x = _pool(b, "max", x, f"{f}.5", 3, 2, 0)
    x = L.bin_layer(x, f"{f}.6", (384, 256, 3, 3), padding=1)
    x = L.bin_layer(x, f"{f}.7", (384, 384, 3, 3), padding=1)
    x = L.bin_layer(x, f"{f}.8", (256, 384, 3, 3), padding=1)
    x = _pool(b, "max", x, f"{f}.9", 3, 2, 0)
    x = b.add("flatten", x, "flatten", {"order": "chw"})
    x = L.bin_layer(x, "classifier.0", (4096, 256 * 6 * 6))
    x = L.bin_layer(x, "classifier.1", (4096, 4096))
    x = L.batch_norm(x, "classifier.2", 4096, eps=1e-3)
    x = L.dense(x, "classifier.4", (num_classes, 4096))
    return b.build(x), num_classes


def normalize_alexnet_keys(state: dict) -> dict:
    """main.py wraps only `features` in DataParallel: keys read features.module.<i>.*"""
    return {k.replace("features.module.", "features.", 1): v for k, v in state.items()}

"""Graph fragments shared by the converters: each adds the nodes of one PyTorch layer, faithful
to its eval semantics, and leaves fusion to xnorinfer.graph.passes."""

from __future__ import annotations

import numpy as np

from ..graph import GraphBuilder
from ..ops import pack_signs
from ._checkpoint import StateDict


def weight_bits(weight: np.ndarray) -> np.ndarray:
    """Signs of latent weights (O, I, kh, kw) or (O, I) packed as the kernels want them."""
    if weight.ndim == 4:
        weight = np.ascontiguousarray(weight.transpose(0, 2, 3, 1))
    return pack_signs(np.ascontiguousarray(weight, np.float32))


class Layers:
    def __init__(self, builder: GraphBuilder, sd: StateDict):
        self.b, self.sd = builder, sd

    def batch_norm(
        self, x: str, prefix: str, channels: int, eps: float = 1e-5, affine: bool = True, gamma_min: float | None = None
    ) -> str:
        """BatchNorm in eval mode (running statistics). gamma_min reproduces XNOR-Net's in-place
        clamp of BN weights, which its NIN and LeNet-5 apply at every forward, eval included."""
        take = self.sd.take
        gamma = take(f"{prefix}.weight", (channels,)) if affine else None
        if gamma is not None and gamma_min is not None:
            gamma = np.maximum(gamma, np.float32(gamma_min))
        return self.b.add(
            "batch_norm",
            x,
            prefix,
            {"eps": float(eps)},
            mean=take(f"{prefix}.running_mean", (channels,)),
            var=take(f"{prefix}.running_var", (channels,)),
            gamma=gamma,
            beta=take(f"{prefix}.bias", (channels,)) if affine else None,
        )

    def conv(self, x: str, prefix: str, weight_shape, stride=1, padding=0, bias: bool = False) -> str:
        weight = self.sd.take(f"{prefix}.weight", weight_shape)
        return self.b.add(
            "conv2d",
            x,
            prefix,
            {"stride": [stride] * 2, "padding": [padding] * 4, "groups": 1},
            weight=weight,
            bias=self.sd.take(f"{prefix}.bias", (weight_shape[0],)) if bias else None,
        )

    def dense(self, x: str, prefix: str, shape) -> str:
        return self.b.add(
            "dense",
            x,
            prefix,
            weight=self.sd.take(f"{prefix}.weight", shape),
            bias=self.sd.take(f"{prefix}.bias", (shape[0],)),
        )

    def learnable_bias(self, x: str, key: str, channels: int) -> str:
        """ReActNet's LearnableBias: a (1, C, 1, 1) per-channel shift."""
        bias = self.sd.take(key, (1, channels, 1, 1)).reshape(channels)
        return self.b.add("affine", x, key.rsplit(".", 1)[0], bias=bias)

    def prelu(self, x: str, prefix: str, channels: int) -> str:
        return self.b.add("prelu", x, prefix, slope=self.sd.take(f"{prefix}.weight", (channels,)))

    def binary_conv(
        self,
        x: str,
        name: str,
        weight: np.ndarray,
        stride=1,
        padding=0,
        alpha: np.ndarray | None = None,
        bias: np.ndarray | None = None,
    ) -> str:
        """sign(x) -> conv with sign(weight), zero padding of the binarized input -> * alpha + bias."""
        o, i = weight.shape[:2]
        self.sd.note_zero_weights(name, weight)
        if alpha is not None and np.all(alpha == 1):
            alpha = None  # released ReActNet weights are exactly +-1: nothing to scale
        packed = self.b.add("pack_signs", x, f"{name}/sign", {"groups": 1})
        attrs = {"in_channels": i, "stride": [stride] * 2, "padding": [padding] * 4, "groups": 1, "pad_value": "zero"}
        if weight.ndim == 2:
            attrs = {"in_features": i}
        out = self.b.add(
            "bconv2d" if weight.ndim == 4 else "bdense", packed, name, attrs, weight_bits=weight_bits(weight)
        )
        if alpha is not None or bias is not None:
            out = self.b.add("affine", out, f"{name}/scale", scale=alpha, bias=bias)
        return out

    def bwn_conv(
        self,
        x: str,
        name: str,
        weight: np.ndarray,
        alpha: np.ndarray,
        stride=1,
        padding=0,
        bias: np.ndarray | None = None,
    ) -> str:
        """Float conv (or dense) with weights alpha * sign(weight)."""
        self.sd.note_zero_weights(name, weight)
        if weight.ndim == 2:
            return self.b.add(
                "bwn_dense",
                x,
                name,
                {"in_features": weight.shape[1]},
                weight_bits=weight_bits(weight),
                alpha=alpha,
                bias=bias,
            )
        attrs = {"in_channels": weight.shape[1], "stride": [stride] * 2, "padding": [padding] * 4, "groups": 1}
        return self.b.add("bwn_conv2d", x, name, attrs, weight_bits=weight_bits(weight), alpha=alpha, bias=bias)

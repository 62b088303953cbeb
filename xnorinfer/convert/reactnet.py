"""Converters for the official ReActNet checkpoints (liuzechun/ReActNet, step 2):
ReActNet-A (MobileNetV1-based, mobilenet/2_step2/reactnet.py) and ReActNet-18
(Bi-Real-Net-18-based, resnet/2_step2/birealnet.py).

Eval semantics reproduced: RSign = sign(x + move bias); the binary conv uses sign(W) with zero
padding of the binarized input and multiplies its output by alpha[o] = mean|W[o]| afterwards;
BatchNorm with running statistics; RPReLU = move -> PReLU -> move; float shortcuts."""

from __future__ import annotations

import numpy as np

from ..graph import GraphBuilder
from . import _torch_sums
from ._checkpoint import ConversionError, StateDict
from ._layers import Layers

REACTNET_A_CHANNELS = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
RESNET18_CHANNELS = [64, 128, 256, 512]


def binary_weight(sd: StateDict, prefix: str, shape, flat_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """(latent weight (O, I, kh, kw), alpha) from `prefix.weights` (flat (O*I*kh*kw, 1), as the
    MobileNet code and the 2020 ResNet code store it) or `prefix.weight` (4-D, current ResNet code)."""
    flat, full = f"{prefix}.weights", f"{prefix}.weight"
    if flat_first:
        key = full if full in sd and flat not in sd else flat
    else:
        key = flat if flat in sd and full not in sd else full
    o, i, kh, kw = shape
    weight = sd.take(key, shape) if key == full else sd.take(key, (o * i * kh * kw, 1)).reshape(shape)
    return weight, nested_mean_abs(weight)


def nested_mean_abs(weight: np.ndarray) -> np.ndarray:
    """The reference's alpha[o]: torch.mean of |W| over kw, then kh, then input channels, rounded as
    torch rounds it (NumPy's pairwise means differ in the last bit on ~40% of real channels)."""
    torch = _torch_sums.torch_or_none()
    if torch is not None:
        w = torch.from_numpy(np.ascontiguousarray(weight, np.float32)).abs()
        alpha = torch.mean(torch.mean(torch.mean(w, dim=3, keepdim=True), dim=2, keepdim=True), dim=1, keepdim=True)
        return alpha.reshape(-1).numpy()
    alpha = np.abs(weight).astype(np.float32)
    for _ in range(3):
        alpha = _torch_sums.mean_last(alpha)[..., 0]
    return alpha


def reactnet_a_channels(sd: StateDict) -> list[int]:
    """Stage widths read from the checkpoint (the stem's and every block's move23 bias), so that
    narrower ReActNet-A-style networks (e.g. the CIFAR-10 model shipped in weights/) convert too;
    the official list when the checkpoint does not tell."""
    stem = sd.shape("feature.0.conv1.weight")
    channels = [stem[0]] if stem and len(stem) == 4 else []
    while channels and sd.shape(f"feature.{len(channels)}.move23.bias"):
        shape = sd.shape(f"feature.{len(channels)}.move23.bias")
        channels.append(int(np.prod(shape)))
    return channels if len(channels) > 1 else list(REACTNET_A_CHANNELS)


def build_reactnet_a(sd: StateDict, input_size: int, stem_stride: int = 2) -> tuple:
    """stem_stride: 2 in the official ImageNet model; small-image variants use 1."""
    ch = reactnet_a_channels(sd)
    stem = sd.shape("feature.0.conv1.weight")
    in_channels = stem[1] if stem and len(stem) == 4 else 3
    b = GraphBuilder((input_size, input_size, in_channels))
    L = Layers(b, sd)
    num_classes = (sd.shape("fc.weight") or (1000,))[0]

    x = L.conv(b.input, "feature.0.conv1", (ch[0], in_channels, 3, 3), stride=stem_stride, padding=1)
    x = L.batch_norm(x, "feature.0.bn1", ch[0])
    for i in range(1, len(ch)):
        cin, cout = ch[i - 1], ch[i]
        # The reference's rule (stride 2 iff the width changes and is not 64) is, for its channel
        # list, "iff the width changes, except in block 1"; the latter is the rule this converter
        # applies to narrower variants (such as examples/training's), whose block 1 is not 64 wide.
        stride = 2 if cin != cout and i != 1 else 1
        p = f"feature.{i}"
        # out1 = move13(prelu1(move12(bn1(alpha * bconv3x3(sign(move11(x)))) + shortcut)))
        w3, a3 = binary_weight(sd, f"{p}.binary_3x3", (cin, cin, 3, 3), flat_first=True)
        y = L.learnable_bias(x, f"{p}.move11.bias", cin)
        y = L.binary_conv(y, f"{p}.binary_3x3", w3, stride=stride, padding=1, alpha=a3)
        y = L.batch_norm(y, f"{p}.bn1", cin)
        shortcut = (
            b.add(
                "avg_pool2d",
                x,
                f"{p}.pooling",
                {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0], "count_include_pad": True, "ceil_mode": False},
            )
            if stride == 2
            else x
        )
        y = b.add("add", [y, shortcut], f"{p}.add1")
        y = L.learnable_bias(y, f"{p}.move12.bias", cin)
        y = L.prelu(y, f"{p}.prelu1", cin)
        out1 = L.learnable_bias(y, f"{p}.move13.bias", cin)
        # pointwise: one 1x1 conv, or two whose outputs are concatenated when the width doubles
        s = L.learnable_bias(out1, f"{p}.move21.bias", cin)
        if cout == cin:
            paths = [("binary_pw", "bn2")]
        elif cout == 2 * cin:
            paths = [("binary_pw_down1", "bn2_1"), ("binary_pw_down2", "bn2_2")]
        else:
            raise ConversionError(
                f"ReActNet-A block {i} goes from {cin} to {cout} channels; a block keeps or doubles its width"
            )
        outs = []
        for conv_name, bn_name in paths:
            wp, ap = binary_weight(sd, f"{p}.{conv_name}", (cin, cin, 1, 1), flat_first=True)
            z = L.binary_conv(s, f"{p}.{conv_name}", wp, alpha=ap)
            z = L.batch_norm(z, f"{p}.{bn_name}", cin)
            outs.append(b.add("add", [z, out1], f"{p}.{conv_name}.add"))
        y = outs[0] if len(outs) == 1 else b.add("concat", outs, f"{p}.concat")
        y = L.learnable_bias(y, f"{p}.move22.bias", cout)
        y = L.prelu(y, f"{p}.prelu2", cout)
        x = L.learnable_bias(y, f"{p}.move23.bias", cout)
    x = b.add("global_avg_pool", x, "pool1")
    x = L.dense(x, "fc", (num_classes, ch[-1]))
    return b.build(x), num_classes


def build_reactnet_18(sd: StateDict, input_size: int) -> tuple:
    b = GraphBuilder((input_size, input_size, 3))
    L = Layers(b, sd)
    num_classes = (sd.shape("fc.weight") or (1000,))[0]

    x = L.conv(b.input, "conv1", (64, 3, 7, 7), stride=2, padding=3)
    x = L.batch_norm(x, "bn1", 64)
    x = b.add("max_pool2d", x, "maxpool", {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1], "ceil_mode": False})
    cin = 64
    for layer, cout in enumerate(RESNET18_CHANNELS, start=1):
        for block in range(4):
            p = f"layer{layer}.{block}"
            stride = 2 if block == 0 and layer > 1 else 1
            # out = move2(prelu(move1(bn1(alpha * bconv3x3(sign(move0(x)))) + shortcut)))
            w, alpha = binary_weight(sd, f"{p}.binary_conv", (cout, cin, 3, 3), flat_first=False)
            y = L.learnable_bias(x, f"{p}.move0.bias", cin)
            y = L.binary_conv(y, f"{p}.binary_conv", w, stride=stride, padding=1, alpha=alpha)
            y = L.batch_norm(y, f"{p}.bn1", cout)
            shortcut = x
            if stride != 1 or cin != cout:
                shortcut = b.add(
                    "avg_pool2d",
                    x,
                    f"{p}.downsample.0",
                    {
                        "kernel": [2, 2],
                        "stride": [2, 2],
                        "padding": [0, 0],
                        "count_include_pad": True,
                        "ceil_mode": False,
                    },
                )
                shortcut = L.conv(shortcut, f"{p}.downsample.1", (cout, cin, 1, 1))
                shortcut = L.batch_norm(shortcut, f"{p}.downsample.2", cout)
            y = b.add("add", [y, shortcut], f"{p}.add")
            y = L.learnable_bias(y, f"{p}.move1.bias", cout)
            y = L.prelu(y, f"{p}.prelu", cout)
            x = L.learnable_bias(y, f"{p}.move2.bias", cout)
            cin = cout
    x = b.add("global_avg_pool", x, "avgpool")
    x = L.dense(x, "fc", (num_classes, 512))
    return b.build(x), num_classes

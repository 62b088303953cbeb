"""Small graphs built directly with GraphBuilder (no torch), covering every op; and ResNet-20 XNOR
built by hand from a module's parameters (tests/test_import_byom.py, benchmarks/import_report.py)."""

import numpy as np

import xnorinfer
from xnorinfer.graph import GraphBuilder
from xnorinfer.ops import pack_signs


def _f32(rng, *shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, shape).astype(np.float32)


def _bits(rng, o, i, kh=1, kw=1):
    w = rng.standard_normal((o, kh, kw, i)).astype(np.float32)
    return pack_signs(w) if (kh, kw) != (0, 0) else None


def tiny_reactnet(seed=0, size=12, widths=(8, 16, 16, 32), shared_sign=False):
    """Stem, ReActNet blocks (same width and doubling, stride 1 and 2), head: unfused, as a
    converter writes it (bias -> sign, bconv, alpha, BN, shortcut add, bias -> PReLU -> bias).
    shared_sign: a doubling block's two 1x1 convs binarize with one bias (as ReActNet-A's do)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((size, size, 3))
    c = widths[0]
    x = b.add(
        "conv2d",
        b.input,
        "stem",
        {"stride": [2, 2], "padding": [1, 1, 1, 1], "groups": 1},
        weight=_f32(rng, c, 3, 3, 3),
    )
    x = b.add(
        "batch_norm",
        x,
        "stem_bn",
        {"eps": 1e-5},
        mean=_f32(rng, c),
        var=_f32(rng, c, low=0.5, high=2),
        gamma=_f32(rng, c),
        beta=_f32(rng, c),
    )

    def bn(t, name, ch):
        return b.add(
            "batch_norm",
            t,
            name,
            {"eps": 1e-5},
            mean=_f32(rng, ch),
            var=_f32(rng, ch, low=0.5, high=2),
            gamma=_f32(rng, ch, low=0.5, high=1.5),
            beta=_f32(rng, ch),
        )

    def rprelu_chain(t, name, ch):
        t = b.add("affine", t, f"{name}.move_a", bias=_f32(rng, ch, low=-0.3, high=0.3))
        t = b.add("prelu", t, f"{name}.prelu", slope=_f32(rng, ch, low=0, high=0.5))
        return b.add("affine", t, f"{name}.move_b", bias=_f32(rng, ch, low=-0.3, high=0.3))

    def bconv(t, name, cin, cout, k, stride, move=None):
        move = _f32(rng, cin, low=-0.3, high=0.3) if move is None else move
        s = b.add("affine", t, f"{name}.move", bias=move)
        s = b.add("pack_signs", s, f"{name}.sign", {"groups": 1})
        y = b.add(
            "bconv2d",
            s,
            name,
            {"in_channels": cin, "stride": [stride] * 2, "padding": [k // 2] * 4, "groups": 1, "pad_value": "zero"},
            weight_bits=_bits(rng, cout, cin, k, k),
        )
        return b.add("affine", y, f"{name}.alpha", scale=_f32(rng, cout, low=0.1, high=1))

    for i, cout in enumerate(widths[1:], start=1):
        cin = c
        stride = 2 if cout != cin and i != 1 else 1
        y = bn(bconv(x, f"b{i}.conv3", cin, cin, 3, stride), f"b{i}.bn1", cin)
        shortcut = (
            x
            if stride == 1
            else b.add("avg_pool2d", x, f"b{i}.pool", {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]})
        )
        out1 = rprelu_chain(b.add("add", [y, shortcut], f"b{i}.add1"), f"b{i}.act1", cin)
        paths = 1 if cout == cin else 2
        move = _f32(rng, cin, low=-0.3, high=0.3) if shared_sign else None
        outs = [
            b.add(
                "add",
                [bn(bconv(out1, f"b{i}.pw{j}", cin, cin, 1, 1, move), f"b{i}.bn2_{j}", cin), out1],
                f"b{i}.add2_{j}",
            )
            for j in range(paths)
        ]
        y = outs[0] if paths == 1 else b.add("concat", outs, f"b{i}.concat")
        x = rprelu_chain(y, f"b{i}.act2", cout)
        c = cout
    x = b.add("global_avg_pool", x, "gap")
    x = b.add("dense", x, "fc", weight=_f32(rng, 10, c), bias=_f32(rng, 10))
    return b.build(x)


def tiny_xnor(seed=0, bwn=False):
    """XNOR-Net style: BN -> sign -> bconv (+bias) -> ReLU, pooling, flatten, binary dense."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((10, 10, 1))
    x = b.add(
        "conv2d",
        b.input,
        "conv1",
        {"stride": [1, 1], "padding": [0, 0, 0, 0], "groups": 1},
        weight=_f32(rng, 6, 1, 3, 3),
        bias=_f32(rng, 6),
    )
    x = b.add("relu", x, "relu1")
    x = b.add("max_pool2d", x, "pool1", {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]})

    def bn(t, name, ch):
        return b.add(
            "batch_norm",
            t,
            name,
            {"eps": 1e-4},
            mean=_f32(rng, ch),
            var=_f32(rng, ch, low=0.5, high=2),
            gamma=_f32(rng, ch, low=0.01, high=1),
            beta=_f32(rng, ch),
        )

    x = bn(x, "bn2", 6)
    if bwn:
        x = b.add(
            "bwn_conv2d",
            x,
            "conv2",
            {"in_channels": 6, "stride": [1, 1], "padding": [1, 1, 1, 1], "groups": 1},
            weight_bits=_bits(rng, 70, 6, 3, 3),
            alpha=_f32(rng, 70, low=0.1, high=1),
            bias=_f32(rng, 70),
        )
    else:
        x = b.add("pack_signs", x, "sign2", {"groups": 1})
        x = b.add(
            "bconv2d",
            x,
            "conv2",
            {"in_channels": 6, "stride": [1, 1], "padding": [1, 1, 1, 1], "groups": 1, "pad_value": "zero"},
            weight_bits=_bits(rng, 70, 6, 3, 3),
        )
        x = b.add("affine", x, "conv2.alpha", scale=_f32(rng, 70, low=0.1, high=1), bias=_f32(rng, 70))
    x = b.add("relu", x, "relu2")
    x = b.add(
        "avg_pool2d", x, "pool2", {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1], "count_include_pad": True}
    )
    x = b.add("flatten", x, "flatten", {"order": "chw"})
    x = bn(x, "bn3", 70 * 4)
    if bwn:
        x = b.add(
            "bwn_dense",
            x,
            "ip1",
            {"in_features": 280},
            weight_bits=_bits(rng, 20, 280)[:, 0, 0, :].copy(),
            alpha=_f32(rng, 20, low=0.1, high=1),
            bias=_f32(rng, 20),
        )
    else:
        x = b.add("pack_signs", x, "sign3", {"groups": 1})
        x = b.add("bdense", x, "ip1", {"in_features": 280}, weight_bits=_bits(rng, 20, 280)[:, 0, 0, :].copy())
        x = b.add("affine", x, "ip1.alpha", scale=_f32(rng, 20, low=0.1, high=1), bias=_f32(rng, 20))
    x = b.add("relu", x, "relu3")
    x = b.add("dense", x, "ip2", weight=_f32(rng, 5, 20), bias=_f32(rng, 5))
    return b.build(x)


def tiny_relu_sign(seed=0, size=12, width=16, zero_to="minus_one", pad_value="minus_one"):
    """Signs of ReLU outputs, the way PyTorch's sign(relu(.)) in {0, 1} runs exactly: packers with
    zero_to (x + bias <= 0 packs as -1, so a ReLU's exact zeros do) and binary convs padded with
    pad_value. A stem conv + ReLU, then a BN whose mean and beta are 0 in half the channels (the
    packer's threshold there is exactly 0) and a packer fused into the stem; a 3x3 binary conv +
    alpha + BN + ReLU whose signs (two packers of it, merged into one) and values feed two 1x1
    binary convs with it as their shortcut (a block, run tile by tile), concatenated; the head."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((size, size, 3))
    c = width
    x = b.add(
        "conv2d",
        b.input,
        "stem",
        {"stride": [1, 1], "padding": [1, 1, 1, 1], "groups": 1},
        weight=_f32(rng, c, 3, 3, 3),
        bias=_f32(rng, c, low=-0.5, high=0.5),
    )
    x = b.add("relu", x, "stem.relu")
    half = np.arange(c) % 2 == 0
    x = b.add(
        "batch_norm",
        x,
        "stem.bn",
        {"eps": 1e-5},
        mean=np.where(half, 0, _f32(rng, c)).astype(np.float32),
        var=_f32(rng, c, low=0.5, high=2),
        gamma=_f32(rng, c, low=0.5, high=1.5),
        beta=np.where(half, 0, _f32(rng, c)).astype(np.float32),
    )
    s = b.add("pack_signs", x, "b1.sign", {"groups": 1, "zero_to": zero_to})
    conv_attrs = {"in_channels": c, "stride": [1, 1], "groups": 1, "pad_value": pad_value}
    y = b.add("bconv2d", s, "b1.conv3", dict(conv_attrs, padding=[1, 1, 1, 1]), weight_bits=_bits(rng, c, c, 3, 3))
    y = b.add("affine", y, "b1.alpha", scale=_f32(rng, c, low=0.1, high=1))
    y = b.add(
        "batch_norm",
        y,
        "b1.bn",
        {"eps": 1e-5},
        mean=_f32(rng, c),
        var=_f32(rng, c, low=0.5, high=2),
        gamma=_f32(rng, c, low=0.5, high=1.5),
        beta=_f32(rng, c),
    )
    y = b.add("relu", y, "b1.relu")
    outs = []
    for j in range(2):
        sj = b.add("pack_signs", y, f"b1.pw{j}.sign", {"groups": 1, "zero_to": zero_to})
        z = b.add("bconv2d", sj, f"b1.pw{j}", dict(conv_attrs, padding=[0, 0, 0, 0]), weight_bits=_bits(rng, c, c))
        z = b.add("affine", z, f"b1.pw{j}.alpha", scale=_f32(rng, c, low=0.1, high=1))
        outs.append(b.add("add", [z, y], f"b1.add{j}"))
    x = b.add("concat", outs, "b1.concat")
    x = b.add("global_avg_pool", x, "gap")
    x = b.add("dense", x, "fc", weight=_f32(rng, 10, 2 * c), bias=_f32(rng, 10))
    return b.build(x)


def resnet20_by_hand(module):
    """ResNet-20 XNOR written with GraphBuilder as a person would, from the module's parameters:
    sign(ReLU output) as {0, 1} = (1 + S) / 2, option-A shortcuts as slice + channel padding."""
    from xnorinfer.convert._layers import weight_bits
    from xnorinfer.graph import GraphBuilder

    sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    b = GraphBuilder((32, 32, 3))

    def bn(x, name):
        return b.add(
            "batch_norm",
            x,
            name,
            {"eps": 1e-5},
            mean=sd[f"{name}.running_mean"],
            var=sd[f"{name}.running_var"],
            gamma=sd[f"{name}.weight"],
            beta=sd[f"{name}.bias"],
        )

    def binary_conv(x, name, stride):
        w = sd[f"{name}.weight"]
        alpha = np.abs(w).reshape(len(w), -1).max(axis=1)
        signs = np.where(w < 0, -1.0, 1.0).reshape(len(w), -1).sum(axis=1)
        s = b.add("pack_signs", x, f"{name}/sign", {"groups": 1, "zero_to": "minus_one"})
        y = b.add(
            "bconv2d",
            s,
            f"{name}/conv",
            {
                "in_channels": w.shape[1],
                "stride": [stride] * 2,
                "padding": [1] * 4,
                "groups": 1,
                "pad_value": "minus_one",
            },
            weight_bits=weight_bits(w),
        )
        return b.add(
            "affine",
            y,
            name,
            scale=(alpha / 2).astype(np.float32),
            bias=(alpha.astype(np.float64) * signs / 2).astype(np.float32),
        )

    x = b.add("conv2d", b.input, "conv1", {"stride": [1, 1], "padding": [1] * 4}, weight=sd["conv1.weight"])
    x = b.add("relu", bn(x, "bn1"), "relu")
    planes = 16
    for stage, width in enumerate((16, 32, 64), 1):
        for i in range(3):
            p = f"layer{stage}.{i}"
            stride = 2 if stage > 1 and i == 0 else 1
            y = b.add("relu", bn(binary_conv(x, f"{p}.conv1", stride), f"{p}.bn1"), f"{p}/relu")
            y = bn(binary_conv(y, f"{p}.conv2", 1), f"{p}.bn2")
            shortcut = x
            if stride != 1 or planes != width:
                size = 32 // 2 ** (stage - 2)
                shortcut = b.add(
                    "strided_slice",
                    x,
                    f"{p}/sub",
                    {"start": [0, 0, 0], "stop": [size, size, planes], "step": [2, 2, 1]},
                )
                shortcut = b.add(
                    "pad",
                    shortcut,
                    f"{p}/pad",
                    {"before": [0, 0, width // 4], "after": [0, 0, width // 4], "value": 0.0},
                )
            x = b.add("relu", b.add("add", [y, shortcut], f"{p}/add"), f"{p}/out")
            planes = width
    x = b.add(
        "avg_pool2d",
        x,
        "pool",
        {"kernel": [8, 8], "stride": [8, 8], "padding": [0, 0], "ceil_mode": False, "count_include_pad": True},
    )
    x = b.add("flatten", x, "flatten", {"order": "chw"})
    x = b.add("dense", x, "linear", weight=sd["linear.weight"], bias=sd["linear.bias"])
    return xnorinfer.Model(b.build(x))

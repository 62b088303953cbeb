"""Converters from PyTorch checkpoints to xnorinfer models.

    model = xnorinfer.convert.from_torch("model_best.pth.tar", arch="reactnet-a")   # a known architecture
    model = xnorinfer.convert.from_module(my_module, torch.randn(1, 3, 32, 32))     # any binarized module

PyTorch is needed only to read checkpoint files (the `torch` extra); a state_dict of NumPy arrays
converts without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .._version import __version__
from ..model import Model
from . import reactnet, xnornet
from ._checkpoint import ConversionError, StateDict, read_checkpoint
from .torch_module import UnsupportedModuleError, from_module

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@dataclass(frozen=True)
class Arch:
    build: Callable  # (StateDict, input_size) -> (Graph, num_classes)
    input_size: int
    mean: list | None
    std: list | None
    description: str
    resize_ratio: float = 1.0  # shorter side resized to ratio * input size before the centre crop
    normalize_keys: Callable = staticmethod(lambda state: state)


def _xnor(builder, binary):
    return lambda sd, size, centered=True: builder(sd, binary, centered, size)


ARCHS = {
    "reactnet-a": Arch(
        reactnet.build_reactnet_a,
        224,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "ReActNet-A (MobileNetV1-based), official step-2 checkpoint",
        256 / 224,
    ),
    "reactnet-18": Arch(
        reactnet.build_reactnet_18,
        224,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "ReActNet-18 (Bi-Real-Net-18-based), official step-2 checkpoint",
        256 / 224,
    ),
    "xnor-nin": Arch(_xnor(xnornet.build_nin, True), 32, None, None, "XNOR-Net NIN (CIFAR-10), XNOR-Net-PyTorch"),
    "xnor-lenet5": Arch(
        _xnor(xnornet.build_lenet5, True), 28, [0.1307], [0.3081], "XNOR-Net LeNet-5 (MNIST), XNOR-Net-PyTorch"
    ),
    "xnor-alexnet": Arch(
        _xnor(xnornet.build_alexnet, True),
        227,
        IMAGENET_MEAN,
        [1 / 255] * 3,
        "XNOR-Net AlexNet (ImageNet), XNOR-Net-PyTorch",
        256 / 227,
        xnornet.normalize_alexnet_keys,
    ),
    "bwn-nin": Arch(_xnor(xnornet.build_nin, False), 32, None, None, "BWN NIN (CIFAR-10)"),
    "bwn-lenet5": Arch(_xnor(xnornet.build_lenet5, False), 28, [0.1307], [0.3081], "BWN LeNet-5 (MNIST)"),
    "bwn-alexnet": Arch(
        _xnor(xnornet.build_alexnet, False),
        227,
        IMAGENET_MEAN,
        [1 / 255] * 3,
        "BWN AlexNet (ImageNet)",
        256 / 227,
        xnornet.normalize_alexnet_keys,
    ),
}


def from_torch(
    checkpoint,
    arch: str,
    *,
    classes=None,
    input_size: int | None = None,
    mean=None,
    std=None,
    centered: bool = True,
    stem_stride: int = 2,
    dataset: str | None = None,
) -> Model:
    """Convert a PyTorch checkpoint (path, training-checkpoint dict or state_dict) to a Model.

    arch: one of ARCHS. The number of classes comes from the checkpoint's last layer; `classes`
    names them. input_size (square side) defaults to the architecture's, mean/std (per input
    channel, for preprocessing) to its dataset's. centered (XNOR-Net / BWN archs only): binarize
    as XNOR-Net-PyTorch's BinOp (mean-centre and clamp before sign and alpha); False gives plain
    alpha * sign(W). stem_stride (reactnet-a only): 2 as in the official model, 1 for small images;
    reactnet-a's stage widths are read from the checkpoint. Keys must match exactly: every missing,
    misshapen or unexpected key is listed."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; one of: {', '.join(ARCHS)}")
    spec = ARCHS[arch]
    state, source = read_checkpoint(checkpoint)
    sd = StateDict(spec.normalize_keys(state), arch)
    size = spec.input_size if input_size is None else int(input_size)
    if arch.startswith(("xnor-", "bwn-")):
        graph, num_classes = spec.build(sd, size, centered)
    elif arch == "reactnet-a":
        graph, num_classes = spec.build(sd, size, stem_stride)
    else:
        graph, num_classes = spec.build(sd, size)
    sd.finish()
    if classes is None:
        classes = [f"class_{i}" for i in range(num_classes)]
    classes = [str(c) for c in classes]
    if len(classes) != num_classes:
        raise ConversionError(f"{len(classes)} class names given, the checkpoint has {num_classes} classes")
    mean = spec.mean if mean is None else [float(m) for m in mean]
    std = spec.std if std is None else [float(s) for s in std]
    channels = graph.input_shape[2]
    for name, value in (("mean", mean), ("std", std)):
        if value is not None and len(value) != channels:
            raise ConversionError(f"{name} needs {channels} values (one per input channel), got {len(value)}")
    metadata = {
        "arch": arch,
        "description": spec.description,
        "dataset": dataset,
        "num_classes": num_classes,
        "classes": classes,
        "input_size": [channels, size, size],
        "mean": mean,
        "std": std,
        # ImageNet models are evaluated on a centre crop of a larger resize (256 -> 224); a model
        # converted for another input size (e.g. CIFAR's 32) sees the whole image.
        "preprocess": {"resize": round(size * spec.resize_ratio) if size == spec.input_size else size, "crop": size},
        "source": source,
        "converter": f"xnorinfer {__version__}",
    }
    if arch.startswith(("xnor-", "bwn-")):
        metadata["binarization"] = "mean-centred, clamped (XNOR-Net-PyTorch BinOp)" if centered else "alpha * sign(W)"
    return Model(graph, metadata)


__all__ = ["ARCHS", "ConversionError", "UnsupportedModuleError", "from_module", "from_torch"]

"""The BinaryNet MLP of itayhubara/BinaryNet.pytorch (main_mnist.py ``Net``, models/binarized_modules.py).

Facts of the original followed here:
- ``Net``: ``fc1 = BinarizeLinear(784, 2048 * infl_ratio)`` -> ``bn1`` (BatchNorm1d) -> ``htanh1``
  (Hardtanh), twice more with ``fc2``/``fc3`` (a Dropout(0.5) between ``fc3`` and ``bn3``), then a
  float ``fc4 = nn.Linear(.., 10)`` and ``LogSoftmax``; ``infl_ratio = 3``.
- ``BinarizeLinear(nn.Linear)``: the weight used is ``Binarize(W)`` = sign(W) (no scale; sign(0) = 0);
  the input is binarized too unless it has 784 features, so the first layer has binary weights
  but reads the float pixels, and every other binary layer reads sign(hardtanh(.)). The bias is
  added after the product. (The current file leaves ``input_b`` unset on the 784 branch, a
  NameError; the earlier version it came from passes the float input through, as here.)
- ``Binarize`` is a legacy ``InplaceFunction`` with a non-static forward ``output.div(scale).sign()
  .mul(scale)`` (scale 1 unless ``allow_scale``) and a straight-through backward; made static
  here, the one change torch 2.x requires.
- Checkpoints as its main_binary.py writes them: ``{'epoch', 'model', 'config', 'state_dict',
  'best_prec1', 'regime'}`` (main_mnist.py itself saves none).
``width`` (2048) and ``infl_ratio`` (3) size the hidden layers; tests use a narrow net.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.autograd.function import InplaceFunction

__all__ = ["Net", "BinarizeLinear", "Binarize", "binarynet_mlp", "randomize", "save_checkpoint"]


class Binarize(InplaceFunction):
    @staticmethod
    def forward(ctx, input, quant_mode="det", allow_scale=False, inplace=False):
        ctx.inplace = inplace
        if ctx.inplace:
            ctx.mark_dirty(input)
            output = input
        else:
            output = input.clone()
        scale = output.abs().max() if allow_scale else 1
        if quant_mode == "det":
            return output.div(scale).sign().mul(scale)
        return (
            output.div(scale)
            .add_(1)
            .div_(2)
            .add_(torch.rand(output.size()).add(-0.5))
            .clamp_(0, 1)
            .round()
            .mul_(2)
            .add_(-1)
            .mul(scale)
        )

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None, None, None


def binarized(input, quant_mode="det"):
    return Binarize.apply(input, quant_mode)


class BinarizeLinear(nn.Linear):
    def forward(self, input):
        if input.size(1) != 784:
            input_b = binarized(input)
        else:
            input_b = input
        weight_b = binarized(self.weight)
        out = nn.functional.linear(input_b, weight_b)
        if self.bias is not None:
            self.bias.org = self.bias.data.clone()
            out += self.bias.view(1, -1).expand_as(out)
        return out


class Net(nn.Module):
    def __init__(self, infl_ratio=3, width=2048, num_classes=10):
        super().__init__()
        self.infl_ratio = infl_ratio
        h = width * self.infl_ratio
        self.fc1 = BinarizeLinear(784, h)
        self.htanh1 = nn.Hardtanh()
        self.bn1 = nn.BatchNorm1d(h)
        self.fc2 = BinarizeLinear(h, h)
        self.htanh2 = nn.Hardtanh()
        self.bn2 = nn.BatchNorm1d(h)
        self.fc3 = BinarizeLinear(h, h)
        self.htanh3 = nn.Hardtanh()
        self.bn3 = nn.BatchNorm1d(h)
        self.fc4 = nn.Linear(h, num_classes)
        self.logsoftmax = nn.LogSoftmax(dim=1)  # the original's LogSoftmax() picks dim 1 implicitly
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = x.view(-1, 28 * 28)
        x = self.fc1(x)
        x = self.bn1(x)
        x = self.htanh1(x)
        x = self.fc2(x)
        x = self.bn2(x)
        x = self.htanh2(x)
        x = self.fc3(x)
        x = self.drop(x)
        x = self.bn3(x)
        x = self.htanh3(x)
        x = self.fc4(x)
        return self.logsoftmax(x)


def binarynet_mlp(num_classes=10, width=2048, infl_ratio=3):
    return Net(infl_ratio=infl_ratio, width=width, num_classes=num_classes)


@torch.no_grad()
def randomize(model, seed, calibrate=True):
    """Latent weights in [-1, 1] (the training loop clamps them there), biases small, BN affine
    spread and running statistics measured on random normalised 28x28 inputs."""
    from byom._common import (
        calibrate_batch_norm,
        fan_in_normal_,
        generator,
        no_exact_zeros_,
        randomize_batch_norm_affine,
    )

    gen = generator(seed)
    for m in model.modules():
        if isinstance(m, BinarizeLinear):
            m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 2 - 1)
            no_exact_zeros_(m.weight)
        elif isinstance(m, nn.Linear):
            fan_in_normal_(m.weight, gen)
        if isinstance(m, nn.Linear):
            m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    randomize_batch_norm_affine(model, gen)
    if calibrate:
        calibrate_batch_norm(model, (64, 1, 28, 28), gen)
    return model


def save_checkpoint(model, path, best_prec1=96.3):
    """As BinaryNet.pytorch's main_binary.py writes checkpoint.pth.tar."""
    torch.save(
        {
            "epoch": 100,
            "model": "mlp_binary",
            "config": "",
            "state_dict": model.state_dict(),
            "best_prec1": best_prec1,
            "regime": {0: {"optimizer": "Adam", "lr": 5e-3}},
        },
        path,
    )
    return path

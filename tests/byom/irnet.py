"""IR-Net ResNet-20 (1w1a) for CIFAR-10 as htqin/IR-Net writes it (CIFAR-10/ResNet20/1w1a).

Facts of the original followed here:
- ``IRConv2d(nn.Conv2d)``, weights balanced and standardized in ``forward`` (eval too): ``bw = w -
  mean(w[o])``, ``bw = bw / std(bw[o])`` (unbiased), then ``sign(bw)`` times a per-output scale
  ``sw = 2 ** round(log2(mean|bw[o]|))`` (detached); the input is ``sign(a)`` too. Both signs go
  through ``BinaryQuantize``, an autograd Function with static ``forward(ctx, input, k, t)`` =
  ``torch.sign`` and the EDE backward ``k * t * (1 - tanh(input * t)**2) * grad``. ``k`` and ``t``
  are plain tensor attributes the trainer sets each epoch (not in the state_dict); the original
  creates them with ``.cuda()``, here on the CPU.
- ``BasicBlock_1w1a``: ``out = hardtanh(bn1(conv1(x)) + shortcut(x)); out = hardtanh(bn2(conv2(out))
  + out)``: a residual around every binary conv; option-A shortcuts (``LambdaLayer`` with
  ``F.pad(x[:, :, ::2, ::2], ...)``). The binary convs read hardtanh outputs, so their inputs can
  be any value in [-1, 1] (sign(0) = 0 only on exact zeros).
- ``ResNet``: float ``conv1`` -> ``bn1`` -> hardtanh, ``layer1..3``, ``avg_pool2d``, ``bn2``
  (BatchNorm1d(64)) -> ``linear``.
- Checkpoint (its trainer.py, ``model.th``): ``{'state_dict' ('module.' keys: the model is in
  DataParallel), 'best_prec1'}``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.init as init
from torch.autograd import Function

__all__ = ["ResNet", "BasicBlock_1w1a", "IRConv2d", "BinaryQuantize", "resnet20_1w1a", "randomize", "save_checkpoint"]


class BinaryQuantize(Function):
    @staticmethod
    def forward(ctx, input, k, t):
        ctx.save_for_backward(input, k, t)
        return torch.sign(input)

    @staticmethod
    def backward(ctx, grad_output):
        input, k, t = ctx.saved_tensors
        grad_input = k * t * (1 - torch.pow(torch.tanh(input * t), 2)) * grad_output
        return grad_input, None, None


class IRConv2d(nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.k = torch.tensor([10]).float()
        self.t = torch.tensor([0.1]).float()

    def forward(self, input):
        w = self.weight
        a = input
        bw = w - w.view(w.size(0), -1).mean(-1).view(w.size(0), 1, 1, 1)
        bw = bw / bw.view(bw.size(0), -1).std(-1).view(bw.size(0), 1, 1, 1)
        sw = (
            torch.pow(
                torch.tensor([2] * bw.size(0)).float(),
                (torch.log(bw.abs().view(bw.size(0), -1).mean(-1)) / math.log(2)).round().float(),
            )
            .view(bw.size(0), 1, 1, 1)
            .detach()
        )
        bw = BinaryQuantize().apply(bw, self.k, self.t)
        ba = BinaryQuantize().apply(a, self.k, self.t)
        bw = bw * sw
        return F.conv2d(ba, bw, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _weights_init(m):
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        init.kaiming_normal_(m.weight)


class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class BasicBlock_1w1a(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, option="A"):
        super().__init__()
        self.conv1 = IRConv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = IRConv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)
            )

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        out += self.shortcut(x)
        out = F.hardtanh(out)
        x1 = out
        out = self.bn2(self.conv2(out))
        out += x1
        out = F.hardtanh(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10):
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(block, 16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 64, num_blocks[2], stride=2)
        self.bn2 = nn.BatchNorm1d(64)
        self.linear = nn.Linear(64, num_classes)
        self.apply(_weights_init)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.hardtanh(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        out = self.bn2(out)
        return self.linear(out)


def resnet20_1w1a(num_classes=10):
    return ResNet(BasicBlock_1w1a, [3, 3, 3], num_classes)


@torch.no_grad()
def randomize(model, seed, calibrate=True):
    """Latent weights with per-output offsets (which the balancing removes) and scales 1 or 1/2,
    the epoch-end k/t of the trainer's schedule, BN affine spread and calibrated statistics."""
    from byom._common import calibrate_batch_norm, generator, no_exact_zeros_, randomize_batch_norm_affine

    gen = generator(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            init.kaiming_normal_(m.weight, generator=gen)
            if isinstance(m, IRConv2d):
                # some outputs heavy-tailed (most weights near 0): mean|bw| < 2**-0.5 after the
                # standardization, so their scale is 1/2 rather than 1
                o = m.weight.shape[0]
                tails = (torch.rand(o, 1, 1, 1, generator=gen) < 0.3) & (
                    torch.rand(m.weight.shape, generator=gen) < 0.8
                )
                m.weight.mul_(torch.where(tails, 0.05, 1.0))
                m.weight.add_(torch.randn(o, 1, 1, 1, generator=gen) * 0.05)
                m.k, m.t = torch.tensor([1.0]), torch.tensor([10.0])
            no_exact_zeros_(m.weight)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    randomize_batch_norm_affine(model, gen)
    if calibrate:
        calibrate_batch_norm(model, (32, 3, 32, 32), gen)
    return model


def save_checkpoint(model, path, best_prec1=86.5):
    """As IR-Net's trainer.py writes model.th: DataParallel ('module.') keys and best_prec1."""
    state_dict = nn.DataParallel(model).state_dict()
    torch.save({"state_dict": state_dict, "best_prec1": best_prec1}, path)
    return path

"""Bi-Real-Net-18 as liuzechun/Bi-Real-net writes it (pytorch_implementation/BiReal18_34/birealnet.py).

Facts of the original followed here:
- ``BasicBlock``: ``out = bn1(binary_conv(binary_activation(x))) + residual``: one binary 3x3 conv
  per block, and a real-valued shortcut around every one of them; no ReLU/PReLU anywhere after
  the stem. Downsampling blocks take ``downsample = Sequential(AvgPool2d(2, stride), conv1x1
  (float, no bias), BatchNorm2d)`` on the shortcut.
- ``BinaryActivation`` (a Module, not an autograd Function): the piecewise-polynomial
  approximation ``out3`` of sign, returned as ``out_forward.detach() - out3.detach() + out3`` in
  train *and* eval mode. Numerically that is ``(sign(x) - out3) + out3``, which can differ from
  sign(x) by an ulp; sign(0) = 0 passes through as 0.
- ``HardBinaryConv``: a flat ``weights`` parameter (out*in*k*k, 1) viewed as (out, in, k, k);
  ``scaling_factor`` = three nested means of |W| (over kw, kh, in), detached; the conv weight is
  ``(alpha * sign(W)).detach() - clamp(W, -1, 1).detach() + clamp(W, -1, 1)``, again in eval too,
  so the folded weight is alpha * sign(W) up to that subtraction's rounding.
- Stem ``conv1`` 7x7/2 (no bias) -> ``bn1`` -> ``maxpool`` 3/2, no ReLU; ``avgpool`` adaptive, ``fc``.
- Checkpoint (its train.py): model in DataParallel, ``{'epoch', 'state_dict' ('module.' keys),
  'best_top1_acc', 'optimizer'}``.
``base_width`` (64 in the original) narrows every stage for fast tests; the keys do not change.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "BiRealNet",
    "BasicBlock",
    "BinaryActivation",
    "HardBinaryConv",
    "birealnet18",
    "randomize",
    "save_checkpoint",
]


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BinaryActivation(nn.Module):
    def forward(self, x):
        out_forward = torch.sign(x)
        mask1 = x < -1
        mask2 = x < 0
        mask3 = x < 1
        out1 = (-1) * mask1.type(torch.float32) + (x * x + 2 * x) * (1 - mask1.type(torch.float32))
        out2 = out1 * mask2.type(torch.float32) + (-x * x + 2 * x) * (1 - mask2.type(torch.float32))
        out3 = out2 * mask3.type(torch.float32) + 1 * (1 - mask3.type(torch.float32))
        return out_forward.detach() - out3.detach() + out3


class HardBinaryConv(nn.Module):
    def __init__(self, in_chn, out_chn, kernel_size=3, stride=1, padding=1):
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.number_of_weights = in_chn * out_chn * kernel_size * kernel_size
        self.shape = (out_chn, in_chn, kernel_size, kernel_size)
        self.weights = nn.Parameter(torch.rand((self.number_of_weights, 1)) * 0.001, requires_grad=True)

    def forward(self, x):
        real_weights = self.weights.view(self.shape)
        scaling_factor = torch.mean(
            torch.mean(torch.mean(abs(real_weights), dim=3, keepdim=True), dim=2, keepdim=True), dim=1, keepdim=True
        )
        scaling_factor = scaling_factor.detach()
        binary_weights_no_grad = scaling_factor * torch.sign(real_weights)
        cliped_weights = torch.clamp(real_weights, -1.0, 1.0)
        binary_weights = binary_weights_no_grad.detach() - cliped_weights.detach() + cliped_weights
        return F.conv2d(x, binary_weights, stride=self.stride, padding=self.padding)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.binary_activation = BinaryActivation()
        self.binary_conv = HardBinaryConv(inplanes, planes, stride=stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        residual = x
        out = self.binary_activation(x)
        out = self.binary_conv(out)
        out = self.bn1(out)
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        return out


class BiRealNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, base_width=64):
        super().__init__()
        w = base_width
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, w, layers[0])
        self.layer2 = self._make_layer(block, 2 * w, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * w, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * w, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * w * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=stride),
                conv1x1(self.inplanes, planes * block.expansion),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


def birealnet18(pretrained=False, **kwargs):
    return BiRealNet(BasicBlock, [4, 4, 4, 4], **kwargs)


@torch.no_grad()
def randomize(model, seed, input_size=64, calibrate=True):
    """Latent binary weights of trained magnitude (~0.01, a few beyond the clamp), float convs
    fan-in scaled, BN affine spread and running statistics measured on random inputs."""
    from byom._common import (
        calibrate_batch_norm,
        fan_in_normal_,
        generator,
        no_exact_zeros_,
        randomize_batch_norm_affine,
    )

    gen = generator(seed)
    for m in model.modules():
        if isinstance(m, HardBinaryConv):
            w = torch.randn(m.weights.shape, generator=gen) * 0.02
            w[torch.rand(w.shape, generator=gen) < 0.001] *= 80  # a few latent weights past +-1
            m.weights.copy_(w)
            no_exact_zeros_(m.weights)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in_normal_(m.weight, gen)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    randomize_batch_norm_affine(model, gen)
    if calibrate:
        calibrate_batch_norm(model, (8, 3, input_size, input_size), gen)
    return model


def save_checkpoint(model, path):
    """As Bi-Real-net's train.py writes model_best.pth.tar: DataParallel ('module.') keys, epoch,
    best_top1_acc and Adam state, storages tagged cuda:0 (load with map_location="cpu")."""
    from helpers.torch_reference import save_like_training

    save_like_training(model, path, kind="reactnet")
    return path

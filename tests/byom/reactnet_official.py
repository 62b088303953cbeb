"""ReActNet-A as its official code writes it (liuzechun/ReActNet, mobilenet/2_step2/reactnet.py).

tests/helpers/torch_reference.py's ``ReActNetA`` has the same keys and arithmetic but its own class names
and no stem stride; this file follows the official code's shape instead: classes ``reactnet``,
``BasicBlock``, ``firstconv3x3``, ``LearnableBias`` (``x + bias.reshape([-1, 1, 1])``),
``BinaryActivation`` (sign in eval, the polynomial straight-through estimator ``out_forward.detach()
- out3.detach() + out3`` in training) and ``HardBinaryConv`` (flat ``weights`` (O*I*k*k, 1); eval:
``conv2d(x, sign(W)) * alpha`` with alpha = three nested means of |W|; training: the clamp STE
on ``alpha * sign(W)``), a ``feature`` ModuleList, ``pool1``, ``fc``. Blocks go stride 2 where the
width changes, except block 1 (the original's test ``!= 64`` is that rule for its channel list,
written here as ``!= stage_out_channel[1]`` so narrower lists keep the structure).

Extensions for tests, which leave the state_dict layout alone: ``stage_out_channel`` (14 widths,
the official list by default) and ``stem_stride`` (2 as released; 1 for 32x32 images), both of
which the dedicated ``reactnet-a`` converter reads back (widths from the checkpoint, stem_stride
as its argument). Checkpoints are written as its train.py does (DataParallel ``module.`` keys,
``{'epoch', 'state_dict', 'best_top1_acc', 'optimizer'}``, storages tagged cuda:0).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "reactnet",
    "BasicBlock",
    "firstconv3x3",
    "LearnableBias",
    "BinaryActivation",
    "HardBinaryConv",
    "stage_out_channel",
    "small_stage_out_channel",
    "randomize",
    "save_checkpoint",
]

stage_out_channel = [32] + [64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024] * 2
small_stage_out_channel = [8] + [16] + [32] * 2 + [64] * 2 + [128] * 6 + [256] * 2  # same structure, 1/4 wide


def binaryconv3x3(in_planes, out_planes, stride=1):
    return HardBinaryConv(in_planes, out_planes, kernel_size=3, stride=stride, padding=1)


def binaryconv1x1(in_planes, out_planes, stride=1):
    return HardBinaryConv(in_planes, out_planes, kernel_size=1, stride=stride, padding=0)


class firstconv3x3(nn.Module):
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, oup, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(oup)

    def forward(self, x):
        out = self.conv1(x)
        out = self.bn1(out)
        return out


class BinaryActivation(nn.Module):
    def forward(self, x):
        out_forward = torch.sign(x)
        if self.training:
            mask1 = x < -1
            mask2 = x < 0
            mask3 = x < 1
            out1 = (-1) * mask1.type(torch.float32) + (x * x + 2 * x) * (1 - mask1.type(torch.float32))
            out2 = out1 * mask2.type(torch.float32) + (-x * x + 2 * x) * (1 - mask2.type(torch.float32))
            out3 = out2 * mask3.type(torch.float32) + 1 * (1 - mask3.type(torch.float32))
            out = out_forward.detach() - out3.detach() + out3
        else:
            out = out_forward
        return out


class LearnableBias(nn.Module):
    def __init__(self, out_chn):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, out_chn, 1, 1), requires_grad=True)

    def forward(self, x):
        return x + self.bias.reshape([-1, 1, 1])


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
        if self.training:
            scaling_factor = scaling_factor.detach()
            binary_weights_no_grad = scaling_factor * torch.sign(real_weights)
            cliped_weights = torch.clamp(real_weights, -1.0, 1.0)
            binary_weights = binary_weights_no_grad.detach() - cliped_weights.detach() + cliped_weights
        else:
            binary_weights = torch.sign(real_weights)
        y = F.conv2d(x, binary_weights, stride=self.stride, padding=self.padding)
        if not self.training:
            y = y * scaling_factor.reshape([-1, 1, 1])
        return y


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        norm_layer = nn.BatchNorm2d
        self.move11 = LearnableBias(inplanes)
        self.binary_3x3 = binaryconv3x3(inplanes, inplanes, stride=stride)
        self.bn1 = norm_layer(inplanes)
        self.move12 = LearnableBias(inplanes)
        self.prelu1 = nn.PReLU(inplanes)
        self.move13 = LearnableBias(inplanes)
        self.move21 = LearnableBias(inplanes)
        if inplanes == planes:
            self.binary_pw = binaryconv1x1(inplanes, planes)
            self.bn2 = norm_layer(planes)
        else:
            self.binary_pw_down1 = binaryconv1x1(inplanes, inplanes)
            self.binary_pw_down2 = binaryconv1x1(inplanes, inplanes)
            self.bn2_1 = norm_layer(inplanes)
            self.bn2_2 = norm_layer(inplanes)
        self.move22 = LearnableBias(planes)
        self.prelu2 = nn.PReLU(planes)
        self.move23 = LearnableBias(planes)
        self.binary_activation = BinaryActivation()
        self.stride = stride
        self.inplanes = inplanes
        self.planes = planes
        if self.inplanes != self.planes:
            self.pooling = nn.AvgPool2d(2, 2)

    def forward(self, x):
        out1 = self.move11(x)
        out1 = self.binary_activation(out1)
        out1 = self.binary_3x3(out1)
        out1 = self.bn1(out1)
        if self.stride == 2:
            x = self.pooling(x)
        out1 = x + out1
        out1 = self.move12(out1)
        out1 = self.prelu1(out1)
        out1 = self.move13(out1)

        out2 = self.move21(out1)
        out2 = self.binary_activation(out2)
        if self.inplanes == self.planes:
            out2 = self.binary_pw(out2)
            out2 = self.bn2(out2)
            out2 += out1
        else:
            assert self.planes == self.inplanes * 2
            out2_1 = self.binary_pw_down1(out2)
            out2_2 = self.binary_pw_down2(out2)
            out2_1 = self.bn2_1(out2_1)
            out2_2 = self.bn2_2(out2_2)
            out2_1 += out1
            out2_2 += out1
            out2 = torch.cat([out2_1, out2_2], dim=1)
        out2 = self.move22(out2)
        out2 = self.prelu2(out2)
        out2 = self.move23(out2)
        return out2


class reactnet(nn.Module):
    def __init__(self, num_classes=1000, stage_out_channel=stage_out_channel, stem_stride=2):
        super().__init__()
        ch = list(stage_out_channel)
        self.feature = nn.ModuleList()
        for i in range(len(ch)):
            if i == 0:
                self.feature.append(firstconv3x3(3, ch[i], stem_stride))
            elif ch[i - 1] != ch[i] and ch[i] != ch[1]:
                self.feature.append(BasicBlock(ch[i - 1], ch[i], 2))
            else:
                self.feature.append(BasicBlock(ch[i - 1], ch[i], 1))
        self.pool1 = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch[-1], num_classes)

    def forward(self, x):
        for block in self.feature:
            x = block(x)
        x = self.pool1(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


@torch.no_grad()
def randomize(model, seed, input_size=32, calibrate=True):
    """Latent weights of trained magnitude, RPReLU biases and slopes spread, BN affine spread and
    running statistics measured on random inputs."""
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
            m.weights.copy_(torch.randn(m.weights.shape, generator=gen) * 0.05)
            no_exact_zeros_(m.weights)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in_normal_(m.weight, gen)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        elif isinstance(m, LearnableBias):
            m.bias.copy_((torch.rand(m.bias.shape, generator=gen) - 0.5) * 0.6)
        elif isinstance(m, nn.PReLU):
            m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.5)
    randomize_batch_norm_affine(model, gen)
    if calibrate:
        calibrate_batch_norm(model, (8, 3, input_size, input_size), gen)
    return model


def save_checkpoint(model, path):
    """As ReActNet's train.py writes model_best.pth.tar (see helpers.torch_reference.save_like_training)."""
    from helpers.torch_reference import save_like_training

    save_like_training(model, path, kind="reactnet")
    return path

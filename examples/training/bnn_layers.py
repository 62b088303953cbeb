"""Binary layers for training, with the straight-through estimators of the papers. Module and
parameter names follow the reference code (liuzechun/ReActNet, jiecaoyu/XNOR-Net-PyTorch) so the
checkpoints convert with xnorinfer's converters; at eval time they compute exactly what those
converters reproduce."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LearnableBias(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x):
        return x + self.bias


class BinaryActivation(nn.Module):
    """sign(x) forward; in training the gradient of ReActNet's piecewise-quadratic approximation."""

    def forward(self, x):
        out_forward = torch.sign(x)
        if not self.training:
            return out_forward
        x2 = x * x
        approx = torch.where(
            x < -1,
            -torch.ones_like(x),
            torch.where(x < 0, x2 + 2 * x, torch.where(x < 1, -x2 + 2 * x, torch.ones_like(x))),
        )
        return out_forward.detach() - approx.detach() + approx


class HardBinaryConv(nn.Module):
    """ReActNet's binary conv: sign(W) (straight-through, clipped) times alpha = mean|W| per output
    channel, applied after the convolution. Weights stored flat (n, 1) as the MobileNet code does."""

    def __init__(self, in_chn, out_chn, kernel_size=3, stride=1, padding=1):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.shape = (out_chn, in_chn, kernel_size, kernel_size)
        self.weights = nn.Parameter(torch.rand(out_chn * in_chn * kernel_size * kernel_size, 1) * 0.001)

    def forward(self, x):
        w = self.weights.view(self.shape)
        alpha = w.abs().mean(dim=3, keepdim=True).mean(dim=2, keepdim=True).mean(dim=1, keepdim=True).detach()
        if self.training:
            clipped = torch.clamp(w, -1.0, 1.0)
            binary = torch.sign(w).detach() - clipped.detach() + clipped
        else:
            binary = torch.sign(w)
        return F.conv2d(x, binary, stride=self.stride, padding=self.padding) * alpha.view(1, -1, 1, 1)


class ReActBlock(nn.Module):
    """ReActNet-A's block: binary 3x3 conv with (pooled) shortcut, then a binary 1x1 conv, or two
    concatenated ones when the width doubles; RSign and RPReLU around each."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.stride, self.inplanes, self.planes = stride, inplanes, planes
        self.move11 = LearnableBias(inplanes)
        self.binary_3x3 = HardBinaryConv(inplanes, inplanes, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.move12 = LearnableBias(inplanes)
        self.prelu1 = nn.PReLU(inplanes)
        self.move13 = LearnableBias(inplanes)
        self.move21 = LearnableBias(inplanes)
        if inplanes == planes:
            self.binary_pw = HardBinaryConv(inplanes, planes, 1, 1, 0)
            self.bn2 = nn.BatchNorm2d(planes)
        else:
            assert planes == 2 * inplanes
            self.binary_pw_down1 = HardBinaryConv(inplanes, inplanes, 1, 1, 0)
            self.binary_pw_down2 = HardBinaryConv(inplanes, inplanes, 1, 1, 0)
            self.bn2_1 = nn.BatchNorm2d(inplanes)
            self.bn2_2 = nn.BatchNorm2d(inplanes)
        self.move22 = LearnableBias(planes)
        self.prelu2 = nn.PReLU(planes)
        self.move23 = LearnableBias(planes)
        self.binary_activation = BinaryActivation()
        self.pooling = nn.AvgPool2d(2, 2)

    def forward(self, x):
        out1 = self.bn1(self.binary_3x3(self.binary_activation(self.move11(x))))
        if self.stride == 2:
            x = self.pooling(x)
        out1 = self.move13(self.prelu1(self.move12(x + out1)))
        s = self.binary_activation(self.move21(out1))
        if self.inplanes == self.planes:
            out2 = self.bn2(self.binary_pw(s)) + out1
        else:
            out2 = torch.cat(
                [self.bn2_1(self.binary_pw_down1(s)) + out1, self.bn2_2(self.binary_pw_down2(s)) + out1], dim=1
            )
        return self.move23(self.prelu2(self.move22(out2)))


class Stem(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn1(self.conv1(x))


class ReActNetA(nn.Module):
    """ReActNet-A-style network with the official module names; `channels` sets the stage widths
    (block i halves the resolution when the width changes, except block 1)."""

    def __init__(self, channels, num_classes=10, in_channels=3, stem_stride=1):
        super().__init__()
        self.feature = nn.ModuleList([Stem(in_channels, channels[0], stem_stride)])
        for i in range(1, len(channels)):
            stride = 2 if channels[i] != channels[i - 1] and i != 1 else 1
            self.feature.append(ReActBlock(channels[i - 1], channels[i], stride))
        self.pool1 = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, x):
        for block in self.feature:
            x = block(x)
        return self.fc(torch.flatten(self.pool1(x), 1))

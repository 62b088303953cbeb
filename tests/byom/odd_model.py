"""A user's own binary network, written the way people write one-off models: binarization
inline in ``forward`` rather than in named binary modules, and signs in unusual places.

    x  = relu(bn0(conv0(x)))                                   float stem, 32x32
    s  = torch.sign(max_pool2d(x, 3, 1, 1))                    sign of a max-pooled ReLU: {0, 1}
    y1 = bn1(conv2d(s, sign(W1) * alpha1[o], stride 2, pad 1)) per-channel alpha, 16x16
    y1 = channel_shuffle(0.5 * y1, 4)                          scalar scale, then a shuffle
    a  = torch.where(y1 + shift >= 0, 1., -1.)                 a sign with sign(0) = +1
    y2 = bn2(conv2d(a, sign(W2) * alpha2, pad 1))              one alpha for the whole tensor
    y  = cat([y1, y2], 1).mean((2, 3))                         concat, global mean
    out = fc(y)

Checkpoints are what most users write: ``torch.save(model.state_dict(), path)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["OddNet", "odd_net", "randomize", "save_checkpoint"]


def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class OddNet(nn.Module):
    def __init__(self, num_classes=10, width=16):
        super().__init__()
        self.conv0 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(width)
        self.w1 = nn.Parameter(torch.randn(2 * width, width, 3, 3) * 0.05)
        self.bn1 = nn.BatchNorm2d(2 * width)
        self.shift = nn.Parameter(torch.zeros(1, 2 * width, 1, 1))
        self.w2 = nn.Parameter(torch.randn(2 * width, 2 * width, 3, 3) * 0.05)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        x = F.relu(self.bn0(self.conv0(x)))
        s = torch.sign(F.max_pool2d(x, 3, 1, 1))
        alpha1 = self.w1.abs().mean(dim=(1, 2, 3), keepdim=True)
        y1 = self.bn1(F.conv2d(s, self.w1.sign() * alpha1, stride=2, padding=1))
        y1 = channel_shuffle(0.5 * y1, 4)
        a = torch.where(y1 + self.shift >= 0, 1.0, -1.0)
        y2 = self.bn2(F.conv2d(a, self.w2.sign() * self.w2.abs().mean(), padding=1))
        y = torch.cat([y1, y2], 1).mean((2, 3))
        return self.fc(y)


def odd_net(num_classes=10, width=16):
    return OddNet(num_classes, width)


@torch.no_grad()
def randomize(model, seed, calibrate=True):
    from byom._common import (
        calibrate_batch_norm,
        fan_in_normal_,
        generator,
        no_exact_zeros_,
        randomize_batch_norm_affine,
    )

    gen = generator(seed)
    for w in (model.w1, model.w2):
        w.copy_(torch.randn(w.shape, generator=gen) * 0.05)
        no_exact_zeros_(w)
    model.shift.copy_(torch.randn(model.shift.shape, generator=gen) * 0.2)
    fan_in_normal_(model.conv0.weight, gen)
    fan_in_normal_(model.fc.weight, gen)
    model.fc.bias.copy_(torch.randn(model.fc.bias.shape, generator=gen) * 0.1)
    randomize_batch_norm_affine(model, gen)
    if calibrate:
        calibrate_batch_norm(model, (16, 3, 32, 32), gen)
    return model


def save_checkpoint(model, path):
    torch.save(model.state_dict(), path)
    return path

"""XNOR-Net-PyTorch's LeNet-5 (current code: BatchNorm2d(50) before the flatten) for training,
with the module names of the reference so that xnorinfer's xnor-lenet5 / bwn-lenet5 converters
read its checkpoints. The weights are binarized in the forward pass exactly as the reference's
BinOp does before testing (mean-centre over input channels, clamp to [-1, 1], sign times
alpha = mean|W|), with a straight-through gradient to the latent weights."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def binarize_weight(w):
    centred = torch.clamp(w - w.mean(dim=1, keepdim=True), -1.0, 1.0)
    alpha = centred.abs().flatten(1).mean(dim=1).view(-1, *([1] * (w.dim() - 1)))
    return centred + (torch.sign(centred) * alpha - centred).detach()


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() < 1).to(grad.dtype)


class BinConv2d(nn.Module):
    """BN -> sign (skipped for BWN) -> conv or linear with binary weights (+bias) -> ReLU."""

    def __init__(
        self, cin, cout, kernel_size=-1, stride=1, padding=0, linear=False, bn_channels=None, binary_activations=True
    ):
        super().__init__()
        self.is_linear, self.binary_activations = linear, binary_activations
        bn_channels = bn_channels or cin
        self.bn = (nn.BatchNorm2d if bn_channels != cin or not linear else nn.BatchNorm1d)(bn_channels, eps=1e-4)
        if linear:
            self.linear = nn.Linear(cin, cout)
        else:
            self.conv = nn.Conv2d(cin, cout, kernel_size, stride, padding)

    def forward(self, x):
        x = self.bn(x)
        if self.binary_activations:
            x = SignSTE.apply(x)
        if self.is_linear:
            x = x.flatten(1)
            return F.relu(F.linear(x, binarize_weight(self.linear.weight), self.linear.bias))
        return F.relu(
            F.conv2d(x, binarize_weight(self.conv.weight), self.conv.bias, self.conv.stride, self.conv.padding)
        )


class LeNet5(nn.Module):
    """`widths` = (conv1, conv2, hidden): the reference's (20, 50, 500) or a wider variant of the same
    layout (the converters read the widths from the checkpoint)."""

    def __init__(self, num_classes=10, binary_activations=True, widths=(20, 50, 500)):
        super().__init__()
        c1, c2, hidden = widths
        self.conv1 = nn.Conv2d(1, c1, 5)
        self.bn_conv1 = nn.BatchNorm2d(c1, eps=1e-4, affine=False)
        self.bin_conv2 = BinConv2d(c1, c2, 5, binary_activations=binary_activations)
        self.bin_ip1 = BinConv2d(c2 * 4 * 4, hidden, linear=True, bn_channels=c2, binary_activations=binary_activations)
        self.ip2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        with torch.no_grad():  # the reference clamps BN weights in place at every forward
            for m in self.modules():
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.weight is not None:
                    m.weight.clamp_(min=0.01)
        x = F.max_pool2d(F.relu(self.bn_conv1(self.conv1(x))), 2)
        x = F.max_pool2d(self.bin_conv2(x), 2)
        return self.ip2(self.bin_ip1(x))

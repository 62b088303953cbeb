"""PyTorch re-implementations of the reference binary networks whose checkpoints xnorinfer runs.

Written from the facts in ``shared/REFERENCE.md`` (sections 1-4) and from notes on the original code;
nothing is copied from the original repositories.  Every model here has exactly the state_dict keys
(names, order and shapes) of its original, so a state_dict written from these classes looks like one
written by the original training code, and ``save_like_training`` writes whole checkpoint files the
way that code did (``module.`` prefixes, extra dict entries, legacy pickle format, ``cuda:0`` tags).

Models (all float32, CPU):

* ReActNet (liuzechun/ReActNet), with the eval semantics of the current ("NEW") code:
  - ``ReActNetA``   : ``mobilenet/2_step2/reactnet.py``, class ``reactnet``.
  - ``ReActNet18``  : ``resnet/2_step2/birealnet.py``, ``birealnet18`` (Bi-Real-18 based).
  Binary activation = ``torch.sign`` (sign(0) = 0); binary conv = ``conv2d(x, sign(W))`` followed by a
  per-output-channel multiply with ``alpha = mean_in(mean_kh(mean_kw(|W|)))`` (three nested means).
  In training mode the straight-through-estimator forms of the NEW code are used instead.
* XNOR-Net-PyTorch (jiecaoyu/XNOR-Net-PyTorch):
  - ``NIN``         : ``CIFAR_10/models/nin.py`` (attribute ``xnor``, 59 keys).
  - ``LeNet5``      : ``MNIST/models/LeNet_5.py`` (variant "A" = current master, "B" = older commit).
  - ``AlexNetXNOR`` : ``ImageNet/networks/model_list/alexnet.py`` (XNOR version, input 227).
  Weights are binarized outside the modules, as the original ``BinOp.binarization()`` does before
  testing: call ``xnor_binarize_(model)`` after loading or randomizing.  ``binary_activations=False``
  gives the BWN flavour (float activations, same layers and keys).

Helpers: ``xnor_binarize_``, ``randomize_``, ``gridify_`` / ``grid_input`` (parameters and inputs on a
dyadic grid so float32 results can be compared exactly), ``exactness_report`` (checks that claim for
one input) and ``save_like_training``.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)

# ---------------------------------------------------------------------------------------------------
# ReActNet building blocks (shared by reactnet.py and birealnet.py)
# ---------------------------------------------------------------------------------------------------


class LearnableBias(nn.Module):
    """Per-channel additive bias; parameter ``bias`` of shape (1, C, 1, 1), initialised to zeros."""

    def __init__(self, out_chn):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, out_chn, 1, 1))

    def forward(self, x):
        return x + self.bias.expand_as(x)


class BinaryActivation(nn.Module):
    """ReActNet's sign activation.

    Eval (NEW code): exactly ``torch.sign(x)``, so sign(0) = 0.  Training: the piecewise-quadratic
    straight-through estimator ``sign(x).detach() - t.detach() + t``.
    """

    def forward(self, x):
        out_forward = torch.sign(x)
        if not self.training:
            return out_forward
        mask1 = (x < -1).float()
        mask2 = (x < 0).float()
        mask3 = (x < 1).float()
        out1 = (-1) * mask1 + (x * x + 2 * x) * (1 - mask1)
        out2 = out1 * mask2 + (-x * x + 2 * x) * (1 - mask2)
        out3 = out2 * mask3 + 1 * (1 - mask3)
        return out_forward.detach() - out3.detach() + out3


def _nested_mean_abs(w):
    """ReActNet's scaling factor: mean |W| over kw, then kh, then in (three nested means), (out,1,1,1)."""
    return torch.mean(torch.mean(torch.mean(w.abs(), dim=3, keepdim=True), dim=2, keepdim=True),
                      dim=1, keepdim=True)


class HardBinaryConv(nn.Module):
    """ReActNet binary convolution without bias.

    ``flat=True`` (reactnet.py, and birealnet.py of 2020): parameter ``weights`` of shape
    (out*in*k*k, 1), the row-major flattening of (out, in, k, k).  ``flat=False`` (current
    birealnet.py): parameter ``weight`` of shape (out, in, k, k).  Init ``rand * 0.001``.

    Eval (NEW code): ``conv2d(x, sign(W), stride, padding) * alpha`` per output channel, i.e. alpha
    is applied after the conv.  Training: ``conv2d(x, STE(alpha * sign(W)))``.
    """

    def __init__(self, in_chn, out_chn, kernel_size=3, stride=1, padding=1, flat=True):
        super().__init__()
        self.in_chn, self.out_chn = in_chn, out_chn
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.flat = flat
        self.shape = (out_chn, in_chn, kernel_size, kernel_size)
        init = torch.rand(self.shape) * 0.001
        if flat:
            self.weights = nn.Parameter(init.reshape(-1, 1))
        else:
            self.weight = nn.Parameter(init)

    def real_weights(self):
        return self.weights.view(self.shape) if self.flat else self.weight

    def forward(self, x):
        w = self.real_weights()
        scaling_factor = _nested_mean_abs(w)
        if self.training:
            scaling_factor = scaling_factor.detach()
            bw_no_grad = scaling_factor * torch.sign(w)
            cw = torch.clamp(w, -1.0, 1.0)
            bw = bw_no_grad.detach() - cw.detach() + cw
            return F.conv2d(x, bw, stride=self.stride, padding=self.padding)
        y = F.conv2d(x, torch.sign(w), stride=self.stride, padding=self.padding)
        return y * scaling_factor.reshape(1, -1, 1, 1)


# ---------------------------------------------------------------------------------------------------
# ReActNet-A (mobilenet/2_step2/reactnet.py)
# ---------------------------------------------------------------------------------------------------

REACTNET_A_CHANNELS = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]


class FirstConv3x3(nn.Module):
    """ReActNet-A stem (``firstconv3x3``): conv3x3 (no bias, padding 1) -> BN, no activation."""

    def __init__(self, inp, oup, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, oup, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(oup)

    def forward(self, x):
        return self.bn1(self.conv1(x))


class ReActNetABlock(nn.Module):
    """ReActNet-A ``BasicBlock(inplanes, planes, stride)``; registration order = state_dict order.

    Same width: one 1x1 binary conv ``binary_pw`` + ``bn2``.  Doubling (planes == 2*inplanes): two
    1x1 binary convs ``binary_pw_down1/2`` + ``bn2_1/2`` whose outputs (each plus the residual) are
    concatenated.  ``pooling`` (AvgPool2d(2,2)) exists whenever the width changes but is used only
    when stride == 2.
    """

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.inplanes, self.planes, self.stride = inplanes, planes, stride
        self.move11 = LearnableBias(inplanes)
        self.binary_3x3 = HardBinaryConv(inplanes, inplanes, kernel_size=3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.move12 = LearnableBias(inplanes)
        self.prelu1 = nn.PReLU(inplanes)
        self.move13 = LearnableBias(inplanes)
        self.move21 = LearnableBias(inplanes)
        if inplanes == planes:
            self.binary_pw = HardBinaryConv(inplanes, planes, kernel_size=1, stride=1, padding=0)
            self.bn2 = nn.BatchNorm2d(planes)
        else:
            assert planes == inplanes * 2, "ReActNet-A blocks keep or double the width"
            self.binary_pw_down1 = HardBinaryConv(inplanes, inplanes, kernel_size=1, stride=1, padding=0)
            self.binary_pw_down2 = HardBinaryConv(inplanes, inplanes, kernel_size=1, stride=1, padding=0)
            self.bn2_1 = nn.BatchNorm2d(inplanes)
            self.bn2_2 = nn.BatchNorm2d(inplanes)
        self.move22 = LearnableBias(planes)
        self.prelu2 = nn.PReLU(planes)
        self.move23 = LearnableBias(planes)
        self.binary_activation = BinaryActivation()  # one instance, used twice
        if inplanes != planes:
            self.pooling = nn.AvgPool2d(2, 2)

    def forward(self, x):
        out1 = self.bn1(self.binary_3x3(self.binary_activation(self.move11(x))))
        if self.stride == 2:
            x = self.pooling(x)
        out1 = x + out1
        out1 = self.move13(self.prelu1(self.move12(out1)))

        out2 = self.binary_activation(self.move21(out1))
        if self.inplanes == self.planes:
            out2 = self.bn2(self.binary_pw(out2)) + out1
        else:
            out2_1 = self.bn2_1(self.binary_pw_down1(out2)) + out1
            out2_2 = self.bn2_2(self.binary_pw_down2(out2)) + out1
            out2 = torch.cat([out2_1, out2_2], dim=1)
        return self.move23(self.prelu2(self.move22(out2)))


class ReActNetA(nn.Module):
    """ReActNet-A (``reactnet(num_classes)``): ``feature`` ModuleList (stem + blocks), ``pool1``, ``fc``.

    Block i >= 1 goes channels[i-1] -> channels[i] with stride 2 iff the width changes and i != 1
    (the original rule "out != in and out != 64" for the official channel list; block 1 is 32 -> 64
    at stride 1).  ``channels`` may be a narrower list with the same structure, for fast tests.
    Default channels give exactly the 298 state_dict keys of the released checkpoints.
    """

    def __init__(self, num_classes=1000, channels=None):
        super().__init__()
        channels = list(REACTNET_A_CHANNELS if channels is None else channels)
        self.channels = channels
        self.feature = nn.ModuleList()
        for i, cout in enumerate(channels):
            if i == 0:
                self.feature.append(FirstConv3x3(3, cout, 2))
            else:
                cin = channels[i - 1]
                stride = 2 if (cin != cout and i != 1) else 1
                self.feature.append(ReActNetABlock(cin, cout, stride))
        self.pool1 = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, x):
        for block in self.feature:
            x = block(x)
        x = self.pool1(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


# ---------------------------------------------------------------------------------------------------
# ReActNet-18 (resnet/2_step2/birealnet.py)
# ---------------------------------------------------------------------------------------------------


class ReActNet18Block(nn.Module):
    """Bi-Real/ReActNet-18 ``BasicBlock``: one binary 3x3 conv per block.

    ``out = move2(prelu(move1(bn1(binary_conv(sign(move0(x)))) + shortcut)))`` with shortcut =
    ``downsample(x)`` (AvgPool2d(2,2) -> float conv1x1 -> BN) when present, else x.
    """

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, flat_weights=False):
        super().__init__()
        self.move0 = LearnableBias(inplanes)
        self.binary_activation = BinaryActivation()
        self.binary_conv = HardBinaryConv(inplanes, planes, kernel_size=3, stride=stride, padding=1,
                                          flat=flat_weights)
        self.bn1 = nn.BatchNorm2d(planes)
        self.move1 = LearnableBias(planes)
        self.prelu = nn.PReLU(planes)
        self.move2 = LearnableBias(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        residual = x
        out = self.bn1(self.binary_conv(self.binary_activation(self.move0(x))))
        if self.downsample is not None:
            residual = self.downsample(x)
        out = out + residual
        return self.move2(self.prelu(self.move1(out)))


class ReActNet18(nn.Module):
    """ReActNet-ResNet18 (``birealnet18`` = BiRealNet(BasicBlock, [4, 4, 4, 4])).

    Stem conv7x7 s2 p3 (no bias) -> bn1 -> maxpool(3, 2, 1), no ReLU; layer1..layer4 of 4 blocks;
    ``avgpool`` AdaptiveAvgPool2d(1); ``fc``.  ``flat_weights=True`` gives the 2020 key layout
    (``binary_conv.weights`` (N, 1)), False the current one (``binary_conv.weight`` 4-D).
    ``widths`` allows a narrower test variant (default [64, 128, 256, 512]).
    """

    def __init__(self, num_classes=1000, flat_weights=False, widths=None, layers=(4, 4, 4, 4)):
        super().__init__()
        widths = list(widths or [64, 128, 256, 512])
        self.flat_weights = flat_weights
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(widths[0], layers[0], stride=1)
        self.layer2 = self._make_layer(widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=stride),
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=1, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [ReActNet18Block(self.inplanes, planes, stride, downsample, self.flat_weights)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(ReActNet18Block(self.inplanes, planes, flat_weights=self.flat_weights))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


# ---------------------------------------------------------------------------------------------------
# XNOR-Net-PyTorch
# ---------------------------------------------------------------------------------------------------


class BinActive(torch.autograd.Function):
    """XNOR-Net-PyTorch activation: forward ``input.sign()`` (sign(0) = 0, no K scaling); backward
    passes the gradient where |input| < 1."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sign()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[x.ge(1)] = 0
        grad_input[x.le(-1)] = 0
        return grad_input


class BinConv2d(nn.Module):
    """XNOR-Net-PyTorch ``BinConv2d``: ``bn`` (eps 1e-4, affine) -> sign -> [``dropout``] ->
    [flatten if previous_conv] -> ``conv`` / ``linear`` (with bias) -> ReLU.

    ``Linear=True`` uses BatchNorm1d(in) and nn.Linear, except with ``previous_conv=True`` and
    ``size > 0`` (LeNet-5 variant A), where the BN is BatchNorm2d(in // size) on the 4-D map and the
    flatten happens after sign/dropout.  The weights are plain latent weights: binarize them with
    ``xnor_binarize_``.  ``binary_activation=False`` skips the sign (BWN flavour).
    """

    def __init__(self, input_channels, output_channels, kernel_size=-1, stride=-1, padding=-1,
                 dropout=0, Linear=False, previous_conv=False, size=0, groups=1,
                 binary_activation=True):
        super().__init__()
        self.input_channels = input_channels
        self.layer_type = "BinConv2d"
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dropout_ratio = dropout
        self.Linear = Linear
        self.previous_conv = previous_conv
        self.binary_activation = binary_activation
        if not Linear:
            self.bn = nn.BatchNorm2d(input_channels, eps=1e-4, momentum=0.1, affine=True)
        elif previous_conv and size:
            self.bn = nn.BatchNorm2d(int(input_channels / size), eps=1e-4, momentum=0.1, affine=True)
        else:
            self.bn = nn.BatchNorm1d(input_channels, eps=1e-4, momentum=0.1, affine=True)
        if dropout != 0:
            self.dropout = nn.Dropout(dropout)
        if not Linear:
            self.conv = nn.Conv2d(input_channels, output_channels, kernel_size=kernel_size,
                                  stride=stride, padding=padding, groups=groups)
        else:
            self.linear = nn.Linear(input_channels, output_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.bn(x)
        if self.binary_activation:
            x = BinActive.apply(x)
        if self.dropout_ratio != 0:
            x = self.dropout(x)
        if self.previous_conv:
            x = x.view(x.size(0), self.input_channels)
        x = self.conv(x) if not self.Linear else self.linear(x)
        return self.relu(x)


def _clamp_bn_weights(module):
    """NIN / LeNet-5 forward prologue: every affine BatchNorm gamma clamped in place to >= 0.01."""
    for m in module.modules():
        if isinstance(m, _BN_TYPES) and hasattr(m.weight, "data"):
            m.weight.data.clamp_(min=0.01)


class NIN(nn.Module):
    """XNOR-Net-PyTorch CIFAR-10 NIN (``Net``): ``xnor`` Sequential of 16 entries, 59 keys.

    Forward: clamp affine BN gammas to >= 0.01 (in place, eval too), ``xnor``, view (N, classes).
    The final ReLU before the global 8x8 average pool is in the original (logits >= 0).
    """

    bn_weight_clamp = True

    def __init__(self, num_classes=10, binary_activations=True):
        super().__init__()
        self.num_classes = num_classes
        b = dict(binary_activation=binary_activations)
        self.xnor = nn.Sequential(
            nn.Conv2d(3, 192, kernel_size=5, stride=1, padding=2),
            nn.BatchNorm2d(192, eps=1e-4, momentum=0.1, affine=False),
            nn.ReLU(inplace=True),
            BinConv2d(192, 160, kernel_size=1, stride=1, padding=0, **b),
            BinConv2d(160, 96, kernel_size=1, stride=1, padding=0, **b),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            BinConv2d(96, 192, kernel_size=5, stride=1, padding=2, dropout=0.5, **b),
            BinConv2d(192, 192, kernel_size=1, stride=1, padding=0, **b),
            BinConv2d(192, 192, kernel_size=1, stride=1, padding=0, **b),
            nn.AvgPool2d(kernel_size=3, stride=2, padding=1),
            BinConv2d(192, 192, kernel_size=3, stride=1, padding=1, dropout=0.5, **b),
            BinConv2d(192, 192, kernel_size=1, stride=1, padding=0, **b),
            nn.BatchNorm2d(192, eps=1e-4, momentum=0.1, affine=False),
            nn.Conv2d(192, num_classes, kernel_size=1, stride=1, padding=0),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(kernel_size=8, stride=1, padding=0),
        )
        for m in self.modules():  # the original's fresh init
            if isinstance(m, nn.Conv2d):
                m.weight.data.normal_(0, 0.05)
                m.bias.data.zero_()

    def forward(self, x):
        _clamp_bn_weights(self)
        x = self.xnor(x)
        return x.view(x.size(0), self.num_classes)


class LeNet5(nn.Module):
    """XNOR-Net-PyTorch MNIST ``LeNet_5``.

    variant "A" (current code): ``bin_ip1`` = BinConv2d(800, 500, Linear, previous_conv, size=16) with
    BatchNorm2d(50) on the (N, 50, 4, 4) map and the flatten (C, H, W order) after the sign.
    variant "B" (older commit): BatchNorm1d(800), the forward flattens before ``bin_ip1``.
    Forward clamps affine BN gammas to >= 0.01 like NIN.
    """

    bn_weight_clamp = True

    def __init__(self, num_classes=10, variant="A", binary_activations=True, widths=(20, 50, 500)):
        super().__init__()
        assert variant in ("A", "B")
        self.variant = variant
        b = dict(binary_activation=binary_activations)
        c1, c2, hidden = widths  # the reference's are 20, 50, 500; wider ones test the converter's shape reading
        self.conv1 = nn.Conv2d(1, c1, kernel_size=5, stride=1)
        self.bn_conv1 = nn.BatchNorm2d(c1, eps=1e-4, momentum=0.1, affine=False)
        self.relu_conv1 = nn.ReLU(inplace=True)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.bin_conv2 = BinConv2d(c1, c2, kernel_size=5, stride=1, padding=0, **b)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        if variant == "A":
            self.bin_ip1 = BinConv2d(c2 * 4 * 4, hidden, Linear=True, previous_conv=True, size=4 * 4, **b)
        else:
            self.bin_ip1 = BinConv2d(c2 * 4 * 4, hidden, Linear=True, previous_conv=True, **b)
        self.ip2 = nn.Linear(hidden, num_classes)
        for m in self.modules():
            if isinstance(m, _BN_TYPES) and hasattr(m.weight, "data"):
                m.weight.data.fill_(1.0)

    def forward(self, x):
        _clamp_bn_weights(self)
        x = self.pool1(self.relu_conv1(self.bn_conv1(self.conv1(x))))
        x = self.pool2(self.bin_conv2(x))
        if self.variant == "B":
            x = x.view(x.size(0), -1)
        x = self.bin_ip1(x)
        return self.ip2(x)


class AlexNetXNOR(nn.Module):
    """XNOR-Net-PyTorch ImageNet AlexNet (XNOR version, input 227): ``features`` (10 entries) and
    ``classifier`` (5 entries).  No BN clamp.  The original training script wraps only ``features``
    in DataParallel, hence checkpoint keys ``features.module.<i>.*`` (see ``save_like_training``).
    """

    bn_weight_clamp = False

    def __init__(self, num_classes=1000, binary_activations=True):
        super().__init__()
        self.num_classes = num_classes
        b = dict(binary_activation=binary_activations)
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4, padding=0),
            nn.BatchNorm2d(96, eps=1e-4, momentum=0.1, affine=True),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            BinConv2d(96, 256, kernel_size=5, stride=1, padding=2, groups=1, **b),
            nn.MaxPool2d(kernel_size=3, stride=2),
            BinConv2d(256, 384, kernel_size=3, stride=1, padding=1, **b),
            BinConv2d(384, 384, kernel_size=3, stride=1, padding=1, **b),
            BinConv2d(384, 256, kernel_size=3, stride=1, padding=1, **b),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            BinConv2d(256 * 6 * 6, 4096, Linear=True, **b),
            BinConv2d(4096, 4096, dropout=0.5, Linear=True, **b),
            nn.BatchNorm1d(4096, eps=1e-3, momentum=0.1, affine=True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), 256 * 6 * 6)
        return self.classifier(x)


def _xnor_targets(model):
    """The modules BinOp binarizes: Conv2d/Linear in ``model.modules()`` order, minus first and last."""
    targets = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return targets[1:-1]


@torch.no_grad()
def xnor_binarize_(model, centered=True):
    """In place, what XNOR-Net-PyTorch's ``BinOp.binarization()`` does before testing.

    For every Conv2d/Linear except the first and the last (module order): if ``centered``,
    ``W = clamp(W - W.mean(dim=1, keepdim=True), -1, 1)`` (mean over input channels, per (o, kh, kw));
    then ``W = sign(W) * alpha`` with ``alpha[o] = mean |W[o]|``, summed as the original does (L1 over
    kw, sum over kh, sum over in, divide by n).  ``centered=False`` does only the alpha*sign step.
    Biases are untouched.
    """
    for m in _xnor_targets(model):
        w = m.weight.data
        if centered:
            w = w.add(w.mean(dim=1, keepdim=True).neg()).clamp(-1.0, 1.0)
        n = w[0].nelement()
        if w.dim() == 4:
            alpha = w.norm(1, 3, keepdim=True).sum(2, keepdim=True).sum(1, keepdim=True).div(n)
        else:
            alpha = w.norm(1, 1, keepdim=True).div(n)
        m.weight.data.copy_(w.sign() * alpha.expand(w.size()))


# ---------------------------------------------------------------------------------------------------
# Parameter classification shared by randomize_ and gridify_
# ---------------------------------------------------------------------------------------------------

_SIGN_FEEDING_BIASES = ("move11", "move21", "move0")


def _classify(model):
    """Yield (name, module, kind) for every module holding parameters/buffers we set.

    kinds: 'hbconv' (ReActNet latent binary weight), 'xnorw' (XNOR/BWN binarized Conv2d/Linear, with
    its BinConv2d), 'float' (float Conv2d/Linear), 'bn', 'prelu', 'lbias'.
    """
    xnor_ids = set()
    binconv_of = {}
    for m in model.modules():
        if isinstance(m, BinConv2d):
            inner = m.linear if m.Linear else m.conv
            xnor_ids.add(id(inner))
            binconv_of[id(inner)] = m
            binconv_of[id(m.bn)] = m
    for name, m in model.named_modules():
        if isinstance(m, HardBinaryConv):
            yield name, m, "hbconv", None
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            yield name, m, ("xnorw" if id(m) in xnor_ids else "float"), binconv_of.get(id(m))
        elif isinstance(m, _BN_TYPES):
            yield name, m, "bn", binconv_of.get(id(m))
        elif isinstance(m, nn.PReLU):
            yield name, m, "prelu", None
        elif isinstance(m, LearnableBias):
            yield name, m, "lbias", None


def _uniform(gen, shape, lo, hi):
    return torch.rand(shape, generator=gen) * (hi - lo) + lo


def _choice(gen, values, shape):
    values = torch.tensor(values, dtype=torch.float32)
    return values[torch.randint(len(values), tuple(shape), generator=gen)]


@torch.no_grad()
def randomize_(model, seed):
    """Set every parameter and BN buffer to non-trivial random values (deterministic per seed).

    Latent binary weights ~ N(0, 0.5) (never all +-1; the XNOR ones partly beyond +-1 so the clamp
    matters); float conv/linear weights ~ N(0, 1/fan_in); biases ~ N(0, 0.1); BN running_var in
    [0.5, 2], running_mean ~ N(0, 0.5), beta ~ N(0, 0.3), gamma in [0.5, 1.5] with ~20% negative --
    except in models that clamp gammas (NIN, LeNet5): positive, with ~10% of the BinConv2d gammas in
    (-0.5, 0.005) so the 0.01 clamp is exercised.  PReLU slopes in [0, 0.5], LearnableBias in
    [-0.3, 0.3], num_batches_tracked a positive count.
    """
    gen = torch.Generator().manual_seed(seed)
    clamps = getattr(model, "bn_weight_clamp", False)
    for name, m, kind, owner in _classify(model):
        if kind in ("hbconv", "xnorw"):
            w = m.weights if kind == "hbconv" and m.flat else m.weight
            w.copy_(torch.randn(w.shape, generator=gen) * 0.5)
            w[w == 0] = 0.5  # the sampler can return exactly 0, whose sign is 0 in PyTorch and +1 here
            if kind == "xnorw" and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        elif kind == "float":
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / math.sqrt(fan_in))
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        elif kind == "bn":
            c = m.num_features
            m.running_var.copy_(_uniform(gen, (c,), 0.5, 2.0))
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
            if m.num_batches_tracked is not None:
                m.num_batches_tracked.fill_(int(torch.randint(1, 100000, (1,), generator=gen)))
            if m.affine:
                gamma = _uniform(gen, (c,), 0.5, 1.5)
                if clamps:
                    if owner is not None:
                        low = torch.rand(c, generator=gen) < 0.1
                        gamma = torch.where(low, _uniform(gen, (c,), -0.5, 0.005), gamma)
                else:
                    neg = torch.rand(c, generator=gen) < 0.2
                    gamma = torch.where(neg, -gamma, gamma)
                m.weight.copy_(gamma)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.3)
        elif kind == "prelu":
            m.weight.copy_(_uniform(gen, m.weight.shape, 0.0, 0.5))
        elif kind == "lbias":
            m.bias.copy_(_uniform(gen, m.bias.shape, -0.3, 0.3))


# ---------------------------------------------------------------------------------------------------
# Dyadic grid for exact float32 comparisons
# ---------------------------------------------------------------------------------------------------

SIGN_OFFSET_REACTNET = 2.0 ** -16  # added to LearnableBias values feeding a sign (move11/21, move0)
SIGN_OFFSET_XNOR = 2.0 ** -12  # added to BinConv2d BN betas feeding a sign: finer than any grid
# step reaching them (2^-10 after AlexNet's float stem, 2^-9 after NIN's and LeNet's)


def _exact_var(eps, std):
    """A float32 running_var v with float32 sqrt(v + eps) == std exactly (std a power of 2)."""
    v = torch.tensor([std * std - eps], dtype=torch.float32)
    s32 = torch.sqrt(v + eps)
    s64 = torch.sqrt(v.double() + eps).float()
    assert s32.item() == std and s64.item() == std, (eps, std, s32.item(), s64.item())
    return v.item()


def _grid(gen, shape, step, lo, hi):
    """Multiples of ``step`` in [lo, hi]."""
    k = torch.randint(int(round(lo / step)), int(round(hi / step)) + 1, tuple(shape), generator=gen)
    return k.float() * step


def _random_signs(gen, shape):
    return torch.randint(0, 2, tuple(shape), generator=gen).float() * 2 - 1


def _balanced_signs(gen, out, cin, rest):
    """+-1 of shape (out, cin, *rest) with exactly cin/2 of each sign along dim 1 (so the XNOR mean
    over input channels is exactly 0)."""
    assert cin % 2 == 0, "balanced XNOR grid weights need an even input width"
    base = torch.cat([torch.ones(cin // 2), -torch.ones(cin // 2)])
    keys = torch.rand((out, *rest, cin), generator=gen)
    perm = keys.argsort(dim=-1)
    s = base[perm]  # (out, *rest, cin)
    return s.movedim(-1, 1).contiguous()


_BN_OF_BINARY_CONV = {"binary_3x3": "bn1", "binary_pw": "bn2", "binary_pw_down1": "bn2_1",
                      "binary_pw_down2": "bn2_2", "binary_conv": "bn1"}


def _set_bn_(m, gen, stds, gamma_abs, clamps, beta_offset=0.0, mean_step=None):
    """Grid values for one BN layer: per channel std (tensor of powers of 2), |gamma|."""
    c = m.num_features
    var = {s: _exact_var(m.eps, s) for s in set(stds.tolist())}
    m.running_var.copy_(torch.tensor([var[s] for s in stds.tolist()]))
    if mean_step is None:
        m.running_mean.copy_(_grid(gen, (c,), 0.125, -2.0, 2.0))
    else:  # multiples of mean_step[c] within [-2, 2]
        k = torch.randint(-4, 5, (c,), generator=gen).float()
        m.running_mean.copy_((k * mean_step).clamp(-2.0, 2.0))
    if m.affine:
        gamma = gamma_abs if clamps else gamma_abs * _random_signs(gen, (c,))
        m.weight.copy_(gamma)
        m.bias.copy_(_grid(gen, (c,), 0.125, -2.0, 2.0) + beta_offset)
    assert torch.equal(torch.sqrt(m.running_var + m.eps), stds), "BN sqrt(var + eps) is not exact"


@torch.no_grad()
def gridify_(model, seed, prelu_slopes=(0.0, 1.0), bn_stds=(0.5, 1.0, 2.0), bn_gammas=(0.5, 1.0, 2.0),
             binary_bn_step=1.0 / 32, ternary_float=True):
    """Put every parameter on a coarse dyadic grid so float32 results can be compared exactly.

    Every value is a small multiple of a power of 2, every BN divides by an exact power of 2, and no
    sign ever sees 0, so with ``grid_input`` inputs the float32 forward is exact: no rounding in
    PyTorch, nor in an engine that sums or fuses in another order.  ``exactness_report`` checks this
    for a given model and input.  Rules:

    - Latent binary weights (ReActNet HardBinaryConv): per output channel one magnitude in
      {1/4, 1/2, 1} with random signs, so alpha is exactly that magnitude and no weight is 0.
    - XNOR/BWN binarized weights: the same, with exactly half of each sign along the input dim, so the
      XNOR mean-centering subtracts exactly 0 and ``xnor_binarize_`` (either flavour) yields +-m.
    - BN: running_var such that float32 sqrt(var + eps) is exactly a power of 2 (asserted, also with
      the sum and root taken in float64); gamma in +-``bn_gammas`` (positive only in the models that
      clamp gammas to >= 0.01); beta multiples of 1/8 in [-2, 2].
        * XNOR/BWN BNs: std in ``bn_stds`` (raised to |gamma| in the affine BNs outside a
          BinConv2d, AlexNet's features.1 and classifier.2, so |gamma| / std <= 1 and the float
          classifier's sums keep headroom), running_mean multiples of 1/8 in [-2, 2].
        * ReActNet BN right after a binary conv: std = |gamma| * alpha / binary_bn_step (4..64 by
          default; real ones are of the order of sqrt(9 * C)), running_mean a multiple of alpha,
          so the BN maps the integer sum n to +-binary_bn_step * n + a multiple of binary_bn_step.
        * ReActNet BN after a float conv (stem, downsample): |gamma| / std = 1.
    - Float conv/linear weights: multiples of 1/8 in [-1, 1]; all biases multiples of 1/8 in [-1, 1].
      In the ReActNets with ``ternary_float`` (default) they are instead ternary, one magnitude per
      layer: the stem {0, +-8*binary_bn_step} (2/3 nonzero), downsample 1x1 convs and fc {0, +-1/2}
      with about 4 nonzeros per output.  Dense 1/8-grid weights there (``ternary_float=False``) make
      the residual stream and fc sums need more than float32's 24 bits at full width.
    - PReLU slopes from ``prelu_slopes``.  The default {0, 1} leaves 0.5 out: each 0.5 slope on a
      residual-stream channel costs another mantissa bit, and ReActNet-A has 26 PReLUs in series
      (with 0.5 the full models stop being exact).
    - Values that feed a sign carry an offset finer than any grid step reaching them, so the sign
      input is never 0: LearnableBias move11/move21/move0 = k/8 + 2^-16 (other LearnableBias k/8, in
      [-0.5, 0.5]); the BN beta of a binarizing BinConv2d = k/8 + 2^-12.

    Exact results need ``grid_input`` values and an input size whose final global average pool
    covers a power-of-2 number of pixels: 32x32 or 64x64 for the ReActNets (not 224: 7x7), 32x32 for
    NIN, 28x28 for LeNet5, 227x227 for AlexNet.  NIN's inner AvgPool2d(3) divides by 9 and is not
    exact, but it only feeds BN -> sign, whose thresholds stay >= ~2^-12 away (see
    ``exactness_report``).  BWN nets keep float activations through every layer and are not exact
    in general; their parameters are still on the grid.
    """
    gen = torch.Generator().manual_seed(seed)
    clamps = getattr(model, "bn_weight_clamp", False)
    binary_alpha = {}  # name of the BN following a HardBinaryConv -> that conv's alpha per channel
    reactnet = any(isinstance(m, HardBinaryConv) for m in model.modules())
    first_float = [n for n, m, k, _ in _classify(model) if k == "float"][:1]
    bn_gammas = torch.tensor(bn_gammas, dtype=torch.float32)
    for name, m, kind, owner in _classify(model):
        if kind in ("hbconv", "xnorw"):
            w = m.weights if kind == "hbconv" and m.flat else m.weight
            shape4 = m.shape if kind == "hbconv" else tuple(m.weight.shape)
            out, cin, rest = shape4[0], shape4[1], tuple(shape4[2:])
            mag = _choice(gen, (0.25, 0.5, 1.0), (out,))
            if kind == "xnorw":
                signs = _balanced_signs(gen, out, cin, rest)
            else:
                signs = _random_signs(gen, shape4)
                prefix, _, leaf = name.rpartition(".")
                binary_alpha[f"{prefix}.{_BN_OF_BINARY_CONV[leaf]}" if prefix else
                             _BN_OF_BINARY_CONV[leaf]] = mag
            w.copy_((signs * mag.view(out, *([1] * len(rest + (cin,))))).reshape(w.shape))
            if kind == "xnorw" and m.bias is not None:
                m.bias.copy_(_grid(gen, m.bias.shape, 0.125, -1.0, 1.0))
        elif kind == "float":
            if reactnet and ternary_float:
                fan_in = m.weight[0].numel()
                first = name in first_float
                mag = 8 * binary_bn_step if first else 0.5
                density = 2.0 / 3 if first else min(1.0, 4.0 / fan_in)
                keep = torch.rand(m.weight.shape, generator=gen) < density
                w = _random_signs(gen, m.weight.shape) * keep * mag
            else:
                w = _grid(gen, m.weight.shape, 0.125, -1.0, 1.0)
            m.weight.copy_(w)
            if m.bias is not None:
                m.bias.copy_(_grid(gen, m.bias.shape, 0.125, -1.0, 1.0))
        elif kind == "bn":
            c = m.num_features
            gamma_abs = bn_gammas[torch.randint(len(bn_gammas), (c,), generator=gen)]
            if name in binary_alpha:
                alpha = binary_alpha[name]
                stds = gamma_abs * alpha / binary_bn_step
                _set_bn_(m, gen, stds, gamma_abs, clamps, mean_step=alpha)
            elif reactnet:  # stem / downsample BN: scale +-1
                _set_bn_(m, gen, gamma_abs.clone(), gamma_abs, clamps)
            else:
                stds = _choice(gen, bn_stds, (c,))
                if owner is None and m.affine:  # AlexNet features.1, classifier.2: |scale| <= 1
                    stds = torch.maximum(stds, gamma_abs)
                offset = SIGN_OFFSET_XNOR if owner is not None and owner.binary_activation else 0.0
                _set_bn_(m, gen, stds, gamma_abs, clamps, beta_offset=offset)
        elif kind == "prelu":
            m.weight.copy_(_choice(gen, prelu_slopes, m.weight.shape))
        elif kind == "lbias":
            b = _grid(gen, m.bias.shape, 0.125, -0.5, 0.5)
            if name.rsplit(".", 1)[-1] in _SIGN_FEEDING_BIASES:
                b = b + SIGN_OFFSET_REACTNET
            m.bias.copy_(b)


def grid_input(shape, seed):
    """float32 tensor of the given shape with values k/8, k an integer in [-16, 16]."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-16, 17, tuple(shape), generator=gen).float() / 8


def _low_log2(t):
    """log2 of the finest lowest set bit among the nonzero finite values of t (None if none)."""
    v = t.detach().double().flatten()
    v = v[(v != 0) & torch.isfinite(v)]
    if v.numel() == 0:
        return None
    mant, exp = torch.frexp(v.abs())
    mi = (mant * 2.0 ** 53).long()
    return ((mi & -mi).double().log2() + exp.double() - 53).min().item()


def _grid_bits(t, low=None):
    """Mantissa bits needed to hold every value of t on one common dyadic grid: log2(max |t|) minus
    log2(grid step), the step being the finest lowest set bit of t unless ``low`` (its log2) is given.
    None when t holds no nonzero finite value."""
    low = _low_log2(t) if low is None else low
    v = t.detach().double().abs()
    v = v[torch.isfinite(v)]
    if low is None or v.numel() == 0 or v.max() == 0:
        return None
    return int(math.floor(v.max().log2().item()) - low) + 1


def _accum_bits(mod, x):
    """Worst case over all summation orders of a float Conv2d/Linear/average pool: bits of
    sum(|products|) on the grid of the products (None when the layer sees no nonzero input)."""
    x = x.detach()
    lx = _low_log2(x)
    if lx is None:
        return None
    if isinstance(mod, (nn.Conv2d, nn.Linear)):
        lw = _low_log2(mod.weight)
        if lw is None:
            return None
        if isinstance(mod, nn.Conv2d):
            s = F.conv2d(x.abs(), mod.weight.abs(), None, mod.stride, mod.padding, mod.dilation,
                         mod.groups)
        else:
            s = F.linear(x.abs(), mod.weight.abs())
        low = lx + lw
        if mod.bias is not None:
            s = s + mod.bias.abs().view(1, -1, *([1] * (s.dim() - 2)))
            lb = _low_log2(mod.bias)
            low = low if lb is None else min(low, lb)
        return _grid_bits(s, low)
    if isinstance(mod, nn.AvgPool2d):
        k = mod.kernel_size if isinstance(mod.kernel_size, int) else mod.kernel_size[0]
        return _grid_bits(F.avg_pool2d(x.abs(), mod.kernel_size, mod.stride, mod.padding) * k * k, lx)
    if isinstance(mod, nn.AdaptiveAvgPool2d):
        return _grid_bits(x.abs().sum(dim=(2, 3)), lx)
    return None


def _feeds_sign_only(model):
    """Names of Sequential entries whose successor is a binarizing BinConv2d (BN -> sign)."""
    names = set()
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Sequential):
            kids = list(mod.named_children())
            for (n, _), (_, nxt) in zip(kids, kids[1:]):
                if isinstance(nxt, BinConv2d) and nxt.binary_activation:
                    names.add(f"{name}.{n}" if name else n)
    return names


@torch.no_grad()
def exactness_report(model, x):
    """Check, for one input, that the float32 forward of ``model`` (eval) is exact.

    Runs the model in float32 and a float64 copy side by side, recording every leaf module's output
    and every sign input.  The copy's BNs divide by exactly the float32 sqrt(var + eps) (eps 0,
    running_var = that root squared), i.e. the ideal BN an engine computes when sqrt is exact.
    Outputs that only feed a sign (move11/move21/move0, a binarizing BinConv2d's ``bn``) are checked
    through their sign decisions only.  Returns a dict:
      ``exact``: output_exact, no inexact module, no sign mismatch, no sign input equal to 0;
      ``any_order``: exact, and max_bits and accum_bits <= 24, so no float32 summation order or
        fusion of these ops can round (the conditions are tensor-wide, hence conservative);
      ``output_exact``: float32 output == float64 output (the latter representable in float32);
      ``inexact``: names of modules whose float64 output differs from the float32 one;
      ``sign_only_inexact``: the same for modules whose output only feeds a BN -> sign (NIN's
        AvgPool2d(3) divides by 9: with ``gridify_`` the BN -> sign thresholds sit >= ~2^-12 away from
        any pooled value, far beyond a float32 rounding of it, so these do not count against exact);
      ``max_bits``: the most mantissa bits a recorded module output needs on a common grid;
      ``accum_bits``: the most bits a float conv/linear/average pool needs for sum(|terms|) on the
        grid of its terms (a bound on every partial sum, in any order);
      ``min_sign_input``: the smallest |value| reaching a sign;
      ``sign_mismatch``: number of sign decisions that differ between float32 and float64.
    """
    m32 = model.eval()
    m64 = copy.deepcopy(model).double().eval()
    for bn in m64.modules():
        if isinstance(bn, _BN_TYPES) and bn.running_var is not None:
            std = torch.sqrt(bn.running_var.float() + bn.eps).double()
            bn.running_var.copy_(std * std)
            bn.eps = 0.0

    def record(net, accum=None):
        outs, signs = OrderedDict(), []
        handles = []
        for name, mod in net.named_modules():
            if isinstance(mod, BinaryActivation):
                handles.append(mod.register_forward_pre_hook(
                    lambda _m, inp: signs.append(inp[0].detach().clone())))
            elif isinstance(mod, BinConv2d) and mod.binary_activation:
                handles.append(mod.bn.register_forward_hook(
                    lambda _m, _i, out: signs.append(out.detach().clone())))
            if accum is not None and isinstance(mod, (nn.Conv2d, nn.Linear, nn.AvgPool2d,
                                                      nn.AdaptiveAvgPool2d)):
                handles.append(mod.register_forward_pre_hook(
                    lambda m_, inp: accum.append(_accum_bits(m_, inp[0]))))
            parent, _, leaf = name.rpartition(".")
            sign_only = (leaf in _SIGN_FEEDING_BIASES
                         or (leaf == "bn" and isinstance(net.get_submodule(parent), BinConv2d)
                             and net.get_submodule(parent).binary_activation))
            if len(list(mod.children())) == 0 and not sign_only:
                def hook(_m, _i, out, name=name):
                    key, k = name, 1
                    while key in outs:
                        k += 1
                        key = f"{name}#{k}"
                    outs[key] = out.detach().clone()
                handles.append(mod.register_forward_hook(hook))
        return outs, signs, handles

    accum = []
    o32, s32, h32 = record(m32)
    o64, s64, h64 = record(m64, accum)
    try:
        y32 = m32(x.float())
        y64 = m64(x.double())
    finally:
        for h in h32 + h64:
            h.remove()
    inexact = [k for k in o64 if not torch.equal(o64[k].float().double(), o64[k])
               or not torch.equal(o64[k].float(), o32[k])]
    feeds_sign = _feeds_sign_only(model)
    sign_only_inexact = [k for k in inexact if k.split("#")[0] in feeds_sign]
    inexact = [k for k in inexact if k not in sign_only_inexact]
    bits = [b for b in (_grid_bits(t) for k, t in o64.items()
                        if k not in inexact and k not in sign_only_inexact) if b is not None]
    accum = [b for b in accum if b is not None]
    min_sign = min((t.abs().min().item() for t in s64), default=float("inf"))
    mismatch = sum(int((torch.sign(a.double()) != torch.sign(b)).sum()) for a, b in zip(s32, s64))
    output_exact = bool(torch.equal(y64.float().double(), y64) and torch.equal(y64.float(), y32))
    rep = {
        "output_exact": output_exact,
        "inexact": inexact,
        "sign_only_inexact": sign_only_inexact,
        "max_bits": max(bits, default=0),
        "accum_bits": max(accum, default=0),
        "min_sign_input": min_sign,
        "sign_mismatch": mismatch,
    }
    rep["exact"] = output_exact and not inexact and mismatch == 0 and min_sign > 0
    rep["any_order"] = rep["exact"] and rep["max_bits"] <= 24 and rep["accum_bits"] <= 24
    return rep


# ---------------------------------------------------------------------------------------------------
# Checkpoints written the way the original training scripts wrote them
# ---------------------------------------------------------------------------------------------------


def _cuda_tag(storage):
    if storage.device.type == "cpu":
        return "cuda:0"
    return None


def _cuda_untag(storage, location):
    if location.startswith("cuda"):
        return storage
    return None


def _strip_nbt(sd):
    return OrderedDict((k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked"))


def _adam_state(params, populate):
    params = list(params)
    opt = torch.optim.Adam(params)
    if populate:  # one Adam step with zero gradients: fills exp_avg/exp_avg_sq/step, moves nothing
        old = [p.grad for p in params]
        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()
        for p, g in zip(params, old):
            p.grad = g
    return opt.state_dict()


def save_like_training(model, path, kind="reactnet", legacy=False, cuda_tags=True,
                       strip_num_batches_tracked=False, optimizer_state=False):
    """Write ``model`` as the original training code wrote its checkpoints.

    kind:
      'reactnet' (both ReActNets' train.py): model wrapped in nn.DataParallel, so keys get ``module.``;
        ``{'epoch': 7, 'state_dict', 'best_top1_acc': tensor(61.2), 'optimizer': Adam state}``.
      'nin' (CIFAR main.py, prefix stripped): ``{'best_acc': 86.3, 'state_dict'}``.
      'lenet' (MNIST main.py): ``{'acc': 99.1, 'state_dict'}``.
      'alexnet' (ImageNet main.py, only ``features`` DataParallel-wrapped): keys
        ``features.module.<i>.*`` and ``classifier.<i>.*``;
        ``{'epoch': 7, 'arch': 'alexnet', 'state_dict', 'best_prec1': 44.1, 'optimizer'}``.
    legacy: write the pre-1.6 pickle format (``_use_new_zipfile_serialization=False``).
    cuda_tags: give every storage the location tag 'cuda:0', as a GPU-trained checkpoint has, without
      a GPU (a tagger registered with torch.serialization only for the duration of the save).  Such
      files load with ``torch.load(path, map_location='cpu', weights_only=True)``.
    strip_num_batches_tracked: drop those keys, as in 2017-era files.
    optimizer_state: fill the Adam state (exp_avg etc.) as a trained checkpoint has; default empty.
    """
    if kind == "reactnet":
        dp = nn.DataParallel(model)
        sd = dp.state_dict()
        ckpt = {"epoch": 7, "state_dict": None, "best_top1_acc": torch.tensor(61.2),
                "optimizer": _adam_state(dp.parameters(), optimizer_state)}
    elif kind == "nin":
        sd = model.state_dict()
        ckpt = {"best_acc": 86.3, "state_dict": None}
    elif kind == "lenet":
        sd = model.state_dict()
        ckpt = {"acc": 99.1, "state_dict": None}
    elif kind == "alexnet":
        features = model.features
        model.features = nn.DataParallel(features)
        try:
            sd = model.state_dict()
            opt = _adam_state(model.parameters(), optimizer_state)
        finally:
            model.features = features
        ckpt = {"epoch": 7, "arch": "alexnet", "state_dict": None, "best_prec1": 44.1, "optimizer": opt}
    else:
        raise ValueError(f"unknown checkpoint kind {kind!r}")
    if strip_num_batches_tracked:
        sd = _strip_nbt(sd)
    ckpt["state_dict"] = sd

    entry = None
    if cuda_tags:
        used = {p for p, _, _ in torch.serialization._package_registry}
        priority = min(used) - 1  # runs before the CPU tagger (priority 10)
        entry = (priority, _cuda_tag, _cuda_untag)
        torch.serialization.register_package(*entry)
    try:
        torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    finally:
        if entry is not None:
            torch.serialization._package_registry.remove(entry)

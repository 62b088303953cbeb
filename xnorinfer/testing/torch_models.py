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

Helpers: ``xnor_binarize_`` and ``randomize_``. Needs torch. In the package (not only in tests/) because
``xnorinfer bench`` runs these models against the engine; the test suite's exact-comparison helpers
build on them in tests/helpers/torch_reference.py.
"""

from __future__ import annotations

import math

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
    return torch.mean(torch.mean(torch.mean(w.abs(), dim=3, keepdim=True), dim=2, keepdim=True), dim=1, keepdim=True)


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
        self.binary_conv = HardBinaryConv(inplanes, planes, kernel_size=3, stride=stride, padding=1, flat=flat_weights)
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

    def __init__(
        self,
        input_channels,
        output_channels,
        kernel_size=-1,
        stride=-1,
        padding=-1,
        dropout=0,
        Linear=False,
        previous_conv=False,
        size=0,
        groups=1,
        binary_activation=True,
    ):
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
            self.conv = nn.Conv2d(
                input_channels, output_channels, kernel_size=kernel_size, stride=stride, padding=padding, groups=groups
            )
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
    for _name, m, kind, owner in _classify(model):
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

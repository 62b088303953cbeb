"""ResNet-20 for CIFAR-10 as the XNOR-Net-PyTorch forks write it (BWN and XNOR flavours).

The structure follows the CIFAR ResNet most of those forks start from (akamaster's
pytorch_resnet_cifar10 layout: ``conv1``/``bn1`` stem, ``layer1..3`` of three ``BasicBlock``s,
``linear``, option-A shortcuts by a ``LambdaLayer``), with every block conv replaced by a
``BinConv2d`` that subclasses ``nn.Conv2d`` (so the state_dict keys stay the float model's) and,
in the XNOR flavour, takes ``BinActive`` (sign) of its input first. Each block is

    out = relu(bn1(conv1(x))); out = bn2(conv2(out)); out += shortcut(x); out = relu(out)

so every binary conv reads the sign of a ReLU output: its activations are {0, +1} in PyTorch
(sign(0) = 0), not {-1, +1}. The stem conv and the classifier stay float.

Weights are binarized outside the modules, as jiecaoyu/XNOR-Net-PyTorch's ``util.BinOp`` does
(the ImageNet variant, which also covers Linear layers): before each forward in training and
before testing, every Conv2d/Linear but the first and the last is mean-centred over its input
channels, clamped to [-1, 1], saved, and replaced in place by ``alpha[o] * sign(W)``;
``restore()`` puts the saved latent weights back. The torch calls are made in BinOp's order, so
the rounding is the same. Checkpoints are written as that code's CIFAR ``main.py`` writes them:
``{'best_acc': float, 'state_dict'}`` with any ``module.`` prefix removed, holding the latent
(centred, clamped) weights of the last ``restore()``.

    model = resnet20_xnor(); model.load_state_dict(torch.load(p, weights_only=True)["state_dict"])
    bin_op = prepare(model); logits = model(x)     # prepare = eval() + BinOp(model).binarization()

The model code imports only torch, so the file also loads by path, as a user's model file would
(``xnorinfer import tests/byom/xnor_resnet.py:resnet20_xnor``); the test helpers (``randomize``)
need ``tests/`` on sys.path.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.init as init

__all__ = [
    "ResNet",
    "BasicBlock",
    "BinConv2d",
    "BinActive",
    "BinOp",
    "resnet20_xnor",
    "resnet20_bwn",
    "prepare",
    "randomize",
    "save_checkpoint",
]


class BinActive(torch.autograd.Function):
    """sign(x) forward (sign(0) = 0); the straight-through gradient, cut where |x| >= 1."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.sign()

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input.ge(1)] = 0
        grad_input[input.le(-1)] = 0
        return grad_input


class BinConv2d(nn.Conv2d):
    """A Conv2d whose weight BinOp binarizes; binary_activation=True (XNOR) signs the input too."""

    def __init__(self, in_planes, planes, kernel_size=3, stride=1, padding=1, bias=False, binary_activation=True):
        super().__init__(in_planes, planes, kernel_size=kernel_size, stride=stride, padding=padding, bias=bias)
        self.binary_activation = binary_activation

    def forward(self, input):
        if self.binary_activation:
            input = BinActive.apply(input)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding)


def _weights_init(m):
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        init.kaiming_normal_(m.weight)


class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, binary_activation=True):
        super().__init__()
        self.conv1 = BinConv2d(in_planes, planes, 3, stride, 1, binary_activation=binary_activation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = BinConv2d(planes, planes, 3, 1, 1, binary_activation=binary_activation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            # option A: the identity, subsampled, with the new channels zero-padded
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10, binary_activation=True):
        super().__init__()
        self.in_planes = 16
        self.binary_activation = binary_activation
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(block, 16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 64, num_blocks[2], stride=2)
        self.linear = nn.Linear(64, num_classes)
        self.apply(_weights_init)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s, binary_activation=self.binary_activation))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.linear(out)


def resnet20_xnor(num_classes=10):
    """Binary weights and binary activations (sign of each block conv's input)."""
    return ResNet(BasicBlock, [3, 3, 3], num_classes, binary_activation=True)


def resnet20_bwn(num_classes=10):
    """Binary weights, float activations."""
    return ResNet(BasicBlock, [3, 3, 3], num_classes, binary_activation=False)


class BinOp:
    """XNOR-Net-PyTorch's weight binarizer: every Conv2d/Linear in module order but the first and
    the last. Each step is one torch call chain in the original's order (mean over dim 1, negated
    and added; clamp; per-output L1 as norm over the last dim then sums), so the float32 results,
    signs of near-zero centred weights included, are the original's."""

    def __init__(self, model):
        targets = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        self.target_modules = [m.weight for m in targets[1:-1]]
        self.saved_params = [w.data.clone() for w in self.target_modules]
        self.num_of_params = len(self.target_modules)

    def binarization(self):
        self.meancenterConvParams()
        self.clampConvParams()
        self.save_params()
        self.binarizeConvParams()

    def meancenterConvParams(self):
        for w in self.target_modules:
            neg_mean = w.data.mean(1, keepdim=True).mul(-1).expand_as(w.data)
            w.data = w.data.add(neg_mean)

    def clampConvParams(self):
        for w in self.target_modules:
            w.data = w.data.clamp(-1.0, 1.0)

    def save_params(self):
        for saved, w in zip(self.saved_params, self.target_modules):
            saved.copy_(w.data)

    @staticmethod
    def alpha(weight):
        """mean |W[o]| per output, summed in the original's order."""
        n = weight[0].nelement()
        if weight.dim() == 4:
            return weight.norm(1, 3, keepdim=True).sum(2, keepdim=True).sum(1, keepdim=True).div(n)
        return weight.norm(1, 1, keepdim=True).div(n)

    def binarizeConvParams(self):
        for w in self.target_modules:
            w.data = w.data.sign().mul(self.alpha(w.data).expand(w.data.size()))

    def restore(self):
        for saved, w in zip(self.saved_params, self.target_modules):
            w.data.copy_(saved)

    def updateBinaryGradWeight(self):
        """The gradient of alpha * sign(W) w.r.t. the latent W (XNOR-Net-PyTorch's estimate)."""
        for w in self.target_modules:
            weight, s = w.data, w.data.size()
            n = weight[0].nelement()
            m = self.alpha(weight).expand(s).clone()
            m[weight.lt(-1.0)] = 0
            m[weight.gt(1.0)] = 0
            m = m.mul(w.grad.data)
            m_add = weight.sign().mul(w.grad.data)
            dims = tuple(range(1, weight.dim()))
            m_add = m_add.sum(dims, keepdim=True).div(n).expand(s).mul(weight.sign())
            w.grad.data = m.add(m_add).mul(1.0 - 1.0 / s[1]).mul(n)


def prepare(model):
    """What the fork's test() does before evaluating: BinOp.binarization(), in eval mode (the
    `--prepare tests/byom/xnor_resnet.py:prepare` of `xnorinfer import`). Returns the BinOp, whose
    restore() gives the latent weights back."""
    model.eval()
    bin_op = BinOp(model)
    bin_op.binarization()
    return bin_op


@torch.no_grad()
def randomize(model, seed, calibrate=True):
    """Parameters like a trained fork checkpoint's: latent weights small, already centred and
    clamped (what restore() leaves), BN gammas/betas spread, running statistics measured on random
    inputs with the weights binarized as at test time."""
    from byom._common import calibrate_batch_norm, generator, no_exact_zeros_, randomize_batch_norm_affine

    gen = generator(seed)
    bin_op = BinOp(model)
    binary = {id(w) for w in bin_op.target_modules}
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if id(m.weight) in binary:
                w = torch.randn(m.weight.shape, generator=gen) * 0.1
                m.weight.copy_(w.sub(w.mean(1, keepdim=True)).clamp(-1, 1))
            else:
                init.kaiming_normal_(m.weight, generator=gen)
            no_exact_zeros_(m.weight)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    randomize_batch_norm_affine(model, gen)
    if calibrate:
        calibrate_batch_norm(
            model, (32, 3, 32, 32), gen, before_forward=bin_op.binarization, after_forward=bin_op.restore
        )
    return model


def save_checkpoint(model, path, best_acc=0.0):
    """As XNOR-Net-PyTorch's CIFAR main.py save_state(): latent weights, 'module.' stripped."""
    state_dict = model.state_dict()
    state = {
        "best_acc": best_acc,
        "state_dict": type(state_dict)((k.replace("module.", "", 1), v) for k, v in state_dict.items()),
    }
    torch.save(state, path)
    return path

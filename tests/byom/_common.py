"""Shared by the byom models: realistic random parameters and BatchNorm statistics."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def fan_in_normal_(weight: torch.Tensor, gen: torch.Generator, gain: float = 1.0) -> None:
    weight.copy_(torch.randn(weight.shape, generator=gen) * (gain / math.sqrt(weight[0].numel())))


@torch.no_grad()
def no_exact_zeros_(weight: torch.Tensor) -> None:
    """randn can return exactly 0, whose sign is 0 in PyTorch: a random test model should not
    depend on that by accident (tests that want zeros put them there on purpose)."""
    weight[weight == 0] = 1e-3


@torch.no_grad()
def calibrate_batch_norm(
    model: nn.Module, input_shape, gen: torch.Generator, batches: int = 2, before_forward=None, after_forward=None
) -> None:
    """Running statistics as training leaves them: the average batch statistics of random
    inputs, so each BN normalises what really reaches it (a sign after it then sees both signs,
    and a ReLU after it zeroes about half). before/after_forward bracket each forward, e.g. a
    BinOp's binarization() and restore()."""
    was_training = model.training
    saved = {}
    for m in model.modules():
        if isinstance(m, _BN) and m.track_running_stats:
            saved[m] = m.momentum
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    for _ in range(batches):
        if before_forward is not None:
            before_forward()
        model(torch.randn(input_shape, generator=gen))
        if after_forward is not None:
            after_forward()
    for m, momentum in saved.items():
        m.momentum = momentum
        m.num_batches_tracked.fill_(int(torch.randint(1000, 100000, (1,), generator=gen)))
    model.train(was_training)


@torch.no_grad()
def randomize_batch_norm_affine(model: nn.Module, gen: torch.Generator, negative: float = 0.1) -> None:
    """gamma around 1 (a share of them negative, as trained binary nets have), beta around 0."""
    for m in model.modules():
        if isinstance(m, _BN) and m.affine:
            c = m.num_features
            gamma = torch.rand(c, generator=gen) + 0.5
            flip = torch.rand(c, generator=gen) < negative
            m.weight.copy_(torch.where(flip, -gamma, gamma))
            m.bias.copy_(torch.randn(c, generator=gen) * 0.2)

"""PyTorch re-implementations of the reference binary networks whose checkpoints xnorinfer runs.

Written from the facts in ``shared/REFERENCE.md`` (sections 1-4) and from notes on the original code;
nothing is copied from the original repositories.  Every model here has exactly the state_dict keys
(names, order and shapes) of its original, so a state_dict written from these classes looks like one
written by the original training code, and ``save_like_training`` writes whole checkpoint files the
way that code did (``module.`` prefixes, extra dict entries, legacy pickle format, ``cuda:0`` tags).

The models (ReActNetA, ReActNet18, NIN, LeNet5, AlexNetXNOR; see their list and semantics there),
``xnor_binarize_`` and ``randomize_`` live in ``xnorinfer.testing.torch_models``, where the
benchmark finds them in an installed package; they are re-exported here.

Helpers: ``xnor_binarize_``, ``randomize_``, ``gridify_`` / ``grid_input`` (parameters and inputs on a
dyadic grid so float32 results can be compared exactly) and ``save_like_training``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from xnorinfer.testing.torch_models import *  # noqa: F401,F403  -- the models themselves
from xnorinfer.testing.torch_models import (  # noqa: F401  -- private helpers the grid code and tests use
    _BN_TYPES,
    _SIGN_FEEDING_BIASES,
    HardBinaryConv,
    _choice,
    _classify,
    _uniform,
)

# ---------------------------------------------------------------------------------------------------
# Dyadic grid for exact float32 comparisons
# ---------------------------------------------------------------------------------------------------

SIGN_OFFSET_REACTNET = 2.0**-16  # added to LearnableBias values feeding a sign (move11/21, move0)
SIGN_OFFSET_XNOR = 2.0**-12  # added to BinConv2d BN betas feeding a sign: finer than any grid
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


_BN_OF_BINARY_CONV = {
    "binary_3x3": "bn1",
    "binary_pw": "bn2",
    "binary_pw_down1": "bn2_1",
    "binary_pw_down2": "bn2_2",
    "binary_conv": "bn1",
}


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
def gridify_(
    model,
    seed,
    prelu_slopes=(0.0, 1.0),
    bn_stds=(0.5, 1.0, 2.0),
    bn_gammas=(0.5, 1.0, 2.0),
    binary_bn_step=1.0 / 32,
    ternary_float=True,
):
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
                binary_alpha[f"{prefix}.{_BN_OF_BINARY_CONV[leaf]}" if prefix else _BN_OF_BINARY_CONV[leaf]] = mag
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


def save_like_training(
    model, path, kind="reactnet", legacy=False, cuda_tags=True, strip_num_batches_tracked=False, optimizer_state=False
):
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
        ckpt = {
            "epoch": 7,
            "state_dict": None,
            "best_top1_acc": torch.tensor(61.2),
            "optimizer": _adam_state(dp.parameters(), optimizer_state),
        }
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

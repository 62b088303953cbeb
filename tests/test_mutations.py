"""Mutation check of xnorinfer.testing: faults injected into correctly converted models (one negated
weight channel, a dropped BatchNorm, padding off by one, a swapped concat) must fail compare against
the PyTorch model, layer by layer, and the unmutated models must pass, on hypothesis-drawn
parameters and inputs."""

import copy
import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="the mutation check compares with PyTorch models")

from helpers import torch_reference as ref  # noqa: E402

from xnorinfer import Model, ops  # noqa: E402
from xnorinfer.convert import from_torch  # noqa: E402
from xnorinfer.testing import compare  # noqa: E402
from xnorinfer.testing.strategies import inputs  # noqa: E402

SEEDS = range(4)  # parameter draws per architecture, converted once each


@functools.cache
def converted(arch, seed):
    """(PyTorch model, engine model) converted from it."""
    if arch == "reactnet-a":
        module = ref.ReActNetA(num_classes=10, channels=[8, 16, 32, 32, 64])
        ref.randomize_(module, seed=seed)
        return module, from_torch(module.state_dict(), "reactnet-a", input_size=16)
    module = ref.LeNet5(variant="A")
    ref.randomize_(module, seed=seed)
    engine = from_torch(module.state_dict(), "xnor-lenet5")
    binarized = copy.deepcopy(module)
    ref.xnor_binarize_(binarized, centered=True)  # what the converter reproduces
    return binarized, engine


# Each mutation returns the mutated nodes and the layer the report must blame first (None where the
# faulty node has no PyTorch module of its own, e.g. a dropped BatchNorm).


def negate_channel(nodes, rng):
    node = rng.choice([n for n in nodes if n.op in ("bconv2d", "bdense")])
    bits = node.params["weight_bits"].copy()
    channels = node.attrs.get("in_channels", node.attrs.get("in_features")) // node.attrs.get("groups", 1)
    every_channel = ops.pack_signs(-np.ones((1, channels), np.float32))[0]  # the bits in use
    bits[rng.integers(len(bits))] ^= every_channel
    return _swap(nodes, node, node.replace(params=dict(node.params, weight_bits=bits))), node.name


def drop_batch_norm(nodes, rng):
    node = rng.choice([n for n in nodes if n.op == "batch_norm"])
    return [
        n.replace(inputs=[node.inputs[0] if i == node.output else i for i in n.inputs]) for n in nodes if n is not node
    ], None


def padding_off_by_one(nodes, rng):
    node = rng.choice([n for n in nodes if n.op == "bconv2d" and any(n.attrs["padding"])])
    top, bottom, left, right = node.attrs["padding"]
    if rng.random() < 0.5:  # padded taps +1 instead of 0
        attrs = dict(node.attrs, pad_value="one")
    else:  # one row of padding moved from the top to the bottom: same size, shifted
        attrs = dict(node.attrs, padding=[top - 1, bottom + 1, left, right])
    return _swap(nodes, node, node.replace(attrs=attrs)), node.name


def swap_concat(nodes, rng):
    node = rng.choice([n for n in nodes if n.op == "concat"])
    return _swap(nodes, node, node.replace(inputs=node.inputs[::-1])), None


def _swap(nodes, old, new):
    return [new if n is old else n for n in nodes]


MUTATIONS = {
    "negate_channel": (negate_channel, ["reactnet-a", "xnor-lenet5"]),
    "drop_batch_norm": (drop_batch_norm, ["reactnet-a", "xnor-lenet5"]),
    "padding_off_by_one": (padding_off_by_one, ["reactnet-a"]),
    "swap_concat": (swap_concat, ["reactnet-a"]),
}


def mutated(engine, mutation, seed):
    """(the mutated model, the layer to blame first or None)."""
    rng = np.random.default_rng(seed)
    graph = engine.graph
    nodes, blame = MUTATIONS[mutation][0](list(graph.nodes), rng)
    return Model(type(graph)(nodes, graph.input, graph.input_shape, graph.output), engine.metadata), blame


@given(
    data=st.data(),
    mutation=st.sampled_from(sorted(MUTATIONS)),
    seed=st.sampled_from(SEEDS),
    where=st.integers(0, 2**16),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_injected_faults_are_caught(data, mutation, seed, where):
    arch = data.draw(st.sampled_from(MUTATIONS[mutation][1]), label="arch")
    module, engine = converted(arch, seed)
    x = data.draw(inputs(engine, max_batch=2), label="x")
    faulty, blame = mutated(engine, mutation, where)
    # a fault that changes no value on x (one negated output of a binary dense layer whose sum is
    # 0 for this image) is not there to catch
    before, after = engine.trace(x), faulty.trace(x)
    assume(any(not np.array_equal(before[name], value) for name, value in after.items() if name in before))
    report = compare(faulty, module, x)
    assert not report.passed, f"{mutation} on {arch} went unnoticed:\n{report}"
    # caught layer by layer, where the fault is, not only through the logits
    first = next((row for row in report.layers if row.status != "ok"), None)
    assert first is not None, str(report)
    assert blame is None or first.module == blame, f"blamed {first.module}, not {blame}:\n{report}"


@given(data=st.data(), arch=st.sampled_from(["reactnet-a", "xnor-lenet5"]), seed=st.sampled_from(SEEDS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_correct_conversions_pass(data, arch, seed):
    module, engine = converted(arch, seed)
    report = compare(engine, module, data.draw(inputs(engine, max_batch=2), label="x"))
    assert report.passed, str(report)

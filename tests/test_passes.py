"""One small graph per pass of xnorinfer.graph.passes: the exact nodes (or plans) after it, and the
same output, bit for bit, as before it. Parameters and inputs are dyadic (small multiples of
powers of two) and scales powers of two, so that even the folds round nothing and the bits must
match exactly."""

import json
import zipfile

import numpy as np
import pytest
from helpers import graphs, run_everywhere

from xnorinfer import Model
from xnorinfer.graph import Executor, GraphBuilder, optimize
from xnorinfer.graph.passes import (
    apply,
    distribute_through_concat,
    fold_into_binary,
    fold_into_next_bwn_conv,
    fold_into_next_conv,
    fold_into_pack,
    fuse_activation,
    fuse_bias_into_pack,
    fuse_relu_into_conv,
    fuse_residual,
    merge_duplicate_packs,
    steps,
)
from xnorinfer.graph.passes.schedule import plan_bconv_blocks, plan_conv_pools, plan_fused_packs, plan_inplace_concats
from xnorinfer.ops import pack_signs

RNG = np.random.default_rng(0)


def dyadic(*shape, step=0.25, most=8):
    """Multiples of `step` in [-most, most] * step: their sums and products round nothing."""
    return (RNG.integers(-most, most + 1, shape) * step).astype(np.float32)


def powers_of_two(*shape):
    return (2.0 ** RNG.integers(-2, 3, shape)).astype(np.float32)


def bconv_attrs(channels, k=1):
    return {"in_channels": channels, "stride": [1, 1], "padding": [k // 2] * 4, "groups": 1, "pad_value": "zero"}


def bits(o, c, k=1):
    return pack_signs(RNG.standard_normal((o, k, k, c)).astype(np.float32))


def nodes_of(graph):
    return [(n.op, n.name, n.inputs, n.output) for n in graph.nodes]


def plans_of(graph):
    return {n.name: n.plan for n in graph.nodes if n.plan}


def assert_same_bits(before, after, everywhere=False):
    x = dyadic(3, *before.input_shape)
    run = lambda: (Executor(before).run(x), Executor(after).run(x))  # noqa: E731
    for config, (want, got) in (run_everywhere(run) if everywhere else {"default": run()}).items():
        np.testing.assert_array_equal(got, want, err_msg=str(config))


def binary_conv(b, source, name, channels=8, k=1):
    """pack_signs of source, then a binary conv of it: returns the conv's output."""
    packed = b.add("pack_signs", source, f"{name}.sign", {"groups": 1})
    return b.add("bconv2d", packed, name, bconv_attrs(channels, k), weight_bits=bits(channels, channels, k))


# ---- rewrites -----------------------------------------------------------------------------------


def test_fold_into_binary():
    b = GraphBuilder((4, 4, 8))
    y = binary_conv(b, b.input, "conv", k=3)
    scale, bias = powers_of_two(8), dyadic(8)
    graph = b.build(b.add("affine", y, "bn", scale=scale, bias=bias))
    after = apply(fold_into_binary, graph)
    assert nodes_of(after) == [
        ("pack_signs", "conv.sign", ["input"], "conv.sign"),
        ("bconv2d", "conv", ["conv.sign"], "bn"),
    ]
    np.testing.assert_array_equal(after.nodes[1].params["scale"], scale)
    np.testing.assert_array_equal(after.nodes[1].params["bias"], bias)
    assert_same_bits(graph, after)


def test_fuse_residual():
    b = GraphBuilder((4, 4, 8))
    graph = b.build(b.add("add", [binary_conv(b, b.input, "conv", k=3), b.input], "sum"))
    after = apply(fuse_residual, graph)
    assert nodes_of(after)[1:] == [("bconv2d", "conv", ["conv.sign", "input"], "sum")]
    assert_same_bits(graph, after)


def test_fuse_activation():
    b = GraphBuilder((4, 4, 8))
    move_a, slope, move_b = dyadic(8), dyadic(8, step=0.125), dyadic(8)
    y = b.add("affine", binary_conv(b, b.input, "conv"), "move_a", bias=move_a)
    y = b.add("prelu", y, "prelu", slope=slope)
    graph = b.build(b.add("affine", y, "move_b", bias=move_b))
    after = apply(fuse_activation, graph)
    assert nodes_of(after)[1:] == [("bconv2d", "conv", ["conv.sign"], "move_b")]
    p = after.nodes[1].params
    for key, want in (("rp_gamma", -move_a), ("rp_slope", slope), ("rp_zeta", move_b)):
        np.testing.assert_array_equal(p[key], want)
    assert_same_bits(graph, after)


def test_fuse_bias_into_pack():
    b = GraphBuilder((4, 4, 8))
    bias = dyadic(8)
    moved = b.add("affine", b.input, "move", bias=bias)
    graph = b.build(binary_conv(b, moved, "conv", k=3))
    after = apply(fuse_bias_into_pack, graph)
    assert nodes_of(after) == [
        ("pack_signs", "conv.sign", ["input"], "conv.sign"),
        ("bconv2d", "conv", ["conv.sign"], "conv"),
    ]
    np.testing.assert_array_equal(after.nodes[0].params["bias"], bias)
    assert_same_bits(graph, after)


def test_fold_into_pack():
    """sign(a * x + c) = sign(x + c / a) for a > 0; with a a power of two, both round alike."""
    b = GraphBuilder((4, 4, 8))
    scale, bias = powers_of_two(8), dyadic(8)
    graph = b.build(binary_conv(b, b.add("affine", b.input, "bn", scale=scale, bias=bias), "conv", k=3))
    after = apply(fold_into_pack, graph)
    assert nodes_of(after) == [
        ("pack_signs", "conv.sign", ["input"], "conv.sign"),
        ("bconv2d", "conv", ["conv.sign"], "conv"),
    ]
    np.testing.assert_array_equal(after.nodes[0].params["bias"], bias / scale)
    assert_same_bits(graph, after)


def test_fold_into_next_conv():
    b = GraphBuilder((5, 5, 4))
    scale, shift = powers_of_two(4), dyadic(4)
    y = b.add("affine", b.input, "bn", scale=scale, bias=shift)
    conv = {"stride": [1, 1], "padding": [0, 0, 0, 0], "groups": 1}
    graph = b.build(b.add("conv2d", y, "conv", conv, weight=dyadic(6, 4, 3, 3, step=0.125), bias=dyadic(6)))
    after = apply(fold_into_next_conv, graph)
    assert nodes_of(after) == [("conv2d", "conv", ["input"], "conv")]
    assert_same_bits(graph, after)


def test_fold_into_next_bwn_conv():
    b = GraphBuilder((5, 5, 4))
    scale, shift = powers_of_two(4), dyadic(4)
    y = b.add("affine", b.input, "bn", scale=scale, bias=shift)
    conv = {"in_channels": 4, "stride": [1, 1], "padding": [1, 1, 1, 1], "groups": 1}  # padded taps stay 0
    graph = b.build(b.add("bwn_conv2d", y, "conv", conv, weight_bits=bits(6, 4, 3), alpha=powers_of_two(6)))
    after = apply(fold_into_next_bwn_conv, graph)
    assert nodes_of(after) == [("bwn_conv2d", "conv", ["input"], "conv")]
    np.testing.assert_array_equal(after.nodes[0].params["in_scale"], scale)
    assert_same_bits(graph, after, everywhere=True)


def test_fuse_relu_into_conv():
    b = GraphBuilder((5, 5, 4))
    conv = {"stride": [1, 1], "padding": [1, 1, 1, 1], "groups": 1}
    y = b.add("conv2d", b.input, "conv", conv, weight=dyadic(6, 4, 3, 3, step=0.125))
    graph = b.build(b.add("relu", y, "relu"))
    after = apply(fuse_relu_into_conv, graph)
    assert nodes_of(after) == [("conv2d", "conv", ["input"], "relu")] and after.nodes[0].attrs["relu"] is True
    assert_same_bits(graph, after)


def test_distribute_through_concat():
    b = GraphBuilder((4, 4, 8))
    parts = [binary_conv(b, b.input, "a"), binary_conv(b, b.input, "b", k=3)]
    scale, bias = powers_of_two(16), dyadic(16)
    graph = b.build(b.add("affine", b.add("concat", parts, "cat"), "post", scale=scale, bias=bias))
    after = apply(distribute_through_concat, graph)
    assert nodes_of(after)[4:] == [
        ("affine", "post/part0", ["a"], "post/part0"),
        ("affine", "post/part1", ["b"], "post/part1"),
        ("concat", "cat", ["post/part0", "post/part1"], "post"),
    ]
    np.testing.assert_array_equal(after.nodes[5].params["scale"], scale[8:])
    assert_same_bits(graph, after)


def test_merge_duplicate_packs():
    b = GraphBuilder((4, 4, 8))
    graph = b.build(b.add("concat", [binary_conv(b, b.input, "a"), binary_conv(b, b.input, "b")], "cat"))
    after = apply(merge_duplicate_packs, graph)
    assert nodes_of(after) == [
        ("pack_signs", "a.sign", ["input"], "a.sign"),
        ("bconv2d", "a", ["a.sign"], "a"),
        ("bconv2d", "b", ["a.sign"], "b"),
        ("concat", "cat", ["a", "b"], "cat"),
    ]
    assert_same_bits(graph, after)


# ---- schedule: plans on the nodes, nodes unchanged ----------------------------------------------


def test_plan_inplace_concats():
    b = GraphBuilder((4, 4, 8))
    parts = [binary_conv(b, b.input, "a"), binary_conv(b, b.input, "b", k=3)]
    graph = b.build(b.add("global_avg_pool", b.add("concat", parts, "cat"), "gap"))
    after = plan_inplace_concats(graph)
    assert nodes_of(after) == nodes_of(graph)
    assert plans_of(after) == {
        "a": {"writes_slice_of": ("cat", 0, 8)},
        "b": {"writes_slice_of": ("cat", 8, 16)},
        "cat": {"built_in_place": True},
    }
    assert not plans_of(graph)  # the graph passed in keeps its nodes as they were
    assert_same_bits(graph, after, everywhere=True)


def test_plan_fused_packs_of_one_conv():
    b = GraphBuilder((4, 4, 8))
    graph = b.build(binary_conv(b, binary_conv(b, b.input, "a", k=3), "b"))
    after = plan_fused_packs(graph)
    assert nodes_of(after) == nodes_of(graph)
    # a.sign reads the graph input: nothing computes it to pack it on the way.
    assert plans_of(after) == {
        "a": {"packs_into": ("b.sign", 0), "bits_only": True},
        "b.sign": {"packed_by_producers": True},
    }
    assert_same_bits(graph, after, everywhere=True)


def test_plan_fused_packs_of_an_inplace_concat():
    b = GraphBuilder((4, 4, 8))
    cat = b.add("concat", [binary_conv(b, b.input, "a"), binary_conv(b, b.input, "b", k=3)], "cat")
    graph = b.build(binary_conv(b, cat, "c", channels=16))
    after = plan_fused_packs(plan_inplace_concats(graph))
    assert {name: plan.get("packs_into") for name, plan in plans_of(after).items()} == {
        "a": ("c.sign", 0),
        "b": ("c.sign", 8),  # starts inside a word: ORs its bits into a's
        "cat": None,
        "c.sign": None,
    }
    assert plans_of(after)["c.sign"] == {"packed_by_producers": True}
    assert_same_bits(graph, after, everywhere=True)


def test_plan_bconv_blocks():
    b = GraphBuilder((6, 6, 8))
    first = binary_conv(b, b.input, "c3", k=3)
    signs = b.add("pack_signs", first, "c3.out_sign", {"groups": 1})
    pws = [b.add("bconv2d", [signs, first], f"pw{j}", bconv_attrs(8), weight_bits=bits(8, 8)) for j in range(2)]
    graph = b.build(b.add("concat", pws, "cat"))
    after = plan_bconv_blocks(plan_fused_packs(plan_inplace_concats(graph)))
    assert nodes_of(after) == nodes_of(graph)
    plans = plans_of(after)
    assert plans["c3"] == {"packs_into": ("c3.out_sign", 0), "block": ("pw0", "pw1")}
    assert plans["pw0"] == {"writes_slice_of": ("cat", 0, 8), "in_block": "c3"} and plans["pw1"]["in_block"] == "c3"
    assert [step_nodes[0].name for step_nodes in steps(after)] == ["c3.sign", "c3"]
    assert_same_bits(graph, after, everywhere=True)


def test_plan_conv_pools():
    b = GraphBuilder((9, 9, 3))
    conv = {"stride": [1, 1], "padding": [1, 1, 1, 1], "groups": 1}
    y = b.add("conv2d", b.input, "conv", conv, weight=dyadic(4, 3, 3, 3, step=0.125))
    pooled = b.add("max_pool2d", y, "pool", {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]})
    graph = b.build(b.add("global_avg_pool", pooled, "gap"))
    after = plan_conv_pools(graph)
    assert nodes_of(after) == nodes_of(graph)
    assert plans_of(after) == {"conv": {"block": ("pool",), "output_unwritten": True}, "pool": {"in_block": "conv"}}
    assert [[n.name for n in step_nodes] for step_nodes in steps(after)] == [["conv", "pool"], ["gap"]]
    assert_same_bits(graph, after, everywhere=True)


# ---- optimize as a whole -------------------------------------------------------------------------


def test_plans_stay_out_of_the_stored_graph_and_its_file(tmp_path):
    graph = graphs.tiny_reactnet(1)
    model = Model(graph)
    assert plans_of(model._executor.graph) and not plans_of(model.graph)
    optimized = optimize(graph)
    assert [n.plan for n in optimize(optimized).nodes] == [n.plan for n in optimized.nodes]  # plans are redone
    path = tmp_path / "m.xnr"
    Model(optimized).save(path)  # even an optimised graph is written without plans
    stored = json.loads(zipfile.ZipFile(path).read("model.json"))["graph"]["nodes"]
    assert all(set(node) == {"name", "op", "inputs", "output", "attrs", "params"} for node in stored)
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 12)).astype(np.float32)
    np.testing.assert_array_equal(Model.from_bytes(path.read_bytes()).predict(x), Model(optimized).predict(x))


@pytest.mark.parametrize("shared_sign", [False, True])
def test_summary_has_one_line_per_step(shared_sign):
    """In-place concats and fused packers have no line: the steps that write them say so."""
    model = Model(graphs.tiny_reactnet(2, shared_sign=shared_sign), {"arch": "tiny"})
    graph = model._executor.graph
    table = model.summary().split("\n\n")[0].splitlines()[2:]
    assert len(table) == len(steps(graph))
    blocks = [n for n in graph.nodes if "block" in n.plan]
    assert sum(" bconv2d block " in line for line in table) == len(blocks) == (3 if shared_sign else 1)
    hidden = [n for n in graph.nodes if {"in_block", "built_in_place", "packed_by_producers"} & set(n.plan)]
    assert hidden and not any(line.split()[0] == n.name for line in table for n in hidden)
    assert sum(line.count("(in place)") for line in table) == len(
        [n for n in graph.nodes if "writes_slice_of" in n.plan]
    )
    assert sum(line.count(" signs ") for line in table) == len([n for n in graph.nodes if "packs_into" in n.plan])

import numpy as np
import pytest
from helpers import graphs, run_everywhere
from hypothesis import given, settings
from hypothesis import strategies as st

from xnorinfer.graph import Executor, GraphBuilder, GraphError, infer_shapes, optimize
from xnorinfer.graph.executor import ALIGN, _arena_layout
from xnorinfer.graph.opset import channel_counts, node_macs


def planned(graph, key):
    """{node name: its plan's `key`} for the nodes whose plan has one."""
    return {node.name: node.plan[key] for node in graph.nodes if key in node.plan}


@pytest.mark.parametrize(
    "make",
    [graphs.tiny_reactnet, graphs.tiny_xnor, lambda seed: graphs.tiny_xnor(seed, bwn=True)],
    ids=["reactnet", "xnor", "bwn"],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_graph_equals_unfused(make, seed):
    graph = make(seed)
    x = np.random.default_rng(seed).standard_normal((3,) + graph.input_shape).astype(np.float32)
    unfused = Executor(graph).run(x)
    fused = Executor(optimize(graph)).run(x)
    # Folding BN and alpha into the epilogue changes float rounding only.
    np.testing.assert_allclose(fused, unfused, rtol=1e-5, atol=1e-5 * np.abs(unfused).max())


@pytest.mark.parametrize("size", [12, 40])
def test_reactnet_blocks_run_tile_by_tile_with_the_same_bits(size):
    """Each block's 3x3 conv runs with its 1x1 convs tile by tile (its output never reaches
    memory; the two of a doubling block, which binarize alike, write the halves of a concat):
    the same bits as the layers one after the other (a capture runs them so), with a
    batch, several tiles (size 40), every ISA and thread count; a stride-1 block's input buffer,
    free once its 3x3 conv has read it, is not handed to its 1x1 convs' output meanwhile."""
    fused = optimize(graphs.tiny_reactnet(seed=size, size=size, shared_sign=True))
    assert [len(rest) for rest in planned(fused, "block").values()] == [2, 1, 2]
    executor = Executor(fused)
    x = np.random.default_rng(size).standard_normal((3, size, size, 3)).astype(np.float32)
    for config, (blocked, one_by_one) in run_everywhere(
        lambda: (executor.run(x), executor.run(x, capture=["-"]))
    ).items():
        np.testing.assert_array_equal(blocked, one_by_one, err_msg=str(config))


def test_a_stem_and_its_max_pooling_run_as_one_with_the_same_bits():
    fused = optimize(graphs.tiny_xnor(seed=3))
    assert planned(fused, "block") == {"conv1": ("pool1",)} and planned(fused, "output_unwritten") == {"conv1": True}
    executor = Executor(fused)
    x = np.random.default_rng(3).standard_normal((3,) + executor.graph.input_shape).astype(np.float32)
    plan = executor.plan(x.shape)  # the conv's own output is never written: it takes no arena bytes
    conv_out = plan.buffers[next(n.output for n in executor.graph.nodes if n.name == "conv1")]
    assert not any(np.shares_memory(conv_out, b) for b in plan.buffers.values() if b is not None and b is not conv_out)
    for config, (fused, apart) in run_everywhere(lambda: (executor.run(x), executor.run(x, capture=["-"]))).items():
        np.testing.assert_array_equal(fused, apart, err_msg=str(config))


def test_reactnet_blocks_fuse_into_packers_and_binary_convs():
    fused = optimize(graphs.tiny_reactnet())
    ops = [n.op for n in fused.nodes]
    # Every bias, alpha, BN (the stem's too: into the float conv), shortcut add and RPReLU is
    # absorbed: only these ops remain.
    assert set(ops) == {"conv2d", "pack_signs", "bconv2d", "concat", "avg_pool2d", "global_avg_pool", "dense"}
    assert {"scale", "bias"} <= set(fused.nodes[0].params)
    for node in fused.nodes:
        if node.op == "bconv2d":
            assert {"scale", "bias", "rp_gamma", "rp_slope", "rp_zeta"} <= set(node.params)
            assert len(node.inputs) == 2  # the shortcut rides along as the fused residual
        if node.op == "pack_signs":
            assert "bias" in node.params


def test_xnor_relu_fuses_and_bn_before_sign_becomes_the_packers_threshold():
    fused = optimize(graphs.tiny_xnor())
    ops = [n.op for n in fused.nodes]
    assert "relu" not in ops and fused.nodes[0].attrs["relu"]  # the stem's ReLU is the conv's
    assert "affine" not in ops and "batch_norm" not in ops  # the BNs' gammas are positive
    assert all("bias" in n.params for n in fused.nodes if n.op == "pack_signs")


def test_bn_with_a_negative_scale_before_sign_stays():
    graph = graphs.tiny_xnor()
    for node in graph.nodes:
        if node.op == "batch_norm":
            node.params["gamma"][0] = -0.5  # sign(-x) is not a threshold on x
    fused = optimize(graph)
    assert [n.op for n in fused.nodes].count("batch_norm") == 2
    x = np.random.default_rng(0).standard_normal((2,) + graph.input_shape).astype(np.float32)
    unfused = Executor(graph).run(x)
    np.testing.assert_allclose(Executor(fused).run(x), unfused, rtol=1e-5, atol=1e-5 * np.abs(unfused).max())


def test_a_tensor_read_twice_is_not_fused_away():
    b = GraphBuilder((4, 4, 3))
    rng = np.random.default_rng(0)
    from xnorinfer.ops import pack_signs

    s = b.add("pack_signs", b.input, "sign", {"groups": 1})
    y = b.add(
        "bconv2d",
        s,
        "conv",
        {"in_channels": 3, "stride": [1, 1], "padding": [1, 1, 1, 1], "groups": 1, "pad_value": "zero"},
        weight_bits=pack_signs(rng.standard_normal((3, 3, 3, 3)).astype(np.float32)),
    )
    z = b.add("affine", y, "scale", scale=np.full(3, 2, np.float32))
    out = b.add("add", [z, y], "sum")  # y is read by both: the scale must not fold into conv
    graph = b.build(out)
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(Executor(optimize(graph)).run(x), Executor(graph).run(x), rtol=1e-6)


def test_the_op_table_gives_channels_and_macs():
    """Channels where a layer's weights, a per-channel op's input or a concat's parts fix them
    (what the passes split parameters by), MACs per image."""
    graph = graphs.tiny_reactnet()
    infos, counts = infer_shapes(graph), channel_counts(graph)
    known = {node.op for node in graph.nodes if counts[node.output] is not None}
    assert known == {"conv2d", "batch_norm", "affine", "bconv2d", "add", "prelu", "concat", "dense"}
    assert all(counts[n.output] in (None, infos[n.output].channels) for n in graph.nodes)
    by_name = {node.name: node for node in graph.nodes}
    assert node_macs(by_name["stem"], infos) == (0, 6 * 6 * 8 * 3 * 3 * 3)  # 6x6 pixels, 8 outputs of 3x3x3
    assert node_macs(by_name["b1.conv3"], infos) == (6 * 6 * 8 * 3 * 3 * 8, 0)
    assert node_macs(by_name["fc"], infos) == (0, 10 * 32) and node_macs(by_name["gap"], infos) == (0, 0)


def test_executor_reuses_buffers_and_matches_across_batches():
    graph = optimize(graphs.tiny_reactnet(3))
    ex = Executor(graph)
    x = np.random.default_rng(3).standard_normal((4,) + graph.input_shape).astype(np.float32)
    whole = ex.run(x)
    for i in range(4):
        # NumPy's float GEMM may block a batch of 1 differently: equal up to rounding.
        np.testing.assert_allclose(ex.run(x[i : i + 1]), whole[i : i + 1], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ex.run(x), whole)  # a second run, pooled buffers reused, same bits


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=30))
def test_arena_layout_never_overlaps_tensors_alive_together(spans):
    lifetimes = {f"t{i}": [size, min(a, b), max(a, b)] for i, (size, a, b) in enumerate(spans)}
    offsets, size = _arena_layout(lifetimes)
    assert set(offsets) == set(lifetimes) and size <= sum(-(-n // ALIGN) * ALIGN for n, _, _ in lifetimes.values())
    for name, (nbytes, first, last) in lifetimes.items():
        assert offsets[name] % ALIGN == 0 and offsets[name] + nbytes <= size
        for other, (n2, f2, l2) in lifetimes.items():
            if other != name and first <= l2 and f2 <= last:  # alive together: disjoint bytes
                assert offsets[name] + nbytes <= offsets[other] or offsets[other] + n2 <= offsets[name]


def test_plan_shares_one_arena_between_tensors_alive_apart():
    graph = optimize(graphs.tiny_reactnet(5, size=40, shared_sign=True))
    ex = Executor(graph)
    x = np.random.default_rng(5).standard_normal((2,) + graph.input_shape).astype(np.float32)
    plan = ex.plan(x.shape)
    owned = {id(b.base) for name, b in plan.buffers.items() if b is not None and name != graph.input}
    assert len(owned) == 1  # every intermediate is a view of the arena
    tensors = sum(
        b.nbytes
        for name, b in plan.buffers.items()
        if b is not None and name != graph.input and b.base is not None and b.flags.c_contiguous
    )
    assert plan.arena_bytes < 0.7 * tensors
    np.testing.assert_array_equal(ex.run(x), Executor(graph).run(x))  # fresh plans, same bits


def test_executor_overrides_and_captures_tensors():
    graph = optimize(graphs.tiny_reactnet(4))
    ex = Executor(graph)
    x = np.random.default_rng(4).standard_normal((2,) + graph.input_shape).astype(np.float32)
    name = "b2.act2.move_b"
    base = ex.run(x, capture=[name])
    captured = ex.captured[name]
    assert captured.shape[0] == 2
    np.testing.assert_array_equal(ex.run(x, overrides={name: captured}), base)
    assert not np.array_equal(ex.run(x, overrides={name: captured + 1}), base)


def test_shape_inference_reports_the_node():
    b = GraphBuilder((8, 8, 3))
    b.add(
        "conv2d",
        b.input,
        "c1",
        {"stride": [1, 1], "padding": [0, 0, 0, 0], "groups": 1},
        weight=np.zeros((4, 5, 3, 3), np.float32),
    )
    with pytest.raises(GraphError, match="'c1'.*weight"):
        infer_shapes(b.build("c1"))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda g: setattr(g.nodes[0], "op", "conv9d"), "unknown op"),
        (lambda g: g.nodes[1].inputs.__setitem__(0, "nowhere"), "before anything writes"),
        (lambda g: g.nodes[0].attrs.__setitem__("stride", [0, 1]), "stride"),
        (lambda g: g.nodes[0].attrs.__setitem__("padding", [1, 1]), "padding"),
        (lambda g: g.nodes[1].params.__setitem__("mean", np.zeros(3, np.float32)), "mean"),
        (lambda g: g.nodes[1].params.__setitem__("var", np.full(8, np.nan, np.float32)), "NaN"),
        (lambda g: g.nodes[1].params.__setitem__("extra", np.zeros(8, np.float32)), "unexpected parameters"),
        (
            lambda g: g.nodes[4].params.__setitem__("weight_bits", g.nodes[4].params["weight_bits"].astype(np.float32)),
            "uint64",
        ),
        (lambda g: g.nodes[4].attrs.__setitem__("in_channels", 9), "in_channels"),
        (lambda g: g.nodes[4].attrs.__setitem__("pad_value", "two"), "pad_value"),
        (lambda g: g.nodes[3].attrs.__setitem__("zero_to", "zero"), "zero_to"),
        (lambda g: g.nodes[3].attrs.__setitem__("zero_to", None), "zero_to"),
        (lambda g: setattr(g, "output", "missing"), "graph output"),
    ],
)
def test_invalid_graphs_are_rejected(mutate, message):
    graph = graphs.tiny_reactnet()
    mutate(graph)
    with pytest.raises(GraphError, match=message):
        infer_shapes(graph)


def test_flatten_output_survives_the_reuse_of_its_input_buffer():
    # pack -> bconvA -> flatten -> pack -> bconvB (same shape as A) -> flatten -> concat: if flatten
    # returned a view of A's output, B would be written into A's recycled buffer underneath it.
    from xnorinfer.ops import pack_signs

    rng = np.random.default_rng(0)
    b = GraphBuilder((1, 1, 64))
    attrs = {"in_channels": 64, "stride": [1, 1], "padding": [0, 0, 0, 0], "groups": 1, "pad_value": "zero"}
    bits = lambda: pack_signs(rng.standard_normal((64, 1, 1, 64)).astype(np.float32))  # noqa: E731
    a = b.add("bconv2d", b.add("pack_signs", b.input, "s1", {"groups": 1}), "A", attrs, weight_bits=bits())
    fa = b.add("flatten", a, "fa", {"order": "hwc"})
    y = b.add("bconv2d", b.add("pack_signs", a, "s2", {"groups": 1}), "B", attrs, weight_bits=bits())
    fb = b.add("flatten", y, "fb", {"order": "chw"})
    graph = b.build(b.add("concat", [fa, fb], "cat"))
    x = rng.standard_normal((2, 1, 1, 64)).astype(np.float32)
    ex = Executor(graph)
    out = ex.run(x, capture=["A", "B"])
    np.testing.assert_array_equal(out[:, :64], ex.captured["A"].reshape(2, 64))
    np.testing.assert_array_equal(out[:, 64:], ex.captured["B"].reshape(2, 64))


def test_concats_of_binary_convs_are_built_in_place():
    fused = optimize(graphs.tiny_reactnet())
    concats = planned(fused, "built_in_place")
    assert concats and len(planned(fused, "writes_slice_of")) == 2 * len(concats)


def test_packers_of_one_tensor_are_merged():
    # Both 1x1 convs of a doubling block read sign(out1 + move21): one packer serves them.
    b = GraphBuilder((4, 4, 8))
    rng = np.random.default_rng(1)
    from xnorinfer.ops import pack_signs

    bias = rng.standard_normal(8).astype(np.float32)
    s = b.add("affine", b.input, "move21", bias=bias)
    attrs = {"in_channels": 8, "stride": [1, 1], "padding": [0, 0, 0, 0], "groups": 1, "pad_value": "zero"}
    outs = [
        b.add(
            "bconv2d",
            b.add("pack_signs", s, f"sign{i}", {"groups": 1}),
            f"pw{i}",
            attrs,
            weight_bits=pack_signs(rng.standard_normal((8, 1, 1, 8)).astype(np.float32)),
        )
        for i in range(2)
    ]
    graph = b.build(b.add("concat", outs, "cat"))
    fused = optimize(graph)
    assert [n.op for n in fused.nodes].count("pack_signs") == 1
    x = rng.standard_normal((2, 4, 4, 8)).astype(np.float32)
    np.testing.assert_array_equal(Executor(fused).run(x), Executor(graph).run(x))


@pytest.mark.parametrize("padding", [[0, 0, 0, 0], [1, 1, 1, 1]])
def test_bn_folds_into_an_unpadded_conv_after_it(padding):
    """conv(a*x + c) has the affine in its weights and bias only without padding: a padded tap
    would see the BN's zero padding, not c."""
    rng = np.random.default_rng(1)
    b = GraphBuilder((5, 5, 6))
    x = b.add(
        "batch_norm",
        b.input,
        "bn",
        {"eps": 1e-4},
        mean=rng.standard_normal(6).astype(np.float32),
        var=rng.random(6).astype(np.float32) + 0.5,
        gamma=rng.standard_normal(6).astype(np.float32),
        beta=rng.standard_normal(6).astype(np.float32),
    )
    y = b.add(
        "conv2d",
        x,
        "conv",
        {"stride": [1, 1], "padding": padding, "groups": 1},
        weight=rng.standard_normal((4, 6, 3, 3)).astype(np.float32),
        bias=rng.standard_normal(4).astype(np.float32),
    )
    graph = b.build(y)
    fused = optimize(graph)
    assert [n.op for n in fused.nodes] == (["conv2d"] if not any(padding) else ["batch_norm", "conv2d"])
    x = rng.standard_normal((2, 5, 5, 6)).astype(np.float32)
    want = Executor(graph).run(x)
    np.testing.assert_allclose(Executor(fused).run(x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


# ---- signs of ReLU outputs: packers with zero_to="minus_one", convs padded with -1 ---------------


@pytest.mark.parametrize("size", [12, 40])
def test_zero_to_survives_every_fusion_with_the_same_bits(size):
    """sign(relu(.)) graphs: the BN before a packer folds into its threshold, the packer fuses into
    the stem conv, two packers of one tensor merge, and a 3x3 binary conv padded with -1 runs with
    its 1x1 convs tile by tile, every packer keeping zero_to="minus_one"; the fused run gives the
    bits of the one with every packer on its own (a capture), on every ISA and thread count, and
    matches the unoptimised graph to the folds' rounding. With zero_to="one" the output differs:
    the ReLU's zeros decide bits."""
    graph = graphs.tiny_relu_sign(seed=size, size=size)
    fused = optimize(graph)
    packs = [n for n in fused.nodes if n.op == "pack_signs"]
    assert len(packs) == 2 and all(n.attrs["zero_to"] == "minus_one" for n in packs)
    assert "bias" in packs[0].params  # the BN's threshold
    assert not any(n.op in ("batch_norm", "affine", "relu", "add") for n in fused.nodes)
    assert planned(fused, "block") == {"b1.conv3": ("b1.pw0", "b1.pw1")}
    assert {"stem", "b1.conv3"} <= set(planned(fused, "packs_into"))  # the stem and the 3x3 conv write signs
    executor = Executor(fused)
    x = np.random.default_rng(size).standard_normal((3, size, size, 3)).astype(np.float32)
    results = run_everywhere(lambda: (executor.run(x), executor.run(x, capture=["-"])))
    for config, (blocked, one_by_one) in results.items():
        np.testing.assert_array_equal(blocked, one_by_one, err_msg=str(config))
    got = next(iter(results.values()))[0]
    unfused = Executor(graph).run(x)
    np.testing.assert_allclose(got, unfused, rtol=1e-5, atol=1e-5 * np.abs(unfused).max())
    plus_one = Executor(optimize(graphs.tiny_relu_sign(seed=size, size=size, zero_to="one"))).run(x)
    assert np.abs(plus_one - got).max() > 1e-3 * np.abs(got).max()


def test_packers_with_another_zero_to_are_not_merged():
    from xnorinfer.ops import pack_signs

    b = GraphBuilder((4, 4, 8))
    rng = np.random.default_rng(2)
    s = b.add("relu", b.input, "relu")
    attrs = {"in_channels": 8, "stride": [1, 1], "padding": [1, 1, 1, 1], "groups": 1, "pad_value": "minus_one"}
    outs = [
        b.add(
            "bconv2d",
            b.add("pack_signs", s, f"sign{i}", {"groups": 1, "zero_to": zero_to}),
            f"conv{i}",
            attrs,
            weight_bits=pack_signs(rng.standard_normal((8, 3, 3, 8)).astype(np.float32)),
        )
        for i, zero_to in enumerate(["one", "minus_one"])
    ]
    graph = b.build(b.add("concat", outs, "cat"))
    fused = optimize(graph)
    assert sorted(n.attrs["zero_to"] for n in fused.nodes if n.op == "pack_signs") == ["minus_one", "one"]
    x = rng.standard_normal((2, 4, 4, 8)).astype(np.float32)
    out = Executor(fused).run(x)
    np.testing.assert_array_equal(out, Executor(graph).run(x))
    assert not np.array_equal(out[..., :8], out[..., 8:])


def test_a_bias_moved_into_a_packer_keeps_its_zero_to():
    """relu -> + bias (zeros of both signs in some channels) -> sign: the bias becomes the
    packer's, an exact move, so the bits and the output are those of the unfused graph."""
    from xnorinfer.ops import pack_signs

    b = GraphBuilder((5, 5, 6))
    rng = np.random.default_rng(3)
    bias = np.float32([0.0, -0.0, 0.5, -0.5, 0.0, 1.0])
    s = b.add("affine", b.add("relu", b.input, "relu"), "move", bias=bias)
    s = b.add("pack_signs", s, "sign", {"groups": 1, "zero_to": "minus_one"})
    y = b.add(
        "bconv2d",
        s,
        "conv",
        {"in_channels": 6, "stride": [1, 1], "padding": [1, 2, 0, 1], "groups": 1, "pad_value": "minus_one"},
        weight_bits=pack_signs(rng.standard_normal((7, 3, 3, 6)).astype(np.float32)),
    )
    graph = b.build(y)
    fused = optimize(graph)
    (pack,) = [n for n in fused.nodes if n.op == "pack_signs"]
    assert pack.attrs["zero_to"] == "minus_one" and np.array_equal(pack.params["bias"], bias)
    x = rng.standard_normal((2, 5, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(Executor(fused).run(x), Executor(graph).run(x))

"""xnorinfer.testing: the float64 reference interpreter, Model.trace, compare and its report, the
near-tie rule and the hypothesis strategies."""

import json

import numpy as np
import pytest
from helpers import graphs
from hypothesis import given, settings
from hypothesis import strategies as st

import xnorinfer
from xnorinfer import Model, ops
from xnorinfer.graph import Graph, GraphBuilder, Node
from xnorinfer.testing import (
    REFERENCE_OPS,
    assert_matches_reference,
    compare,
    near_tie,
    reference_predict,
    reference_trace,
)
from xnorinfer.testing import strategies as xst
from xnorinfer.testing.reference import run_graph

torch = pytest.importorskip("torch", reason="the torch references need torch: pip install -e '.[test]'")
F = torch.nn.functional

GRAPHS = {"reactnet": graphs.tiny_reactnet, "xnor": graphs.tiny_xnor, "bwn": lambda seed: graphs.tiny_xnor(seed, True)}


def nchw(t):
    return t.transpose(0, 3, 1, 2) if t.ndim == 4 else t


# ---- the interpreter ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(GRAPHS))
def test_reference_predict_agrees_with_predict(kind):
    model = Model(GRAPHS[kind](seed=4))
    x = np.random.default_rng(4).standard_normal((3,) + model.input_size).astype(np.float32)
    want = reference_predict(model, x)
    assert want.dtype == np.float64
    report = assert_matches_reference(model, x)
    assert report.layers and all(row.status == "ok" for row in report.layers)
    np.testing.assert_array_equal(reference_predict(model, x.transpose(0, 2, 3, 1), layout="NHWC"), want)


def test_every_stored_op_has_a_reference():
    from xnorinfer.graph import OPS

    assert set(OPS) <= set(REFERENCE_OPS)


def _single(op, attrs, input_shape, **params):
    """A graph of one node over the input, built without the engine's shape checks, so ops and
    attribute values the engine does not run yet can be interpreted."""
    node = Node(op, "n", ["input"], "n", attrs, params)
    return Graph([node], "input", input_shape, "n")


@given(
    geometry=xst.binary_conv_geometries(max_channels=70),
    seed=st.integers(0, 2**16),
    pad_value=st.sampled_from(["zero", "one", "minus_one"]),
)
@settings(max_examples=40, deadline=None)
def test_bconv_reference_is_pytorch_conv_of_padded_signs(geometry, seed, pad_value):
    g = geometry
    rng = np.random.default_rng(seed)
    cg = g["in_channels"] // g["groups"]
    signs = rng.choice([-1.0, 1.0], (g["batch"], g["height"], g["width"], g["in_channels"]))
    w = rng.choice([-1.0, 1.0], (g["out_channels"], cg) + g["kernel"])
    bits = ops.pack_signs(np.ascontiguousarray(w.transpose(0, 2, 3, 1), np.float32))
    graph = _single(
        "bconv2d",
        {
            "in_channels": g["in_channels"],
            "groups": g["groups"],
            "stride": list(g["stride"]),
            "padding": list(g["padding"]),
            "pad_value": pad_value,
        },
        (g["height"], g["width"], g["in_channels"]),
        weight_bits=bits,
    )
    got = run_graph(graph, signs)["n"]
    top, bottom, left, right = g["padding"]
    padded = F.pad(
        torch.from_numpy(nchw(signs)),
        (left, right, top, bottom),
        value={"zero": 0.0, "one": 1.0, "minus_one": -1.0}[pad_value],
    )
    want = F.conv2d(padded, torch.from_numpy(w), stride=g["stride"], groups=g["groups"]).numpy()
    np.testing.assert_array_equal(nchw(got), want)


@pytest.mark.parametrize("zero_to, zero_sign", [("one", 1.0), ("minus_one", -1.0)])
def test_sign_of_zero_follows_zero_to(zero_to, zero_sign):
    x = np.array([[[[-0.5, -0.0, 0.0, 0.25]]]])
    attrs = {"groups": 1} if zero_to == "one" else {"groups": 1, "zero_to": zero_to}
    got = run_graph(_single("pack_signs", attrs, (1, 1, 4)), x)["n"]
    assert got.tolist() == [[[[-1.0, zero_sign, zero_sign, 1.0]]]]
    # with a bias the threshold moves: x + bias exactly 0 is the tie
    biased = _single("pack_signs", attrs, (1, 1, 4), bias=np.full(4, 0.5, np.float32))
    assert run_graph(biased, x)["n"][0, 0, 0, 0] == zero_sign


@given(
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    ceil=st.booleans(),
    include=st.booleans(),
    size=st.integers(1, 11),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=60, deadline=None)
def test_pooling_reference_is_pytorch(k, s, p, ceil, include, size, seed):
    if 2 * p > k or size + 2 * p < k:
        return  # PyTorch refuses these
    x = np.random.default_rng(seed).standard_normal((2, size, size + 1, 3))
    attrs = {"kernel": [k, k], "stride": [s, s], "padding": [p, p], "ceil_mode": ceil}
    got_max = run_graph(_single("max_pool2d", attrs, x.shape[1:]), x)["n"]
    got_avg = run_graph(_single("avg_pool2d", dict(attrs, count_include_pad=include), x.shape[1:]), x)["n"]
    t = torch.from_numpy(nchw(x))
    np.testing.assert_array_equal(nchw(got_max), F.max_pool2d(t, k, s, p, ceil_mode=ceil).numpy())
    np.testing.assert_allclose(
        nchw(got_avg),
        F.avg_pool2d(t, k, s, p, ceil_mode=ceil, count_include_pad=include).numpy(),
        rtol=1e-12,
        atol=1e-15,
    )


@pytest.fixture
def without_channel_shuffle():
    """The interpreter as it was before channel_shuffle had a reference: as for an op added later."""
    registered = REFERENCE_OPS.pop("channel_shuffle")
    try:
        yield
    finally:
        REFERENCE_OPS["channel_shuffle"] = registered


def test_reference_names_a_missing_op(without_channel_shuffle):
    graph = _single("channel_shuffle", {"groups": 2}, (2, 2, 4))
    with pytest.raises(NotImplementedError, match="channel_shuffle.*REFERENCE_OPS"):
        run_graph(graph, np.zeros((1, 2, 2, 4)))


def test_a_new_op_is_one_registered_function(without_channel_shuffle):
    from xnorinfer.testing.reference import reference_op

    @reference_op("channel_shuffle", terms=lambda node, shapes: 0)
    def _channel_shuffle(node, xs, magnitude):  # the example of docs/testing.md
        n, h, w, c = xs[0].shape
        g = node.attrs["groups"]
        return xs[0].reshape(n, h, w, g, c // g).swapaxes(3, 4).reshape(n, h, w, c)

    x = np.arange(6.0).reshape(1, 1, 1, 6)
    got = run_graph(_single("channel_shuffle", {"groups": 2}, (1, 1, 6)), x)["n"]
    want = torch.nn.ChannelShuffle(2)(torch.from_numpy(nchw(x)))
    np.testing.assert_array_equal(nchw(got), want.numpy())


def test_magnitude_run_bounds_every_value():
    graph = graphs.tiny_reactnet(seed=2)
    x = np.random.default_rng(2).standard_normal((2, 12, 12, 3))
    values, bounds = run_graph(graph, x), run_graph(graph, np.abs(x), magnitude=True)
    for name, value in values.items():
        assert np.all(np.abs(value) <= bounds[name] * (1 + 1e-12)), name


# ---- Model.trace --------------------------------------------------------------------------------


def test_trace_returns_every_node_in_the_input_layout():
    model = Model(graphs.tiny_xnor(seed=1))
    x = np.random.default_rng(1).standard_normal((2, 1, 10, 10)).astype(np.float32)
    traced = model.trace(x)
    assert list(traced) == [node.name for node in model.graph.nodes]
    assert traced["conv1"].shape == (2, 6, 8, 8) and traced["conv1"].dtype == np.float32
    assert set(np.unique(traced["sign2"])) <= {-1.0, 1.0} and traced["sign2"].shape == (2, 6, 4, 4)
    np.testing.assert_array_equal(traced["ip2"], model.predict(x))
    nhwc = model.trace(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), layout="NHWC")
    np.testing.assert_array_equal(nhwc["conv1"], traced["conv1"].transpose(0, 2, 3, 1))
    reference = reference_trace(model, x)
    np.testing.assert_allclose(traced["bn2"], reference["bn2"], rtol=1e-5, atol=1e-5)


def test_trace_overrides_feed_downstream_layers():
    model = Model(graphs.tiny_xnor(seed=1))
    x = np.random.default_rng(1).standard_normal((2, 1, 10, 10)).astype(np.float32)
    plain = model.trace(x)
    flipped = -plain["sign2"]
    fed = model.trace(x, overrides={"sign2": flipped})
    np.testing.assert_array_equal(fed["sign2"], plain["sign2"])  # what the engine computed there
    np.testing.assert_array_equal(fed["conv2"], -plain["conv2"])  # a conv of negated signs, zero padded
    zeroed = model.trace(x, overrides={"relu1": np.zeros_like(plain["relu1"])})
    np.testing.assert_array_equal(zeroed["bn2"][:, :, :1, :1], zeroed["bn2"][:, :, 1:2, 1:2])  # one value a channel
    with pytest.raises(KeyError, match="no node 'nope'"):
        model.trace(x, overrides={"nope": flipped})
    with pytest.raises(ValueError, match="shape"):
        model.trace(x, overrides={"sign2": flipped[:, :3]})


# ---- the near-tie rule and compare's report -------------------------------------------------------


def test_near_tie_bound_scales_with_the_terms_never_a_fixed_epsilon():
    assert near_tie(1e-8, 1.0, 2) and not near_tie(1e-6, 1.0, 2)
    assert near_tie(1e-2, 1e6, 2)  # large terms: rounding reaches far
    assert not near_tie(1e-12, 1e-6, 2)  # small terms: even 1e-12 is not a rounding away
    assert near_tie(0.0, 0.0, 1) and not near_tie(1e-30, 0.0, 1)


def near_tie_model():
    """3 * x then a sign at -0.3: for x = float32(0.1) float32 rounds 3x onto the threshold
    (sign +1), float64 stays 7.5e-9 below it (sign -1): a flip only a near tie explains."""
    b = GraphBuilder((1, 1, 4))
    t = b.add("affine", b.input, "scale", scale=np.full(4, 3, np.float32))
    t = b.add("pack_signs", t, "sign", {"groups": 1}, bias=np.full(4, -0.3, np.float32))
    t = b.add(
        "bconv2d",
        t,
        "conv",
        {"in_channels": 4, "stride": [1, 1], "padding": [0, 0, 0, 0], "groups": 1},
        weight_bits=ops.pack_signs(np.ones((3, 1, 1, 4), np.float32)),
    )
    return Model(b.build(b.add("flatten", t, "flat", {"order": "chw"})))


def test_near_tie_flips_are_explained_end_to_end_and_layer_by_layer():
    model = near_tie_model()
    x = np.array([[[[0.1]], [[0.1]], [[1.0]], [[-1.0]]]], np.float32)  # (1, 4, 1, 1)
    report = compare(model, "float", x)
    assert report.images_off == [0] and report.images_excused == [0]
    assert report.flips_explained == 2 and report.flips_unexplained == 0
    flip = report.first_flips[0]
    assert (flip.layer, flip.image, flip.index, flip.explained) == ("sign", 0, (0, 0, 0), True)
    assert -1e-8 < flip.value < 0 < -flip.value <= flip.bound < 1e-6
    assert "near tie: sign image 0 at (0, 0, 0)" in str(report)
    sign_row = next(r for r in report.layers if r.name == "sign")
    assert (sign_row.flips_explained, sign_row.flips_unexplained) == (2, 0)
    assert report.passed, str(report)
    # the same outputs from a callable cannot be explained: it shows no signs
    called = compare(model, lambda batch: reference_predict(model, batch), x)
    assert not called.passed and "end to end only" in str(called)


def test_report_is_a_table_and_a_dict():
    model = Model(graphs.tiny_reactnet(seed=5))
    x = np.random.default_rng(5).standard_normal((2, 3, 12, 12)).astype(np.float32)
    report = compare(model, "float", x, isas="all")
    assert report.passed and len(report.runs) == len(xnorinfer.available_isas()) * len(
        {1, __import__("os").cpu_count()}
    )
    text = str(report)
    closest = max(report.runs[0].layers, key=lambda r: r.max_rel)
    assert "PASSED" in text and closest.name in text and "more layers within layer_rtol" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["passed"] and d["runs"][0]["layers"][0]["name"] == "stem" and "max_rel" in d["runs"][0]["layers"][0]
    assert d["runs"][0]["images"] == 2


def test_compare_names_torch_layers_and_catches_a_wrong_one():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.BatchNorm2d(6))
    b = GraphBuilder((6, 6, 1))
    t = b.add(
        "conv2d",
        b.input,
        "0",
        {"stride": [1, 1], "padding": [0, 0, 0, 0], "groups": 1},
        weight=conv[0].weight.detach().numpy().copy(),
        bias=conv[0].bias.detach().numpy().copy(),
    )
    bn = conv[1]
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    t = b.add(
        "batch_norm",
        t,
        "1",
        {"eps": 1e-5},
        mean=bn.running_mean.numpy().copy(),
        var=bn.running_var.numpy().copy() * 1.5,
    )  # wrong: a BatchNorm off by its variance
    t = b.add("global_avg_pool", t, "pool")
    model = Model(b.build(t))
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    report = compare(model, lambda batch: conv(torch.from_numpy(batch)).mean((2, 3)).detach().numpy(), x)
    assert not report.passed and not report.layers
    report = compare(model, _Head(conv), x)
    assert [r.module for r in report.layers] == ["0", "1"]
    assert [r.status for r in report.layers] == ["ok", "MISMATCH"]
    with pytest.raises(AssertionError, match="layer 1: max rel diff"):
        xnorinfer.testing.assert_matches_torch(model, _Head(conv), x)


class _Head(torch.nn.Module):
    """conv's layers under the names "0" and "1", then the engine's global pooling."""

    def __init__(self, seq):
        super().__init__()
        self.add_module("0", seq[0])
        self.add_module("1", seq[1])

    def forward(self, x):
        return getattr(self, "1")(getattr(self, "0")(x)).mean((2, 3))


# ---- strategies ---------------------------------------------------------------------------------


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_inputs_fit_the_model_and_include_odd_values(data):
    model = Model(graphs.tiny_xnor(seed=0))
    x = data.draw(xst.inputs(model))
    assert x.dtype == np.float32 and x.shape[1:] == model.input_size and 1 <= len(x) <= 3
    assert np.isfinite(x).all()
    model.predict(x)  # accepted
    nhwc = data.draw(xst.inputs(model, layout="NHWC", min_batch=2, max_batch=2))
    assert nhwc.shape == (2, 10, 10, 1)


def test_inputs_draw_exact_zeros_sometimes():
    model = Model(graphs.tiny_xnor(seed=0))
    seen = []

    @given(xst.inputs(model))
    @settings(max_examples=30, deadline=None)
    def draw(x):
        seen.append(bool((x == 0).any()))

    draw()
    assert any(seen) and not all(seen)


@given(arr=xst.dyadic_parameters((5, 7), step=0.25, bound=2.0, nonzero=True))
@settings(max_examples=20, deadline=None)
def test_dyadic_parameters_lie_on_the_grid(arr):
    assert arr.dtype == np.float32 and arr.shape == (5, 7)
    k = arr / 0.25
    assert np.array_equal(k, np.round(k)) and np.abs(arr).max() <= 2.0 and (arr != 0).all()


def test_dyadic_parameters_refuse_a_step_off_the_grid():
    with pytest.raises(ValueError, match="power of 2"):
        xst.dyadic_parameters((2,), step=0.3)


@given(
    pair=xst.on_grid(
        torch.nn.Sequential(
            torch.nn.Conv2d(2, 4, 3, padding=1),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(4 * 25, 3),
        ),
        (2, 2, 5, 5),
    )
)
@settings(max_examples=10, deadline=None)
def test_on_grid_gives_exact_float32(pair):
    module, x = pair
    assert xst.exactness_problems(module, x) == []
    assert all(
        np.array_equal(p.detach().numpy() * 8, np.round(p.detach().numpy() * 8))
        for name, p in module.named_parameters()
        if name.startswith(("0.", "4."))
    )


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_on_grid_raises_when_the_grid_cannot_be_exact():
    class MeanScaled(torch.nn.Module):  # a scale that is a mean over 9 x 3 values: never dyadic
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            w = self.conv.weight
            return F.conv2d(torch.sign(x), torch.sign(w)) * w.abs().mean((1, 2, 3)).view(1, -1, 1, 1) / 3

    with pytest.raises(xst.GridError, match="rounds in float32|sign"):
        xst.on_grid(MeanScaled(), (1, 3, 5, 5)).example()


def test_exactness_problems_sees_zeros_reaching_a_sign():
    class Signs(torch.nn.Module):
        def forward(self, x):
            return torch.sign(x)

    assert xst.exactness_problems(Signs(), np.array([[0.0, 1.0]], np.float32)) == ["1 torch.sign calls see exact zeros"]


@given(g=xst.binary_conv_geometries())
@settings(max_examples=40, deadline=None)
def test_binary_conv_geometries_are_valid(g):
    assert 1 <= g["in_channels"] <= 520 and g["in_channels"] % g["groups"] == 0 and g["out_channels"] % g["groups"] == 0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((g["batch"], g["height"], g["width"], g["in_channels"])).astype(np.float32)
    w = rng.standard_normal((g["out_channels"], g["in_channels"] // g["groups"]) + g["kernel"]).astype(np.float32)
    y = ops.bconv2d(
        ops.pack_signs(x, groups=g["groups"]),
        ops.BinaryConvWeights.from_float(w, g["groups"]),
        stride=g["stride"],
        padding=g["padding"],
        pad_value=g["pad_value"],
    )
    assert y.size > 0


# ---- torch layers and the worked example ------------------------------------------------------------


def test_module_outputs_copy_before_in_place_ops_and_skip_shared_modules():
    from xnorinfer.testing._torch import module_outputs

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3)
            self.act = torch.nn.ReLU(inplace=True)  # used twice: no single output
            self.out = torch.nn.ReLU(inplace=True)

        def forward(self, x):
            return self.out(self.act(self.lin(self.act(x))))

    net = Net().train()
    x = np.array([[-1.0, 0.5, 2.0]], np.float32)
    y, outputs = module_outputs(net, x)
    assert set(outputs) == {"lin", "out"} and net.training  # the mode is restored
    with torch.no_grad():
        lin = net.lin(torch.relu(torch.from_numpy(x))).double().numpy()
    np.testing.assert_array_equal(outputs["lin"], lin)  # not the ReLU'd tensor it became in place
    np.testing.assert_array_equal(y, np.maximum(lin, 0))


def test_compare_refuses_unknown_references_and_reads_nhwc():
    model = Model(graphs.tiny_xnor(seed=2))
    x = np.random.default_rng(2).standard_normal((2, 10, 10, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="'float'"):
        compare(model, "double", x, layout="NHWC")
    with pytest.raises(TypeError, match="callable"):
        compare(model, 3, x, layout="NHWC")
    assert compare(model, "float", x, layout="NHWC").passed


def test_the_worked_example_passes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "test_my_model.py"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(example)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout


def test_testing_needs_neither_torch_nor_hypothesis_until_asked():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['hypothesis'] = None\n"
        "import numpy as np, xnorinfer.testing as t\n"
        "from xnorinfer import load\n"
        "from xnorinfer.classify import default_model_path\n"
        "m = load(default_model_path())\n"
        "assert t.compare(m, 'float', np.ones((1,) + m.input_size, np.float32)).passed\n"
        "try:\n    import xnorinfer.testing.strategies\nexcept ImportError:\n    print('strategies need hypothesis')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "strategies need hypothesis"

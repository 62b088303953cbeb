"""Property-test a converted binary network against its PyTorch module with xnorinfer.testing:

    pip install "xnorinfer[torch,testing]" pytest
    pytest examples/test_my_model.py

To test your own network, change `my_module` (build it and load your trained weights) and
`convert` (how you turn it into an xnorinfer Model). The example uses XNOR-Net's LeNet-5 from
examples/training with random weights and BatchNorm statistics."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import xnorinfer  # noqa: E402
from xnorinfer.testing import assert_matches_reference, assert_matches_torch, compare  # noqa: E402
from xnorinfer.testing.strategies import inputs  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "training"))
from xnor_lenet import LeNet5  # noqa: E402


def my_module() -> torch.nn.Module:
    torch.manual_seed(0)
    module = LeNet5()
    with torch.no_grad():  # stand-ins for trained BatchNorm statistics
        for bn in module.modules():
            if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
    return module.eval()


def convert(module) -> xnorinfer.Model:
    return xnorinfer.convert.from_torch(module.state_dict(), "xnor-lenet5")


MODULE = my_module()
MODEL = convert(MODULE)


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_engine_computes_what_pytorch_computes(data):
    # end to end within 1e-5 of the largest logit, layer by layer within 1e-4, every sign flip
    # a near tie: on failure the AssertionError shows the layer table
    assert_matches_torch(MODEL, MODULE, data.draw(inputs(MODEL)))


@given(data=st.data())
@settings(max_examples=10, deadline=None)
def test_kernels_and_fusions_match_the_float64_reference(data):
    assert_matches_reference(MODEL, data.draw(inputs(MODEL)))


def test_every_isa_and_thread_count():
    x = np.random.default_rng(0).standard_normal((4,) + MODEL.input_size).astype(np.float32)
    report = compare(MODEL, MODULE, x, isas="all")
    assert report.passed, str(report)
    print(report)  # pytest -s shows the table

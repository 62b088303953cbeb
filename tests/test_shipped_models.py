"""The models in weights/: present, loadable, described by a card, and (when ../shared/data is
there) reproducing the card's engine accuracy on its 1,000-image test subset."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import xnorinfer
from xnorinfer.classify import default_model_path
from xnorinfer.testing import compare

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"
DATA = Path(os.environ.get("XNORINFER_DATA", ROOT.parent / "shared" / "data"))
MODELS = sorted(p.stem for p in WEIGHTS.glob("*.xnr"))
FILES = {"cifar10": "cifar10_jpeg.npz", "fashion-mnist": "fashion_mnist.npz"}


def test_the_default_model_is_shipped_and_installed():
    assert "cifar10_reactnet" in MODELS
    model = xnorinfer.load(default_model_path())
    assert model.metadata["classes"][3] == "cat" and model.metadata["input_size"] == [3, 32, 32]


@pytest.mark.parametrize("name", MODELS)
def test_card_and_facts(name):
    facts = json.loads((WEIGHTS / f"{name}.json").read_text())
    card = (WEIGHTS / f"{name}.md").read_text()
    assert f"{facts['engine_test_top1']:.2f}%" in card and f"{facts['pytorch_test_top1']:.2f}%" in card
    assert facts["file_bytes"] == (WEIGHTS / f"{name}.xnr").stat().st_size
    # The engine computes what PyTorch computed: their full-split accuracies agree within 0.1 pp.
    assert abs(facts["engine_test_top1"] - facts["pytorch_test_top1"]) <= 0.1


def _test_subset(dataset):
    path = DATA / FILES[dataset]
    if not path.is_file():
        pytest.skip(f"{path} is absent (the data sets live in ../shared/data; see its README)")
    import io

    from PIL import Image

    with np.load(path, allow_pickle=False) as z:
        if dataset == "fashion-mnist":
            return z["x_test"][::10][..., None], z["y_test"][::10]
        blob, offsets = z["test_jpeg"].tobytes(), z["test_offsets"]
        images = [
            np.asarray(Image.open(io.BytesIO(blob[offsets[i] : offsets[i + 1]])).convert("RGB"))
            for i in range(0, len(offsets) - 1, 10)
        ]
        return np.stack(images), z["test_labels"][::10]


@pytest.mark.parametrize("name", MODELS)
def test_subset_accuracy_matches_the_card(name):
    facts = json.loads((WEIGHTS / f"{name}.json").read_text())
    x, y = _test_subset(facts["dataset"])
    model = xnorinfer.load(WEIGHTS / f"{name}.xnr")
    logits = model.predict(_normalised(model, x), layout="NHWC")
    accuracy = 100.0 * float((logits.argmax(1) == y).mean())
    assert abs(accuracy - facts["engine_subset_top1"]) <= 0.5


def _normalised(model, x):
    mean, std = (np.asarray(model.metadata[k], np.float32) for k in ("mean", "std"))
    return np.ascontiguousarray((x / np.float32(255) - mean) / std, dtype=np.float32)


@pytest.mark.parametrize("name", MODELS)
def test_reference_interpreter_agrees_with_predict(name):
    """The float64 interpreter of the stored graph and the engine agree in top-1 on the 1,000
    images, and every image whose outputs differ beyond float32 rounding has a sign flip at a
    near tie to explain it."""
    facts = json.loads((WEIGHTS / f"{name}.json").read_text())
    x, _ = _test_subset(facts["dataset"])
    model = xnorinfer.load(WEIGHTS / f"{name}.xnr")
    report = compare(model, "float", _normalised(model, x), layout="NHWC", layerwise=False)
    assert report.images == len(x) == 1000
    assert report.argmax_agree >= 995, str(report)
    assert report.passed, str(report)


def test_sample_images_classify():
    model = xnorinfer.load(WEIGHTS / "cifar10_reactnet.xnr")  # the sample images are CIFAR-10 photos
    images = sorted((ROOT / "examples" / "images").glob("*.png"))
    results = xnorinfer.classify([str(p) for p in images], model=model, top_k=1)
    correct = sum(top[0][0] == p.stem for p, top in zip(images, results))
    assert correct >= 6, f"{correct}/10 sample images right"


def test_bwn_lenet5_full_split_accuracy_matches_the_card():
    """The BWN LeNet-5 runs on the BWN kernels (1-bit weights, csrc/bwn.h): its full Fashion-MNIST
    test-split accuracy is the card's within 0.05 pp."""
    path = DATA / FILES["fashion-mnist"]
    if not path.is_file():
        pytest.skip(f"{path} is absent (the data sets live in ../shared/data; see its README)")
    facts = json.loads((WEIGHTS / "fashion_mnist_bwn_lenet5.json").read_text())
    with np.load(path, allow_pickle=False) as z:
        x, y = z["x_test"][..., None], z["y_test"]
    model = xnorinfer.load(WEIGHTS / "fashion_mnist_bwn_lenet5.xnr")
    assert {"bwn_conv2d", "bwn_dense"} <= {node.op for node in model._executor.graph.nodes}
    logits = model.predict(_normalised(model, x), layout="NHWC")
    accuracy = 100.0 * float((logits.argmax(1) == y).mean())
    assert abs(accuracy - facts["engine_test_top1"]) <= 0.05, accuracy

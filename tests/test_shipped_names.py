"""Shipped models by name: xnorinfer.load("cifar10_reactnet"), --model NAME, `xnorinfer models`."""

import json
import os

import pytest

import xnorinfer
from xnorinfer import shipped
from xnorinfer.cli import ExitCode, main

NAMES = ["cifar10_reactnet", "fashion_mnist_bwn_lenet5", "fashion_mnist_reactnet", "fashion_mnist_xnor_lenet5"]
CAT = os.path.join(os.path.dirname(__file__), "..", "examples", "images", "cat.png")


def test_every_shipped_model_loads_by_name_with_or_without_suffix():
    assert shipped.names() == NAMES
    for name in NAMES:
        by_name = xnorinfer.load(name)
        assert by_name.metadata == xnorinfer.load(name + ".xnr").metadata
        assert by_name.metadata == xnorinfer.load(shipped.model_path(name)).metadata


def test_a_file_of_that_name_wins_over_the_shipped_model(tmp_path, monkeypatch):
    # A user's own file called like a shipped model must never be shadowed by it.
    monkeypatch.chdir(tmp_path)
    with open(shipped.model_path("fashion_mnist_xnor_lenet5"), "rb") as f:
        (tmp_path / "cifar10_reactnet").write_bytes(f.read())
    assert xnorinfer.load("cifar10_reactnet").input_size == (1, 28, 28)  # the local file, not CIFAR-10
    assert xnorinfer.load("fashion_mnist_reactnet").input_size == (1, 28, 28)


def test_an_unknown_name_lists_the_shipped_models(capsys):
    with pytest.raises(FileNotFoundError, match="shipped models: cifar10_reactnet, fashion_mnist_bwn_lenet5"):
        xnorinfer.load("cifar100_reactnet")
    # a path with a folder is a path, never a shipped name
    with pytest.raises(FileNotFoundError, match="no model file at 'nowhere/cifar10_reactnet'"):
        xnorinfer.load(os.path.join("nowhere", "cifar10_reactnet"))
    assert main(["classify", CAT, "--model", "cifar100_reactnet"]) == ExitCode.BAD_INPUT
    assert "shipped models: cifar10_reactnet" in capsys.readouterr().err


def test_classify_by_name_matches_classify_by_path(capsys):
    assert main(["classify", CAT, "--model", "fashion_mnist_reactnet", "--json"]) == 0
    by_name = json.loads(capsys.readouterr().out)
    assert main(["classify", CAT, "--model", shipped.model_path("fashion_mnist_reactnet"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == by_name
    assert xnorinfer.classify(CAT, model="fashion_mnist_reactnet")[0][0][0] == by_name[0]["predictions"][0]["label"]


def test_models_lists_name_dataset_accuracy_size_and_path(capsys, tmp_path):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == NAMES
    by_name = {r["name"]: r for r in rows}
    cifar = by_name["cifar10_reactnet"]
    assert cifar["default"] and not by_name["fashion_mnist_reactnet"]["default"]
    assert (cifar["dataset"], cifar["arch"], cifar["top1_engine"]) == ("cifar10", "reactnet-a", 84.06)
    assert by_name["fashion_mnist_xnor_lenet5"]["dataset"] == "fashion-mnist"
    for r in rows:
        assert r["bytes"] == os.path.getsize(r["path"]) and r["card"].endswith(r["name"] + ".md")
        assert xnorinfer.load(r["path"]).metadata["num_classes"] == 10
    assert main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["name", "data", "set", "arch", "top-1"]
    assert "cifar10_reactnet *" in table[1] and "84.06%" in table[1] and "0.70 MB" in table[1]
    out = tmp_path / "models.json"
    assert main(["models", "--json", "--output", str(out)]) == 0
    assert capsys.readouterr().out == "" and json.loads(out.read_text()) == rows


def test_info_takes_a_name(capsys):
    assert main(["info", "fashion_mnist_bwn_lenet5"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(shipped.model_path("fashion_mnist_bwn_lenet5") + ": 0.09 MB")

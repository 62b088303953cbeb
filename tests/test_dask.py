"""examples/dask_classify.py against a real LocalCluster of 2 worker processes (loopback, no
dashboard): the same JSON as `xnorinfer classify --json`, bad inputs included."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xnorinfer.cli import ExitCode, main

pytest.importorskip("distributed", reason="the Dask example needs the dask extra: pip install '.[dask]'")
ROOT = Path(__file__).resolve().parents[1]


def test_dask_labels_equal_the_local_run(tmp_path, capsys):
    missing = str(tmp_path / "missing.png")
    images = [str(ROOT / "examples" / "images"), missing]
    assert main(["classify", *images, "--json", "--top-k", "3"]) == ExitCode.BAD_INPUT
    local = json.loads(capsys.readouterr().out)
    # --chunk 3: four tasks, so both workers get some
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "dask_classify.py"),
            *images,
            "--workers",
            "2",
            "--chunk",
            "3",
            "--top-k",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == ExitCode.BAD_INPUT, run.stderr
    assert json.loads(run.stdout) == local
    assert len(local) == 11 and local[-1]["error"].startswith(missing)


def test_a_client_classifies_twice(monkeypatch):
    """The library function on one cluster, called twice (each call scatters the model anew):
    both workers up, the same records both times, the labels right."""
    from dask.distributed import Client, LocalCluster

    # on sys.path while the cluster runs too: spawned workers inherit it and import the task from there
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    from dask_classify import classify_on_cluster

    import xnorinfer
    from xnorinfer.cli import expand_inputs

    paths = expand_inputs([str(ROOT / "examples" / "images")])
    model = xnorinfer.load("cifar10_reactnet")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        first = classify_on_cluster(paths, client, model, top_k=1, chunk=2)
        second = classify_on_cluster(paths, client, model, top_k=1, chunk=3)
        workers = len(client.scheduler_info()["workers"])
    assert workers == 2
    assert first == second
    assert [r["predictions"][0]["label"] for r in first] == [Path(p).stem for p in paths]

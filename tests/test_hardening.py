"""Issue 14's reproducers outside the file format: overflow, fork, Pillow's global limit, cache
growth, exit codes and batch errors."""

import copy
import inspect
import json
import multiprocessing
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import graphs, hostile
from PIL import Image

import xnorinfer
from xnorinfer import ImageError, Model
from xnorinfer import preprocess as preprocess_module
from xnorinfer.cli import ExitCode, main
from xnorinfer.graph import executor as executor_module

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT / "weights" / "cifar10_reactnet.xnr"
IMAGES = sorted((ROOT / "examples" / "images").glob("*.png"))


# ---- overflow ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def overflowing(tmp_path_factory):
    """The CIFAR model with its stem BatchNorm's shift set to a finite 3e38."""
    manifest, arrays = hostile.parts(CIFAR.read_bytes())
    stem_bn = next(n for n in manifest["graph"]["nodes"] if n["op"] == "batch_norm")
    spec = manifest["arrays"][stem_bn["params"]["beta"]]
    arrays = bytearray(arrays)
    count = int(np.prod(spec["shape"]))
    arrays[spec["offset"] : spec["offset"] + 4 * count] = np.full(count, 3e38, np.float32).tobytes()
    path = tmp_path_factory.mktemp("overflow") / "overflow.xnr"
    path.write_bytes(hostile.model_file(manifest, bytes(arrays)))
    return path


def test_overflow_raises_floating_point_error_naming_the_first_layer(overflowing):
    model = xnorinfer.load(overflowing)
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    with pytest.raises(FloatingPointError, match=r"layer 'feature.2.pooling' \(avg_pool2d\) is the first"):
        model.predict(x)


def test_a_nan_met_by_a_sign_is_reported_the_same_way():
    """Weights of +-3e38 overflow the stem conv to +inf and -inf, whose sums are NaN: the fused
    sign packer downstream refuses them (a ValueError inside the run), and predict still names
    the stem."""
    graph = graphs.tiny_reactnet(3)
    stem, rng = graph.nodes[0], np.random.default_rng(0)
    stem.params["weight"] = np.where(rng.random(stem.params["weight"].shape) < 0.5, 3e38, -3e38).astype(np.float32)
    model = Model(graph)
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    with pytest.raises(ValueError, match="NaN"):  # what the kernels say on their own
        model._executor.run(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    with pytest.raises(FloatingPointError, match=r"layer 'stem' \(conv2d\) is the first"):
        model.predict(x)


def test_cli_reports_overflow_and_exits_nonzero(overflowing, capsys):
    assert main(["classify", str(IMAGES[0]), "--model", str(overflowing)]) == ExitCode.BAD_INPUT
    out, err = capsys.readouterr()
    assert "nan" not in out and "float32 overflow" in err and "Traceback" not in err


def test_predict_checks_only_the_output_on_the_hot_path(monkeypatch):
    model = xnorinfer.load(CIFAR)
    called = []
    monkeypatch.setattr(model._executor, "first_non_finite", lambda x: called.append(x))
    model.predict(np.zeros((2, 3, 32, 32), np.float32))
    assert not called


# ---- fork, spawn, forkserver ---------------------------------------------------------------------

POOL_SCRIPT = """
import multiprocessing as mp, sys, warnings
import numpy as np
import xnorinfer

model = xnorinfer.load(sys.argv[2])
x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)

def work(_):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = model.predict(x), model.predict(x)
    return first.tobytes(), second.tobytes(), xnorinfer.get_num_threads(), [str(w.message) for w in caught]

if __name__ == "__main__":
    xnorinfer.set_num_threads(2)
    expected = model.predict(x).tobytes()   # the parent's OpenMP team exists before the fork
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        results = pool.map(work, range(4))
    for first, second, threads, caught in results:
        assert first == expected and second == expected
        print(threads, len(caught), caught[0][:60] if caught else "")
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pools_of_every_start_method_predict_after_a_two_thread_parent(method, tmp_path):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    script = tmp_path / "pool.py"  # a file: spawn's workers import the main module by path
    script.write_text(POOL_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), method, str(CIFAR)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    for line in lines:
        threads, warned = line.split()[:2]
        if method == "fork":  # one thread, and one warning per worker process at most
            assert threads == "1" and warned in ("0", "1")
        else:
            assert warned == "0"
    if method == "fork":
        assert any("this process was made by fork()" in line for line in lines)


# ---- process-global state ------------------------------------------------------------------------


def test_concurrent_classify_leaves_pillows_global_limit_alone(monkeypatch):
    sentinel = 123_456_789
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", sentinel)
    model = xnorinfer.load(CIFAR)
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.add(Image.MAX_IMAGE_PIXELS)

    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [
        threading.Thread(target=xnorinfer.classify, args=([str(p) for p in IMAGES],), kwargs=dict(model=model))
        for _ in range(4)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    watcher.join()
    assert seen == {sentinel} and Image.MAX_IMAGE_PIXELS == sentinel


def test_preprocess_does_not_touch_the_warnings_filters():
    assert "catch_warnings" not in inspect.getsource(preprocess_module)
    before = list(warnings.filters)
    xnorinfer.classify(str(IMAGES[0]))
    assert warnings.filters == before


def test_huge_image_is_refused_from_its_header(tmp_path):
    from helpers.hostile import png_with_size

    path = tmp_path / "huge.png"
    path.write_bytes(png_with_size(9_000, 9_000))  # 81 Mpx: above ours, below Pillow's default limit
    with pytest.raises(ImageError, match="9000x9000 pixels, larger than 64,000,000, refused"):
        preprocess_module.open_image(str(path))


def test_image_fifo_is_refused(tmp_path):
    import os

    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)
    from helpers.hostile import finishes

    with pytest.raises(ImageError, match="a FIFO, not a regular file"):
        finishes(lambda: preprocess_module.open_image(str(fifo)))


# ---- caches -------------------------------------------------------------------------------------


def test_executor_caches_are_bounded():
    model = xnorinfer.load(CIFAR)  # global average pooling: any input size runs
    limit = executor_module.MAX_CACHED_SHAPES
    sides = [32 * i for i in range(1, limit + 40)]
    for side in sides:
        model.default_batch_size((side, side, 3))
    model.predict(np.zeros((1, 3, 64, 64), np.float32))
    ex = model._executor
    assert len(ex._shape_cache) <= limit and len(ex._image_bytes) <= limit
    assert (sides[-1], sides[-1], 3) in ex._image_bytes  # the most recent are kept
    assert (sides[0], sides[0], 3) not in ex._image_bytes


# ---- exit codes and batch errors -----------------------------------------------------------------


def test_exit_codes(tmp_path, capsys):
    assert main(["classify", str(IMAGES[0])]) == ExitCode.OK
    assert main(["classify", str(IMAGES[0]), str(tmp_path / "missing.png")]) == ExitCode.BAD_INPUT
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "--top-k", "0", str(IMAGES[0])])
    assert exit_info.value.code == ExitCode.USAGE
    capsys.readouterr()


def test_internal_errors_exit_3_with_one_line_and_debug_gives_the_traceback(monkeypatch, capsys):
    classify_module = sys.modules["xnorinfer.classify"]  # xnorinfer.classify is the function

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(classify_module, "classify_batches", broken)
    assert main(["classify", str(IMAGES[0])]) == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "--debug" in err
    assert main(["classify", "--debug", str(IMAGES[0])]) == ExitCode.INTERNAL
    assert "Traceback" in capsys.readouterr().err
    assert main(["--debug", "classify", str(IMAGES[0])]) == ExitCode.INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_classify_skip_keeps_the_other_results(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    images = [str(IMAGES[0]), str(bad), np.zeros((4, 4, 2), np.uint8), str(IMAGES[1])]
    results = xnorinfer.classify(images, top_k=2, errors="skip")
    assert len(results) == 4
    assert results[0] == xnorinfer.classify(str(IMAGES[0]), top_k=2)[0]
    assert isinstance(results[1], ImageError) and results[1].path == str(bad) and "not an image" in results[1].message
    assert isinstance(results[2], ImageError) and results[2].path is None
    assert results[3][0][0] == "automobile"
    with pytest.raises(ImageError, match="not an image"):
        xnorinfer.classify(images, errors="raise")
    with pytest.raises(ValueError, match="errors must be one of"):
        xnorinfer.classify(images, errors="ignore")


def test_cli_json_reports_errors_as_text(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    assert main(["classify", "--json", str(bad), str(IMAGES[0])]) == ExitCode.BAD_INPUT
    records = json.loads(capsys.readouterr().out)
    assert "error" in records[0] and isinstance(records[0]["error"], str) and "predictions" in records[1]


def test_model_metadata_is_checked_in_memory_too():
    with pytest.raises(xnorinfer.ModelFormatError, match="'std' must be a list of finite numbers >= 1e-06"):
        Model(graphs.tiny_reactnet(1), {"std": [0.0, 1.0, 1.0]})
    with pytest.raises(xnorinfer.ModelFormatError, match="crop"):
        Model(graphs.tiny_reactnet(1), copy.deepcopy({"preprocess": {"crop": 20_000}}))

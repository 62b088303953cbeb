import io
import json

import numpy as np
import pytest
from helpers import graphs
from helpers.hostile import png_with_size
from PIL import Image

import xnorinfer
from xnorinfer import ImageError, Model
from xnorinfer.cli import main
from xnorinfer.preprocess import preprocess

CLASSES = [f"class{i}" for i in range(10)]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    meta = {
        "arch": "tiny",
        "classes": CLASSES,
        "input_size": [3, 12, 12],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
    }
    path = tmp_path_factory.mktemp("model") / "tiny.xnr"
    Model(graphs.tiny_reactnet(7), meta).save(path)
    return str(path)


@pytest.fixture(scope="module")
def gray_meta():
    return {"input_size": [1, 8, 8], "mean": [0.0], "std": [1.0]}


def save(image, path, **kw):
    image.save(path, **kw)
    return str(path)


def test_classify_returns_sorted_top_k_for_paths_pil_and_arrays(model_path, tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = save(Image.fromarray(array), tmp_path / "a.png")
    results = xnorinfer.classify([path, Image.fromarray(array), array], model=model_path, top_k=3)
    assert len(results) == 3 and all(len(r) == 3 for r in results)
    assert results[0] == results[1] == results[2]  # the same pixels however they arrive
    probs = [p for _, p in results[0]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert all(label in CLASSES for label, _ in results[0])


def test_classify_agrees_with_predict(model_path):
    model = xnorinfer.load(model_path)
    array = np.random.default_rng(1).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    x = ((array / 255.0 - 0.5) / 0.25).astype(np.float32).transpose(2, 0, 1)[None]
    logits = model.predict(x)[0]
    label, p = xnorinfer.classify(array, model=model, top_k=1)[0][0]
    assert label == CLASSES[int(np.argmax(logits))]
    np.testing.assert_allclose(p, np.exp(logits - logits.max()).max() / np.exp(logits - logits.max()).sum(), rtol=1e-5)


def test_modes_are_converted(gray_meta, tmp_path):
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent: white after compositing
    assert np.allclose(preprocess(rgba, gray_meta), 1.0)
    palette = Image.new("P", (8, 8), 3)
    palette.putpalette([0, 0, 0] * 3 + [255, 255, 255] + [0, 0, 0] * 252)
    assert np.allclose(preprocess(palette, gray_meta), 1.0)
    cmyk = Image.new("CMYK", (8, 8), (0, 0, 0, 255))  # full black ink
    assert np.allclose(preprocess(cmyk, gray_meta), 0.0)
    sixteen = Image.fromarray(np.full((8, 8), 65535, np.uint16))
    assert np.allclose(preprocess(sixteen, gray_meta), 1.0)
    one_bit = Image.new("1", (8, 8), 1)
    assert np.allclose(preprocess(one_bit, gray_meta), 1.0)
    rgb_meta = {"input_size": [3, 8, 8]}
    assert preprocess(Image.new("L", (8, 8), 128), rgb_meta).shape == (8, 8, 3)


def test_exif_orientation_is_applied(gray_meta, tmp_path):
    array = np.zeros((8, 16), np.uint8)
    array[:, :8] = 255  # left half white
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    path = save(image, tmp_path / "rot.jpg", exif=exif, quality=100)
    x = preprocess(path, {"input_size": [1, 8, 8]})[:, :, 0]
    # After rotating, the white half is on top; the square centre crop shows it in the upper rows.
    assert x[:3].mean() > 0.9 and x[5:].mean() < 0.1


def test_resize_then_centre_crop(gray_meta):
    array = np.zeros((8, 24), np.uint8)
    array[:, 8:16] = 255  # only the centre third is white
    assert np.allclose(preprocess(Image.fromarray(array), gray_meta), 1.0)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: str(d / "missing.png"), "no such file"),
        (lambda d: (d / "text.png").write_text("hello") and str(d / "text.png"), "not an image"),
        (lambda d: str(d), "is a directory"),
    ],
)
def test_unreadable_sources(make, message, tmp_path, gray_meta):
    with pytest.raises(ImageError, match=message):
        preprocess(make(tmp_path), gray_meta)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_images(fmt, tmp_path, gray_meta):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="cannot be decoded"):
        preprocess(str(path), gray_meta)


def test_decompression_bomb_is_refused(tmp_path, gray_meta):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_size(50_000, 50_000))
    with pytest.raises(ImageError, match="refused"):
        preprocess(str(path), gray_meta)


def test_zero_size_and_bad_arrays(gray_meta):
    with pytest.raises(ImageError, match="zero size"):
        preprocess(Image.new("L", (0, 0)), gray_meta)
    with pytest.raises(ImageError, match=r"\(H, W\)"):
        preprocess(np.zeros((0, 4, 3), np.uint8), gray_meta)
    with pytest.raises(ImageError, match="uint8"):
        preprocess(np.zeros((4, 4, 3), np.float32), gray_meta)


def test_cli_classifies_folders_and_globs_and_reports_bad_files(model_path, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        save(Image.new("RGB", (16, 16), (40 * i, 10, 200)), folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image, and not picked up from the folder")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    code = main(
        [
            "classify",
            str(folder),
            str(tmp_path / "imgs" / "*.png"),
            str(bad),
            str(tmp_path / "nope.png"),
            "--model",
            model_path,
            "--top-k",
            "2",
            "--json",
            "--batch-size",
            "2",
        ]
    )
    assert code == 1  # some inputs failed
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 3 + 3 + 2
    good = [r for r in records if "predictions" in r]
    assert len(good) == 6 and all(len(r["predictions"]) == 2 for r in good)
    errors = {r["image"]: r["error"] for r in records if "error" in r}
    assert "not an image" in errors[str(bad)] and "no such file" in errors[str(tmp_path / "nope.png")]


def test_cli_text_output(model_path, tmp_path, capsys):
    path = save(Image.new("RGB", (12, 12), (1, 2, 3)), tmp_path / "x.png")
    assert main(["classify", path, "--model", model_path, "--top-k", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: class") and out.count("\n") == 1


def test_extreme_aspect_ratio_is_cheap(gray_meta):
    wide = Image.new("L", (400_000, 1), 255)
    assert np.allclose(preprocess(wide, gray_meta), 1.0)


def test_model_without_metadata_classifies_from_its_graph():
    model = Model(graphs.tiny_reactnet(2))  # no metadata at all: input size from the graph
    top = xnorinfer.classify(np.zeros((12, 12, 3), np.uint8), model=model, top_k=2)[0]
    assert len(top) == 2 and top[0][0] in [str(i) for i in range(10)]


def test_cli_rejects_non_positive_top_k(model_path, tmp_path, capsys):
    path = save(Image.new("RGB", (12, 12)), tmp_path / "x.png")
    with pytest.raises(SystemExit):
        main(["classify", path, "--model", model_path, "--top-k", "0"])
    assert "positive integer" in capsys.readouterr().err


def _top_label(args):
    model, array = args
    return xnorinfer.classify(array, model=model, top_k=1)[0][0][0]


def test_models_travel_to_worker_processes(model_path):
    import multiprocessing

    model = xnorinfer.load(model_path)
    arrays = [np.full((12, 12, 3), v, np.uint8) for v in (0, 90, 180, 255)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        remote = pool.map(_top_label, [(model, a) for a in arrays])
    assert remote == [_top_label((model, a)) for a in arrays]


def test_an_image_of_the_input_size_is_not_resampled():
    array = np.random.default_rng(3).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    x = preprocess(array, {"input_size": [3, 12, 12], "preprocess": {"resize": 12, "crop": 12}})
    np.testing.assert_allclose(x, array / np.float32(255), atol=1e-6)

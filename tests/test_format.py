import io
import json
import pickle
import zipfile

import numpy as np
import pytest
from helpers import graphs

import xnorinfer
from xnorinfer import Model, ModelFormatError


@pytest.fixture(scope="module")
def model():
    return Model(graphs.tiny_reactnet(), {"arch": "tiny", "classes": [str(i) for i in range(10)]})


@pytest.fixture(scope="module")
def blob(model):
    return model.to_bytes()


def rewrite(blob, change_manifest=None, drop=(), replace=None):
    """A copy of the model archive with its manifest edited or entries dropped/replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename in drop:
                continue
            data = src.read(info.filename)
            if info.filename == "model.json" and change_manifest:
                manifest = json.loads(data)
                change_manifest(manifest)
                data = json.dumps(manifest).encode()
            if replace and info.filename in replace:
                data = replace[info.filename]
            dst.writestr(info.filename, data)
    return out.getvalue()


def test_round_trip_through_a_file(model, tmp_path):
    path = tmp_path / "m.xnr"
    model.save(path)
    loaded = xnorinfer.load(path)
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.metadata == model.metadata


def test_zero_to_and_minus_one_padding_round_trip(tmp_path):
    """A packer's zero_to and a binary conv's pad_value="minus_one" are attributes in the file:
    they load back as written and the loaded model computes what the saved one did."""
    model = Model(graphs.tiny_relu_sign(), {"arch": "relu-sign"})
    path = tmp_path / "m.xnr"
    model.save(path)
    loaded = xnorinfer.load(path)
    attrs = {n.name: n.attrs for n in loaded.graph.nodes}
    assert attrs["b1.sign"]["zero_to"] == "minus_one" and attrs["b1.conv3"]["pad_value"] == "minus_one"
    assert [n.attrs for n in loaded.graph.nodes] == [n.attrs for n in model.graph.nodes]
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_unknown_zero_to_in_a_file_is_refused():
    def edit(manifest):
        node = next(n for n in manifest["graph"]["nodes"] if n["op"] == "pack_signs")
        node["attrs"]["zero_to"] = "zero"

    blob = rewrite(Model(graphs.tiny_relu_sign()).to_bytes(), edit)
    with pytest.raises(ModelFormatError, match="zero_to"):
        xnorinfer.load(blob)


def test_binary_weights_are_stored_packed(model, blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        manifest = json.loads(zf.read("model.json"))
    assert sorted(zf.namelist()) == ["arrays.bin", "model.json"]
    dtypes = {spec["dtype"] for spec in manifest["arrays"].values()}
    assert dtypes == {"float32", "uint64"}
    bits = sum(np.prod(s["shape"]) * 64 for s in manifest["arrays"].values() if s["dtype"] == "uint64")
    assert bits >= 8 * 8 * 9  # the 3x3 convs' weights are there, as words


def test_model_pickles_as_its_file_bytes(model):
    clone = pickle.loads(pickle.dumps(model))
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no model file"):
        xnorinfer.load("/nonexistent/model.xnr")


def test_not_a_zip(tmp_path):
    path = tmp_path / "junk.xnr"
    path.write_bytes(b"definitely not a model" * 10)
    with pytest.raises(ModelFormatError, match="corrupt or truncated"):
        xnorinfer.load(path)


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated(blob, keep):
    with pytest.raises(ModelFormatError):
        xnorinfer.load(blob[: int(len(blob) * keep)])


def test_flipped_byte_inside_an_array_fails_the_crc(blob):
    corrupt = bytearray(blob)
    corrupt[len(blob) // 2] ^= 0xFF
    with pytest.raises(ModelFormatError):
        xnorinfer.load(bytes(corrupt))


def test_newer_format_version(blob):
    def newer(m):
        m["format_version"] = 99

    with pytest.raises(ModelFormatError, match="format version 99 is newer"):
        xnorinfer.load(rewrite(blob, newer))


def test_other_zip_files_are_not_models():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ModelFormatError, match="not an xnorinfer model"):
        xnorinfer.load(out.getvalue())


def test_manifest_that_is_not_json(blob):
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        xnorinfer.load(rewrite(blob, replace={"model.json": b"{nope"}))


def test_missing_arrays(blob):
    with pytest.raises(ModelFormatError, match="no arrays.bin"):
        xnorinfer.load(rewrite(blob, drop=("arrays.bin",)))


def test_short_arrays(blob):
    with pytest.raises(ModelFormatError, match="do not fit arrays.bin"):
        xnorinfer.load(rewrite(blob, replace={"arrays.bin": b"\0" * 100}))


def test_array_beyond_the_blob(blob):
    def lie(m):
        m["arrays"]["p0"]["shape"] = [10**9]

    with pytest.raises(ModelFormatError, match="p0"):
        xnorinfer.load(rewrite(blob, lie))


def test_array_of_a_type_the_format_does_not_have(blob):
    def lie(m):
        m["arrays"]["p0"]["dtype"] = "object"

    with pytest.raises(ModelFormatError, match="invalid description"):
        xnorinfer.load(rewrite(blob, lie))


def test_array_shape_that_disagrees_with_its_layer(blob):
    def lie(m):
        m["arrays"]["p0"]["shape"] = [1, 2, 3]

    with pytest.raises(ModelFormatError, match="inconsistent graph.*'stem'"):
        xnorinfer.load(rewrite(blob, lie))


def test_inconsistent_graph(blob):
    def break_graph(m):
        m["graph"]["nodes"][4]["attrs"]["in_channels"] = 5

    with pytest.raises(ModelFormatError, match="inconsistent graph"):
        xnorinfer.load(rewrite(blob, break_graph))


def test_unknown_op(blob):
    def unknown(m):
        m["graph"]["nodes"][0]["op"] = "conv3d"

    with pytest.raises(ModelFormatError, match="unknown op"):
        xnorinfer.load(rewrite(blob, unknown))


def test_malformed_node(blob):
    def malformed(m):
        del m["graph"]["nodes"][0]["inputs"]

    with pytest.raises(ModelFormatError, match="malformed graph"):
        xnorinfer.load(rewrite(blob, malformed))


def test_node_that_is_not_an_object(blob):
    def junk(m):
        m["graph"]["nodes"][0] = "x"

    with pytest.raises(ModelFormatError, match="malformed node"):
        xnorinfer.load(rewrite(blob, junk))


def test_absurd_array_shapes(blob):
    for shape in ([2**63, 2], [2**32, 2**32]):

        def lie(m, shape=shape):
            m["arrays"]["p0"]["shape"] = shape

        with pytest.raises(ModelFormatError, match="do not fit"):
            xnorinfer.load(rewrite(blob, lie))


def test_empty_kernel_is_refused(blob):
    def empty(m):
        m["arrays"]["p0"]["shape"] = [8, 3, 0, 3]

    with pytest.raises(ModelFormatError, match="empty"):
        xnorinfer.load(rewrite(blob, empty))


def test_huge_stride_is_refused(blob):
    def huge(m):
        m["graph"]["nodes"][0]["attrs"]["stride"] = [2**40, 1]

    with pytest.raises(ModelFormatError, match="stride"):
        xnorinfer.load(rewrite(blob, huge))


def test_infinite_eps_is_refused(blob):
    def inf(m):
        m["graph"]["nodes"][1]["attrs"]["eps"] = float("inf")

    with pytest.raises(ModelFormatError, match="eps"):
        xnorinfer.load(rewrite(blob, inf))


def test_compressed_arrays_are_refused(blob):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelFormatError, match="stored uncompressed"):
        xnorinfer.load(out.getvalue())


@pytest.mark.parametrize("pad", [0, 1, 3])
def test_loaded_arrays_are_aligned_for_the_kernels(blob, pad):
    """Within the file arrays.bin starts wherever the zip headers end; the kernels read uint64 and
    float32 words in place (unaligned: a bus error on 32-bit ARM), so a load aligns them."""
    from xnorinfer import format as fmt

    padded = rewrite(blob, replace=None) if pad == 0 else _with_comment(blob, pad)
    graph, _ = fmt._read(padded)
    arrays = [a for node in graph.nodes for a in node.params.values()]
    assert arrays and all(a.__array_interface__["data"][0] % 64 == 0 and a.flags.aligned for a in arrays)
    assert not any(a.flags.writeable for a in arrays)


def _with_comment(blob, pad):
    """The archive with a local-header extra field of `pad` bytes before arrays.bin's data."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            new = zipfile.ZipInfo(info.filename, info.date_time)
            new.compress_type = info.compress_type
            new.extra = b"\xfe\xca" + (pad + 4).to_bytes(2, "little") + b"\0" * (pad + 4) if pad else b""
            dst.writestr(new, data)
    return out.getvalue()

"""Issue 14's reproducers for model files: each hostile or careless file is refused with one
ModelFormatError that says what and where, within bounded memory and without hanging."""

import copy
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import hostile
from helpers.hostile import finishes

import xnorinfer
from xnorinfer import ModelFormatError
from xnorinfer import format as model_format
from xnorinfer.cli import ExitCode, main
from xnorinfer.graph import OPS

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
CIFAR = WEIGHTS / "cifar10_reactnet.xnr"


@pytest.fixture(scope="module")
def blob():
    return CIFAR.read_bytes()


@pytest.fixture(scope="module")
def pieces(blob):
    return hostile.parts(blob)


def edited(pieces, change):
    """The CIFAR model with its manifest edited by change(manifest), as a valid archive."""
    manifest = copy.deepcopy(pieces[0])
    change(manifest)
    return hostile.model_file(manifest, pieces[1])


def node(manifest, op):
    return next(n for n in manifest["graph"]["nodes"] if n["op"] == op)


def refused(data, *patterns):
    with pytest.raises(ModelFormatError) as info:
        xnorinfer.load(data)
    for pattern in patterns:
        assert pattern in str(info.value), str(info.value)
    return str(info.value)


def test_the_hand_made_archive_of_a_shipped_model_loads(pieces):
    model = xnorinfer.load(hostile.model_file(*pieces))
    assert model.metadata["classes"][0] == "airplane"


# ---- the zip layer ----------------------------------------------------------------------------


def test_bit_flips_in_the_deflated_manifest_are_a_format_error_not_zlib_error(pieces):
    good = hostile.entry("model.json", json.dumps(pieces[0]).encode(), zipfile.ZIP_DEFLATED)
    messages = set()
    for i in range(0, len(good["payload"]), max(1, len(good["payload"]) // 40)):
        payload = bytearray(good["payload"])
        payload[i] ^= 0x5A
        data = hostile.archive([dict(good, payload=bytes(payload)), hostile.entry("arrays.bin", pieces[1])])
        messages.add(refused(data, "model.json").split(": ", 1)[1].split(" (")[0])
    assert any("zlib" in m or "corrupt compressed" in m for m in messages), messages


def test_encrypted_entry(pieces):
    data = hostile.archive(
        [hostile.entry("model.json", json.dumps(pieces[0]).encode(), flags=0x1), hostile.entry("arrays.bin", pieces[1])]
    )
    refused(data, "model.json is encrypted")


@pytest.mark.parametrize("method", [99, 6, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_unknown_compression_method(pieces, method):
    data = hostile.archive(
        [
            hostile.entry("model.json", json.dumps(pieces[0]).encode(), method=method),
            hostile.entry("arrays.bin", pieces[1]),
        ]
    )
    refused(data, f"model.json uses compression method {method}")


def test_duplicate_entry_names_are_refused_not_last_one_wins(pieces):
    other = copy.deepcopy(pieces[0])
    other["metadata"]["classes"] = [f"evil{i}" for i in range(10)]
    data = hostile.archive(
        [
            hostile.entry("model.json", json.dumps(pieces[0]).encode()),
            hostile.entry("arrays.bin", pieces[1]),
            hostile.entry("model.json", json.dumps(other).encode()),
        ]
    )
    refused(data, "two entries named 'model.json'")


def test_an_extra_entry_is_refused_naming_the_format_version(pieces):
    data = hostile.archive(
        [
            hostile.entry("model.json", json.dumps(pieces[0]).encode()),
            hostile.entry("arrays.bin", pieces[1]),
            hostile.entry("extra.bin", b"x"),
        ]
    )
    refused(data, "extra.bin", "format version 1")


@pytest.mark.parametrize("lie", [dict(size=10), dict(size=10**9), dict(crc=0)])
def test_lying_sizes_and_crc(pieces, lie):
    data = hostile.archive(
        [
            hostile.entry("model.json", json.dumps(pieces[0]).encode(), zipfile.ZIP_DEFLATED),
            hostile.entry("arrays.bin", pieces[1], **lie),
        ]
    )
    refused(data, "arrays.bin")


BOMB_SCRIPT = """
import resource, sys
import xnorinfer
data = open(sys.argv[1], "rb").read()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    xnorinfer.load(data)
    print("loaded")
except xnorinfer.ModelFormatError as exc:
    print("refused:", exc)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


def test_zip_bomb_is_refused_within_bounded_memory(pieces, tmp_path):
    """model.json inflating to 1.9 GiB behind headers claiming its real 37 kB: it used to peak at
    2.2 GB of memory and then load."""
    bomb = hostile.bomb_manifest(pieces[0], int(1.9 * (1 << 30)))
    path = tmp_path / "bomb.xnr"
    path.write_bytes(hostile.archive([bomb, hostile.entry("arrays.bin", pieces[1])]))
    assert path.stat().st_size < 3 << 20
    result = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    verdict, growth_mb = result.stdout.splitlines()
    assert verdict.startswith("refused:") and "inflates to more than the limit" in verdict, verdict
    assert int(growth_mb) < 2 * model_format.MAX_MANIFEST_BYTES >> 20, growth_mb


def test_a_manifest_at_the_limit_of_whitespace_still_loads(pieces):
    """The bounded inflate is exact: padding below MAX_MANIFEST_BYTES is just whitespace."""
    bomb = hostile.bomb_manifest(pieces[0], model_format.MAX_MANIFEST_BYTES - (1 << 20))
    text = zipfile_inflate(bomb["payload"])
    data = hostile.archive(
        [hostile.entry("model.json", text, zipfile.ZIP_DEFLATED), hostile.entry("arrays.bin", pieces[1])]
    )
    assert xnorinfer.load(data).metadata["arch"] == "reactnet-a"


def zipfile_inflate(payload):
    import zlib

    return zlib.decompressobj(-zlib.MAX_WBITS).decompress(payload)


def test_a_file_that_is_too_large_is_refused_from_bytes_and_file_objects(monkeypatch, blob):
    monkeypatch.setattr(model_format, "MAX_FILE_BYTES", len(blob) - 1)
    refused(blob, "larger than")
    refused(io.BytesIO(blob), "larger than")


def test_files_written_today_still_load(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.getinfo("model.json").compress_type == zipfile.ZIP_DEFLATED
    assert xnorinfer.load(io.BytesIO(blob)).input_size == (3, 32, 32)


# ---- JSON -------------------------------------------------------------------------------------


def test_deeply_nested_json_is_a_format_error_not_recursion_error(pieces):
    text = json.dumps(pieces[0])[:-1] + ',"x":' + "[" * 200_000 + "]" * 200_000 + "}"
    refused(
        hostile.model_file(None, pieces[1], text.encode()),
        "nests 200001 levels deep",
        f"limit of {model_format.MAX_JSON_DEPTH}",
    )


def test_brackets_inside_strings_do_not_count_as_depth(pieces):
    def deep_text(m):
        m["metadata"]["description"] = "[" * 1000 + '\\"{' * 100

    assert xnorinfer.load(edited(pieces, deep_text)).metadata["description"].startswith("[[[")


def test_huge_integer_is_a_format_error_not_value_error(pieces):
    text = json.dumps(pieces[0]).replace('"format_version": 1', '"format_version": ' + "9" * 5000)
    refused(hostile.model_file(None, pieces[1], text.encode()), "integer of 5,000 digits")


def test_integers_of_twenty_digits_are_still_integers(pieces):
    def big(m):
        m["metadata"]["seed"] = 10**19

    assert xnorinfer.load(edited(pieces, big)).metadata["seed"] == 10**19


def test_duplicate_json_keys(pieces):
    text = json.dumps(pieces[0])[:-1] + ', "arrays": {}}'
    refused(hostile.model_file(None, pieces[1], text.encode()), "key 'arrays' twice")


def test_manifest_that_is_not_utf8(pieces):
    refused(hostile.model_file(None, pieces[1], b'{"format": "\xff"}'), "not UTF-8")


# ---- schema: attributes -----------------------------------------------------------------------


@pytest.mark.parametrize("key, value", [("dilation", [2, 2]), ("transposed", True)])
def test_unknown_attributes_are_refused_naming_the_format_version(pieces, key, value):
    def newer(m):
        node(m, "bconv2d")["attrs"][key] = value

    refused(edited(pieces, newer), f"unknown attribute {key!r}", "format version 1", "bconv2d")


@pytest.mark.parametrize(
    "op, key, value, pattern",
    [
        ("bconv2d", "pad_value", "reflect", "pad_value"),
        ("bconv2d", "groups", 0, "groups"),
        ("bconv2d", "stride", [1], "stride"),
        ("bconv2d", "in_channels", True, "in_channels"),
        ("pack_signs", "zero_to", "two", "zero_to"),
        ("batch_norm", "eps", -1.0, "eps"),
        ("batch_norm", "eps", 1e999, "eps"),
        ("avg_pool2d", "ceil_mode", "yes", "ceil_mode"),
    ],
)
def test_attributes_out_of_type_or_range(pieces, op, key, value, pattern):
    def bad(m):
        node(m, op)["attrs"][key] = value

    refused(edited(pieces, bad), "inconsistent graph", pattern)


def test_missing_required_attribute(pieces):
    def bad(m):
        del node(m, "bconv2d")["attrs"]["in_channels"]

    refused(edited(pieces, bad), "'in_channels' is missing")


def test_every_op_declares_its_attributes():
    assert OPS["pack_signs"].attrs["zero_to"].choices == ("one", "minus_one")
    assert OPS["pack_signs"].attrs["zero_to"].default == "one"
    assert OPS["bconv2d"].attrs["pad_value"].choices == tuple(xnorinfer.ops.binary.PAD_VALUES)
    for name, spec in OPS.items():
        for key, attr in spec.attrs.items():
            assert attr.describe(), (name, key)


def test_unknown_manifest_keys_are_refused(pieces):
    def newer(m):
        m["graph"]["nodes"][0]["dtype"] = "int4"

    refused(edited(pieces, newer), "unknown key 'dtype'", "format version 1")


def test_too_many_nodes(pieces, monkeypatch):
    monkeypatch.setattr(model_format, "MAX_NODES", 100)
    refused(hostile.model_file(*pieces), "157 nodes, more than the limit of 100")


# ---- schema: metadata -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, pattern",
    [
        (lambda m: m["metadata"]["preprocess"].update(crop=20_000), "preprocess"),
        (lambda m: m["metadata"]["preprocess"].update(crop=0), "preprocess"),
        (lambda m: m["metadata"]["preprocess"].update(crop=16, resize=16), "crop 16 does not fit"),
        (lambda m: m["metadata"]["preprocess"].update(resize=8), "resize 8 is smaller than its crop"),
        (lambda m: m["metadata"].update(classes=5), "'classes' must be a list of strings"),
        (lambda m: m["metadata"].update(classes=["a", "b"]), "classes has 2 names for 10 outputs"),
        (lambda m: m["metadata"].update(num_classes=7), "num_classes is 7"),
        (lambda m: m["metadata"].update(mean="0.5"), "'mean' must be a list of numbers in"),
        (lambda m: m["metadata"].update(std={"r": 1}), "'std' must be a list of finite numbers >= 1e-06 (> 0)"),
        (
            lambda m: m["metadata"].update(std=[0.25, 0.0, 0.25]),
            "'std' must be a list of finite numbers >= 1e-06 (> 0)",
        ),
        (lambda m: m["metadata"].update(std=[0.25, 1e-320, 0.25]), "'std' must be a list of finite numbers >= 1e-06"),
        (lambda m: m["metadata"].update(mean=[0.5, 1e308, 0.5]), "'mean' must be a list of numbers in [-1000, 1000]"),
        (lambda m: m["metadata"].update(mean=[0.5, 0.5]), "mean has 2 values for 3 input channels"),
        (lambda m: m["metadata"].update(input_size=[3, 64, 64]), "input_size [3, 64, 64]"),
        (lambda m: m.update(metadata=[1, 2]), "'metadata' must be an object"),
    ],
)
def test_metadata_is_typed_and_consistent_with_the_graph(pieces, change, pattern):
    refused(edited(pieces, change), pattern)


def test_free_text_metadata_stays_allowed(pieces):
    def notes(m):
        m["metadata"].update(description={"any": ["json", 1]}, source=None, converter="by hand", my_key=[1])

    assert xnorinfer.load(edited(pieces, notes)).metadata["my_key"] == [1]


def test_graph_output_must_be_float_logits(pieces):
    def packed(m):
        m["graph"]["output"] = node(m, "pack_signs")["output"]

    refused(edited(pieces, packed), "packed bits, not float values")

    def feature_map(m):
        m["graph"]["output"] = node(m, "bconv2d")["output"]

    refused(edited(pieces, feature_map), "one logit per class")


def test_writer_refuses_what_the_reader_would(pieces):
    model = xnorinfer.load(hostile.model_file(*pieces))
    model.metadata["classes"] = ["only one"]
    with pytest.raises(ModelFormatError, match="classes has 1 names"):
        model.save(io.BytesIO())


def test_arena_limit(pieces, monkeypatch):
    monkeypatch.setattr(model_format, "MAX_ARENA_BYTES", 100_000)
    refused(hostile.model_file(*pieces), "bytes of working memory, more than the limit of 100,000")


# ---- paths ------------------------------------------------------------------------------------


def test_character_device_is_refused_not_read_forever():
    with pytest.raises(ModelFormatError, match="a device, not a regular file"):
        finishes(lambda: xnorinfer.load("/dev/zero"))


def test_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "model.xnr"
    os.mkfifo(fifo)
    with pytest.raises(ModelFormatError, match="a FIFO, not a regular file"):
        finishes(lambda: xnorinfer.load(fifo))


def test_directory_and_missing_paths_keep_their_os_errors(tmp_path):
    with pytest.raises(IsADirectoryError):
        xnorinfer.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        xnorinfer.load(tmp_path / "none.xnr")


def test_cli_reports_hostile_files_in_one_line(pieces, tmp_path, capsys):
    path = tmp_path / "deep.xnr"
    path.write_bytes(hostile.model_file(None, pieces[1], b"[" * 100_000))
    for target in (str(path), "/dev/zero"):
        assert main(["info", target]) == ExitCode.BAD_INPUT
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("xnorinfer info: error:")


def test_the_documented_attribute_table_is_the_op_sets():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "file-format.md").read_text()
    documented = doc.split("<!-- attribute table: begin -->\n")[1].split("\n<!-- attribute table: end -->")[0]
    assert documented == xnorinfer.graph.opset.attribute_table()

"""The .xnr model file: one zip archive holding

    model.json   format name and version, metadata, the graph (nodes, attributes, and for each
                 parameter the name of its array) and every array's dtype, shape and offset
    arrays.bin   the arrays' little-endian bytes back to back, each at a 64-byte aligned offset;
                 binary weights are uint64 packed words

No pickle anywhere: arrays are views of arrays.bin made with numpy.frombuffer, and only float32
and uint64 are accepted (one blob instead of a file per array keeps the overhead of a
ReActNet-A file at a few kB and its loading at one read).
Reading trusts nothing in the file: every entry is read under the limits below (a deflated
entry is inflated at most to its limit, whatever its headers claim), the manifest is checked
against its schema (the op set's attribute tables, METADATA_SCHEMA) and the graph is fully
shape-checked, so a corrupt, hostile, inconsistent or newer-version file fails with one
ModelFormatError saying what and where. docs/file-format.md lists the limits and the schema."""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import zipfile
import zlib

import numpy as np

from ._files import open_regular_file, read_bounded
from ._version import __version__
from .graph import Graph, GraphError, Node, infer_shapes
from .graph.ir import TensorInfo
from .graph.opset import MAX_ATTR, UnknownAttributeError

FORMAT_NAME = "xnorinfer-model"
FORMAT_VERSION = 1
MANIFEST = "model.json"
ARRAYS = "arrays.bin"
ALIGN = 64
DTYPES = {"float32": np.dtype("<f4"), "uint64": np.dtype("<u8")}

# Limits on what a file may make load() do, whatever it claims.
MAX_FILE_BYTES = 2 << 30  # a whole .xnr file (ReActNet-A: 8 MB, XNOR AlexNet: 24 MB)
MAX_MANIFEST_BYTES = 16 << 20  # model.json inflated (ReActNet-A's: 37 kB)
MAX_JSON_DEPTH = 64  # nesting of model.json (the format needs 5)
MAX_INT_DIGITS = 20  # digits of a JSON integer: a uint64 fits, a 5,000-digit one is refused
MAX_NODES = 10_000  # graph nodes (ReActNet-A: 157)
MAX_ARRAY_RANK = 8
MAX_PREPROCESS_SIDE = 4_096  # metadata preprocess crop and resize, pixels
MAX_ARENA_BYTES = 1 << 30  # one image's input and intermediates at the stored input size
# Normalisation of pixels in [0, 1]: bounds that keep (pixel - mean) / std far from float32's range.
MAX_ABS_MEAN = 1e3
MIN_STD = 1e-6

ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # a zip local file header (APPNOTE 4.3.7)


class ModelFormatError(ValueError):
    """The file is not a valid xnorinfer model: corrupt, truncated, hostile, over a limit, from a
    newer writer, or inconsistent. The message says what and where."""


def save(graph: Graph, metadata: dict, file) -> None:
    """Write graph and metadata to a path or a binary file object. Refuses what load() would
    refuse (the same schema), so every file written can be read."""
    infos = infer_shapes(graph)
    check_metadata(metadata, graph, infos)
    arrays, nodes = {}, []
    for node in graph.nodes:
        params = {}
        for pname, value in node.params.items():
            key = f"p{len(arrays)}"
            dtype = np.dtype(value.dtype).name
            if dtype not in DTYPES:
                raise ModelFormatError(f"node {node.name!r}: parameter {pname!r} has unsupported dtype {dtype}")
            arrays[key] = np.ascontiguousarray(value, dtype=DTYPES[dtype])
            params[pname] = key
        nodes.append(
            {
                "name": node.name,
                "op": node.op,
                "inputs": node.inputs,
                "output": node.output,
                "attrs": node.attrs,
                "params": params,
            }
        )
    offsets, end = {}, 0
    for key, array in arrays.items():
        offsets[key] = end
        end = -(-(end + array.nbytes) // ALIGN) * ALIGN
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "producer": f"xnorinfer {__version__}",
        "metadata": metadata,
        "graph": {"input": graph.input, "input_shape": list(graph.input_shape), "output": graph.output, "nodes": nodes},
        "arrays": {k: {"dtype": a.dtype.name, "shape": list(a.shape), "offset": offsets[k]} for k, a in arrays.items()},
    }
    blob = bytearray(end)
    for key, array in arrays.items():
        blob[offsets[key] : offsets[key] + array.nbytes] = array.tobytes()
    target = file
    if isinstance(file, (str, os.PathLike)):
        target = open(file, "wb")
    try:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
            # The manifest is repetitive text and deflates ~8x; the arrays do not compress and stay stored.
            zf.writestr(
                MANIFEST,
                json.dumps(manifest, separators=(",", ":"), default=_json_default),
                compress_type=zipfile.ZIP_DEFLATED,
            )
            zf.writestr(ARRAYS, bytes(blob))
    finally:
        if target is not file:
            target.close()


def load(file) -> tuple[Graph, dict]:
    """Read (graph, metadata) from a path, a binary file object or bytes, within the limits above."""
    where = os.fspath(file) if isinstance(file, (str, os.PathLike)) else "model data"
    try:
        data = _read_source(file, where)
        graph, metadata = _read(data)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{where}: {exc}") from None
    except (FileNotFoundError, IsADirectoryError):
        raise
    except OSError as exc:
        raise ModelFormatError(f"{where}: cannot be read as a model file: {exc}") from None
    return graph, metadata


def _read_source(file, where) -> bytes:
    if isinstance(file, (bytes, bytearray, memoryview)):
        data = bytes(file)
        if len(data) > MAX_FILE_BYTES:
            raise ModelFormatError(f"larger than {MAX_FILE_BYTES:,} bytes, refused")
        return data
    if isinstance(file, (str, os.PathLike)):
        with open_regular_file(file, ModelFormatError) as f:
            return read_bounded(f, MAX_FILE_BYTES, ModelFormatError, "the file")
    if not hasattr(file, "read"):
        raise TypeError(f"a model is a path, bytes or a binary file object, got {type(file).__name__}")
    return read_bounded(file, MAX_FILE_BYTES, ModelFormatError, "the file")


def _read(data: bytes) -> tuple[Graph, dict]:
    entries = _zip_entries(data)
    if MANIFEST not in entries:
        raise ModelFormatError(f"no {MANIFEST}: not an xnorinfer model")
    manifest = _parse_json(_entry_bytes(data, entries[MANIFEST], MAX_MANIFEST_BYTES))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ModelFormatError("not an xnorinfer model (format name missing)")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFormatError(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"format version {version} is newer than this xnorinfer {__version__} reads ({FORMAT_VERSION}); "
            "upgrade xnorinfer"
        )
    # From here on a surprise is either corruption or a newer writer that kept the version number.
    newer = f"not in format version {version} (file written by {str(manifest.get('producer'))[:80]!r})"
    _fields(manifest, "the manifest", MANIFEST_FIELDS, newer)
    extra = [name for name in entries if name not in (MANIFEST, ARRAYS)]
    if extra:
        raise ModelFormatError(f"unexpected archive entry {extra[0][:80]!r}: {newer}")
    graph_doc, array_doc, metadata = manifest["graph"], manifest["arrays"], manifest.get("metadata", {})
    _fields(graph_doc, "graph", GRAPH_FIELDS, newer)
    if len(graph_doc["nodes"]) > MAX_NODES:
        raise ModelFormatError(f"graph has {len(graph_doc['nodes']):,} nodes, more than the limit of {MAX_NODES:,}")
    _check_input_shape(graph_doc["input_shape"])

    if ARRAYS not in entries:
        raise ModelFormatError(f"no {ARRAYS} in the archive")
    if entries[ARRAYS].compress_type != zipfile.ZIP_STORED:
        # Stored data occupies its size in the file, so reading it cannot inflate a small file.
        raise ModelFormatError(f"{ARRAYS} must be stored uncompressed")
    blob = _aligned(_entry_bytes(data, entries[ARRAYS], MAX_FILE_BYTES))
    arrays = {key: _read_array(blob, key, spec, newer) for key, spec in array_doc.items()}
    nodes = []
    for i, doc in enumerate(graph_doc["nodes"]):
        if not isinstance(doc, dict):
            raise ModelFormatError(f"malformed node description {str(doc)[:80]!r} (node {i})")
        _fields(doc, f"node {i}", NODE_FIELDS, newer)
        params = {}
        for pname, key in doc["params"].items():
            if not isinstance(key, str) or key not in arrays:
                raise ModelFormatError(f"node {doc['name']!r} refers to missing array {key!r}")
            params[pname] = arrays[key]
        if not all(isinstance(name, str) for name in doc["inputs"]):
            raise ModelFormatError(f"node {doc['name']!r}: inputs must be a list of names")
        nodes.append(Node(doc["op"], doc["name"], list(doc["inputs"]), doc["output"], dict(doc["attrs"]), params))
    graph = Graph(nodes, graph_doc["input"], tuple(graph_doc["input_shape"]), graph_doc["output"])
    try:
        infos = infer_shapes(graph)
    except UnknownAttributeError as exc:
        raise ModelFormatError(f"{exc}: {newer}; a newer xnorinfer may read it") from None
    except GraphError as exc:
        raise ModelFormatError(f"inconsistent graph: {exc}") from None
    check_metadata(metadata, graph, infos)
    return graph, metadata


# ---- the zip layer: headers are read, never believed ----------------------------------------------


def _zip_entries(data: bytes) -> dict:
    """{name: ZipInfo} of the archive's central directory, each entry one we can read."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        struct.error,
        ValueError,
        OverflowError,
        NotImplementedError,
    ) as exc:
        # zipfile's own words for a corrupt central directory (bad lengths, bad names, ...).
        raise ModelFormatError(f"not a valid xnorinfer model file (corrupt or truncated: {exc})") from None
    entries = {}
    for info in infos:
        if info.filename in entries:
            raise ModelFormatError(f"the archive has two entries named {info.filename!r}")
        entries[info.filename] = info
    return entries


def _entry_bytes(data: bytes, info: zipfile.ZipInfo, limit: int):
    """An entry's bytes, inflated at most to `limit`, with its local header, size and CRC checked."""
    name = info.filename
    if info.flag_bits & 0x1:
        raise ModelFormatError(f"{name} is encrypted")
    if info.compress_type not in ZIP_METHODS:
        raise ModelFormatError(
            f"{name} uses compression method {info.compress_type}; only {' and '.join(ZIP_METHODS.values())} are read"
        )
    if info.file_size > limit:
        raise ModelFormatError(f"{name} is {info.file_size:,} bytes, more than the limit of {limit:,}")
    offset = info.header_offset
    if offset < 0 or offset + _LOCAL_HEADER.size > len(data):
        raise ModelFormatError(f"{name}: local header beyond the end of the file (truncated)")
    fields = _LOCAL_HEADER.unpack_from(data, offset)
    if fields[0] != b"PK\x03\x04":
        raise ModelFormatError(f"{name}: bad local header signature (corrupt)")
    name_len, extra_len = fields[10], fields[11]
    start = offset + _LOCAL_HEADER.size + name_len + extra_len
    local_name = data[offset + _LOCAL_HEADER.size : offset + _LOCAL_HEADER.size + name_len]
    if local_name != name.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace"):
        raise ModelFormatError(f"{name}: the local header names {local_name[:80]!r} (corrupt)")
    end = start + info.compress_size
    if end > len(data):
        raise ModelFormatError(f"{name}: {info.compress_size:,} bytes claimed, the file ends first (truncated)")
    raw = memoryview(data)[start:end]
    if info.compress_type == zipfile.ZIP_STORED:
        content = raw
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            content = inflater.decompress(raw, limit + 1)  # never more than the limit, whatever the headers say
        except zlib.error as exc:
            raise ModelFormatError(f"{name}: corrupt compressed data (zlib: {exc})") from None
        if len(content) > limit:
            raise ModelFormatError(f"{name} inflates to more than the limit of {limit:,} bytes")
        if not inflater.eof:
            raise ModelFormatError(f"{name}: compressed data is truncated")
    if len(content) != info.file_size:
        raise ModelFormatError(f"{name}: {len(content):,} bytes where the directory says {info.file_size:,}")
    if zlib.crc32(content) != info.CRC:
        raise ModelFormatError(f"{name}: CRC mismatch (corrupt)")
    return content


# ---- JSON within limits -----------------------------------------------------------------------------

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _parse_json(raw) -> object:
    raw = bytes(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"{MANIFEST} is not valid JSON: not UTF-8 ({exc})") from None
    # The depth is measured before parsing: json's recursive descent would otherwise decide.
    brackets = np.frombuffer(_JSON_STRING.sub(b'""', raw), np.uint8)
    steps = np.isin(brackets, (ord("["), ord("{"))).astype(np.int32) - np.isin(brackets, (ord("]"), ord("}")))
    depth = int(np.cumsum(steps).max(initial=0))
    if depth > MAX_JSON_DEPTH:
        raise ModelFormatError(f"{MANIFEST} nests {depth} levels deep, more than the limit of {MAX_JSON_DEPTH}")
    try:
        # Infinity, NaN and 1e999 parse as floats: the schema refuses them where a number is read,
        # naming the field.
        return json.loads(text, parse_int=_json_int, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{MANIFEST} is not valid JSON: {exc}") from None


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ModelFormatError(
            f"{MANIFEST} has an integer of {len(text.lstrip('-')):,} digits (limit {MAX_INT_DIGITS}): {text[:24]}..."
        )
    return int(text)


def _json_object(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ModelFormatError(f"{MANIFEST} has the key {duplicate!r} twice in one object")
    return result


# ---- the manifest's schema ----------------------------------------------------------------------------


def _list_of_int(v) -> bool:
    return isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)


STRING = (lambda v: isinstance(v, str), "a string")
OBJECT = (lambda v: isinstance(v, dict), "an object")  # an optional one defaults to {}

# {key: (required, type check, what it must be)}
MANIFEST_FIELDS = {
    "format": (True, *STRING),
    "format_version": (True, lambda v: isinstance(v, int), "an int"),
    "producer": (False, *STRING),
    "metadata": (False, *OBJECT),
    "graph": (True, *OBJECT),
    "arrays": (True, *OBJECT),
}
GRAPH_FIELDS = {
    "input": (True, *STRING),
    "output": (True, *STRING),
    "input_shape": (True, lambda v: _list_of_int(v) and len(v) == 3, "3 ints (H, W, C)"),
    "nodes": (True, lambda v: isinstance(v, list), "a list"),
}
NODE_FIELDS = {
    "name": (True, *STRING),
    "op": (True, *STRING),
    "output": (True, *STRING),
    "inputs": (True, lambda v: isinstance(v, list), "a list of tensor names"),
    "attrs": (False, *OBJECT),
    "params": (False, *OBJECT),
}
ARRAY_FIELDS = {
    "dtype": (True, lambda v: isinstance(v, str) and v in DTYPES, f"one of {', '.join(DTYPES)}"),
    "shape": (
        True,
        lambda v: _list_of_int(v) and len(v) <= MAX_ARRAY_RANK and all(d >= 0 for d in v),
        f"a list of at most {MAX_ARRAY_RANK} ints >= 0",
    ),
    "offset": (True, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an int >= 0"),
}


def _fields(doc, where: str, table: dict, newer: str) -> None:
    """doc is an object with the table's keys, each of its type; a missing optional one is filled
    with an empty object (attrs, params, metadata)."""
    if not isinstance(doc, dict):
        raise ModelFormatError(f"{where} must be an object, got {str(doc)[:80]!r}")
    unknown = [k for k in doc if k not in table]
    if unknown:
        raise ModelFormatError(f"{where}: unknown key {unknown[0]!r}: {newer}")
    for key, (required, check, what) in table.items():
        if key not in doc:
            if required:
                raise ModelFormatError(f"malformed graph description: {where} lacks {key!r}")
            if what == OBJECT[1]:
                doc[key] = {}
        elif not check(doc[key]):
            raise ModelFormatError(f"{where}: {key!r} must be {what}, got {str(doc[key])[:80]!r}")


def _check_input_shape(shape) -> None:
    if not all(1 <= d <= MAX_ATTR for d in shape):
        raise ModelFormatError(f"graph input_shape {shape} must be 3 ints in [1, {MAX_ATTR}]")


def _aligned(blob) -> np.ndarray:
    """The bytes of arrays.bin at an ALIGN-byte aligned address, read-only: a copy where they are
    not. Within the file they start wherever the zip headers end, and the kernels read uint64 and
    float32 words from the arrays in place: unaligned, that is undefined behaviour in C, and a bus
    error on 32-bit ARM (LDRD, VLDR)."""
    view = np.frombuffer(blob, np.uint8)
    if view.__array_interface__["data"][0] % ALIGN:
        raw = np.empty(view.size + ALIGN, np.uint8)
        skip = -raw.__array_interface__["data"][0] % ALIGN
        view = raw[skip : skip + view.size]
        view[...] = np.frombuffer(blob, np.uint8)
    view.flags.writeable = False
    return view


def _read_array(blob, key: str, spec, newer: str) -> np.ndarray:
    if (
        not isinstance(spec, dict)
        or not ARRAY_FIELDS["dtype"][1](spec.get("dtype"))
        or not isinstance(spec.get("shape"), list)
    ):
        raise ModelFormatError(f"array {key!r} has an invalid description {str(spec)[:120]}")
    _fields(spec, f"array {key!r}", ARRAY_FIELDS, newer)
    dtype, shape, offset = DTYPES[spec["dtype"]], tuple(spec["shape"]), spec["offset"]
    count = math.prod(shape)  # Python ints: a crafted shape cannot overflow
    if offset % dtype.itemsize or offset + count * dtype.itemsize > len(blob):
        raise ModelFormatError(
            f"array {key!r}: offset {offset!r} and shape {shape} do not fit {ARRAYS} ({len(blob)} bytes)"
        )
    return np.frombuffer(blob, dtype=dtype, count=count, offset=offset).reshape(shape)


# ---- metadata: free text allowed, the keys the engine reads typed and consistent with the graph ----------


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1


# {key: (type check, what it must be)}; None is allowed for each (the converter writes
# "dataset": None when it is not told); keys not listed are free (description, source, training...).
METADATA_SCHEMA = {
    "arch": (lambda v: isinstance(v, str), "a string"),
    "dataset": (lambda v: isinstance(v, str), "a string"),
    "converter": (lambda v: isinstance(v, str), "a string"),
    "num_classes": (_is_count, "an int >= 1, the graph's outputs"),
    "classes": (
        lambda v: isinstance(v, (list, tuple)) and all(isinstance(c, str) for c in v),
        "a list of strings, one per output",
    ),
    "input_size": (
        lambda v: isinstance(v, (list, tuple)) and len(v) == 3 and all(map(_is_count, v)),
        "[C, H, W], the graph's input",
    ),
    "mean": (
        lambda v: isinstance(v, (list, tuple)) and all(_is_number(m) and abs(m) <= MAX_ABS_MEAN for m in v),
        f"a list of numbers in [-{MAX_ABS_MEAN:g}, {MAX_ABS_MEAN:g}], one per input channel",
    ),
    "std": (
        lambda v: isinstance(v, (list, tuple)) and all(_is_number(s) and s >= MIN_STD for s in v),
        f"a list of finite numbers >= {MIN_STD:g} (> 0), one per input channel",
    ),
    "preprocess": (
        lambda v: (
            isinstance(v, dict)
            and set(v) <= {"resize", "crop"}
            and all(_is_count(s) and s <= MAX_PREPROCESS_SIDE for s in v.values())
        ),
        f"{{resize, crop}}: ints in [1, {MAX_PREPROCESS_SIDE}]",
    ),
}


def check_metadata(metadata, graph: Graph, infos: dict[str, TensorInfo]) -> None:
    """Metadata typed by METADATA_SCHEMA and consistent with the graph; the graph's output float
    (and for a classifier, one logit per class). Raises ModelFormatError."""
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"metadata must be an object, got {type(metadata).__name__}")
    for key, (check, what) in METADATA_SCHEMA.items():
        value = metadata.get(key)
        if value is not None and not check(value):
            raise ModelFormatError(f"metadata {key!r} must be {what}, got {str(value)[:80]}")
    out = infos[graph.output]
    if out.packed:
        raise ModelFormatError(f"graph output {graph.output!r} is {out}: packed bits, not float values")
    h, w, c = graph.input_shape
    given = {k: metadata.get(k) for k in ("classes", "num_classes") if metadata.get(k) is not None}
    if given and len(out.shape) != 1:
        raise ModelFormatError(f"graph output {graph.output!r} is {out}; a classifier's must be one logit per class")
    if metadata.get("classes") is not None and len(metadata["classes"]) != out.shape[0]:
        raise ModelFormatError(f"metadata classes has {len(metadata['classes'])} names for {out.shape[0]} outputs")
    if metadata.get("num_classes") is not None and metadata["num_classes"] != out.shape[0]:
        raise ModelFormatError(
            f"metadata num_classes is {metadata['num_classes']}, the graph has {out.shape[0]} outputs"
        )
    if metadata.get("input_size") is not None and list(metadata["input_size"]) != [c, h, w]:
        raise ModelFormatError(
            f"metadata input_size {list(metadata['input_size'])} is not the graph's [C, H, W] {[c, h, w]}"
        )
    for key in ("mean", "std"):
        if metadata.get(key) is not None and len(metadata[key]) != c:
            raise ModelFormatError(f"metadata {key} has {len(metadata[key])} values for {c} input channels")
    options = metadata.get("preprocess") or {}
    crop = options.get("crop", h)
    if "crop" in options and not crop == h == w:
        raise ModelFormatError(f"metadata preprocess crop {crop} does not fit the graph's {h}x{w} input")
    if options.get("resize", crop) < crop:
        raise ModelFormatError(f"metadata preprocess resize {options['resize']} is smaller than its crop {crop}")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in model metadata")

"""The .xnr model file: one zip archive (stored, not compressed) holding

    model.json   format name and version, metadata, the graph (nodes, attributes, and for each
                 parameter the name of its array) and every array's dtype, shape and offset
    arrays.bin   the arrays' little-endian bytes back to back, each at a 64-byte aligned offset;
                 binary weights are uint64 packed words

No pickle anywhere: arrays are views of arrays.bin made with numpy.frombuffer, and only float32
and uint64 are accepted (one blob instead of a file per array keeps the overhead of a
ReActNet-A file at a few kB and its loading at one read).
Everything read is checked against the manifest, and the graph is fully shape-checked on load, so
a corrupt, truncated, inconsistent or newer-version file fails with ModelFormatError."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from ._version import __version__
from .graph import Graph, GraphError, Node, infer_shapes

FORMAT_NAME = "xnorinfer-model"
FORMAT_VERSION = 1
MANIFEST = "model.json"
ARRAYS = "arrays.bin"
ALIGN = 64
DTYPES = {"float32": np.dtype("<f4"), "uint64": np.dtype("<u8")}
MAX_MANIFEST_BYTES = 64 << 20


class ModelFormatError(ValueError):
    """The file is not a valid xnorinfer model."""


def save(graph: Graph, metadata: dict, file) -> None:
    """Write graph and metadata to a path or a binary file object."""
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
        nodes.append({"name": node.name, "op": node.op, "inputs": node.inputs, "output": node.output,
                      "attrs": node.attrs, "params": params})
    offsets, end = {}, 0
    for key, array in arrays.items():
        offsets[key] = end
        end = -(-(end + array.nbytes) // ALIGN) * ALIGN
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "producer": f"xnorinfer {__version__}",
        "metadata": metadata,
        "graph": {"input": graph.input, "input_shape": list(graph.input_shape), "output": graph.output,
                  "nodes": nodes},
        "arrays": {k: {"dtype": a.dtype.name, "shape": list(a.shape), "offset": offsets[k]}
                   for k, a in arrays.items()},
    }
    blob = bytearray(end)
    for key, array in arrays.items():
        blob[offsets[key]:offsets[key] + array.nbytes] = array.tobytes()
    target = file
    if isinstance(file, (str, os.PathLike)):
        target = open(file, "wb")
    try:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
            # The manifest is repetitive text and deflates ~8x; the arrays do not compress and stay stored.
            zf.writestr(MANIFEST, json.dumps(manifest, separators=(",", ":"), default=_json_default),
                        compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr(ARRAYS, bytes(blob))
    finally:
        if target is not file:
            target.close()


def load(file) -> tuple[Graph, dict]:
    """Read (graph, metadata) from a path, a binary file object or bytes."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        file = io.BytesIO(file)
    where = file if isinstance(file, (str, os.PathLike)) else "model data"
    try:
        with zipfile.ZipFile(file) as zf:
            return _read(zf)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{where}: {exc}") from None
    except GraphError as exc:
        raise ModelFormatError(f"{where}: inconsistent graph: {exc}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise ModelFormatError(f"{where}: not a valid xnorinfer model file (corrupt or truncated: {exc})") from None
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ModelFormatError(f"{where}: cannot be read as a model file: {exc}") from None


def _read(zf: zipfile.ZipFile) -> tuple[Graph, dict]:
    entries = {info.filename: info for info in zf.infolist()}
    if MANIFEST not in entries:
        raise ModelFormatError(f"no {MANIFEST}: not an xnorinfer model")
    if entries[MANIFEST].file_size > MAX_MANIFEST_BYTES:
        raise ModelFormatError(f"{MANIFEST} is implausibly large")
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ModelFormatError("not an xnorinfer model (format name missing)")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFormatError(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"format version {version} is newer than this xnorinfer {__version__} reads ({FORMAT_VERSION}); "
            "upgrade xnorinfer")
    metadata = manifest.get("metadata", {})
    graph_doc, array_doc = manifest.get("graph"), manifest.get("arrays")
    if not isinstance(metadata, dict) or not isinstance(graph_doc, dict) or not isinstance(array_doc, dict):
        raise ModelFormatError("manifest lacks metadata, graph or arrays")

    if ARRAYS not in entries:
        raise ModelFormatError(f"no {ARRAYS} in the archive")
    if entries[ARRAYS].compress_type != zipfile.ZIP_STORED:
        # Stored data occupies its size in the file, so reading it cannot inflate a small file.
        raise ModelFormatError(f"{ARRAYS} must be stored uncompressed")
    blob = zf.read(ARRAYS)
    arrays = {key: _read_array(blob, key, spec) for key, spec in array_doc.items()}
    try:
        nodes = []
        if not isinstance(graph_doc["nodes"], list):
            raise ModelFormatError("graph nodes must be a list")
        for doc in graph_doc["nodes"]:
            if not isinstance(doc, dict) or not isinstance(doc.get("params", {}), dict):
                raise ModelFormatError(f"malformed node description {str(doc)[:80]!r}")
            params = {}
            for pname, key in doc.get("params", {}).items():
                if key not in arrays:
                    raise ModelFormatError(f"node {doc.get('name')!r} refers to missing array {key!r}")
                params[pname] = arrays[key]
            inputs = doc["inputs"]
            if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
                raise ModelFormatError(f"node {doc.get('name')!r}: inputs must be a list of names")
            if not isinstance(doc.get("attrs", {}), dict):
                raise ModelFormatError(f"node {doc.get('name')!r}: attrs must be an object")
            nodes.append(Node(str(doc["op"]), str(doc["name"]), inputs, str(doc["output"]),
                              dict(doc.get("attrs", {})), params))
        graph = Graph(nodes, str(graph_doc["input"]), tuple(graph_doc["input_shape"]), str(graph_doc["output"]))
    except (KeyError, TypeError) as exc:
        raise ModelFormatError(f"malformed graph description ({type(exc).__name__}: {exc})") from None
    infer_shapes(graph)
    return graph, metadata


def _read_array(blob: bytes, key: str, spec) -> np.ndarray:
    if not isinstance(spec, dict) or spec.get("dtype") not in DTYPES or not isinstance(spec.get("shape"), list):
        raise ModelFormatError(f"array {key!r} has an invalid description {spec!r}")
    dtype, shape, offset = DTYPES[spec["dtype"]], tuple(spec["shape"]), spec.get("offset")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ModelFormatError(f"array {key!r} has an invalid shape {shape}")
    count = 1
    for d in shape:  # Python ints: a crafted shape cannot overflow
        count *= d
    if not isinstance(offset, int) or offset < 0 or offset % dtype.itemsize or offset + count * dtype.itemsize > len(blob):
        raise ModelFormatError(f"array {key!r}: offset {offset!r} and shape {shape} do not fit {ARRAYS} "
                               f"({len(blob)} bytes)")
    return np.frombuffer(blob, dtype=dtype, count=count, offset=offset).reshape(shape)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in model metadata")

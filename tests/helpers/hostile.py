"""Hand-made .xnr archives (and images) for the hostile-input tests and the fuzzer: a zip writer that writes
whatever its caller claims (sizes, CRCs, flags, methods, duplicate names), which zipfile refuses
to do, and helpers to take a model file apart and put it back together."""

from __future__ import annotations

import io
import json
import struct
import threading
import zipfile
import zlib

LOCAL = struct.Struct("<4sHHHHHLLLHH")  # zip local file header
CENTRAL = struct.Struct("<4sHHHHHHLLLHHHHHLL")  # central directory entry
END = struct.Struct("<4sHHHHLLH")  # end of central directory


def entry(name: str, data: bytes, method: int = zipfile.ZIP_STORED, **lies) -> dict:
    """One archive entry holding `data`, stored or deflated; `lies` overrides what the headers say
    (size, crc, flags, method)."""
    payload = data if method == zipfile.ZIP_STORED else deflate(data)
    return dict(dict(name=name, payload=payload, method=method, size=len(data), crc=zlib.crc32(data), flags=0), **lies)


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def archive(entries: list[dict]) -> bytes:
    """A zip of the entries exactly as described, headers and all."""
    out, central = io.BytesIO(), []
    for e in entries:
        name, offset = e["name"].encode(), out.tell()
        out.write(
            LOCAL.pack(
                b"PK\x03\x04",
                20,
                e["flags"],
                e["method"],
                0,
                0x21,
                e["crc"],
                len(e["payload"]),
                e["size"],
                len(name),
                0,
            )
            + name
            + e["payload"]
        )
        central.append(
            CENTRAL.pack(
                b"PK\x01\x02",
                20,
                20,
                e["flags"],
                e["method"],
                0,
                0x21,
                e["crc"],
                len(e["payload"]),
                e["size"],
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    directory = b"".join(central)
    start = out.tell()
    out.write(directory + END.pack(b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), start, 0))
    return out.getvalue()


def parts(blob: bytes) -> tuple[dict, bytes]:
    """(manifest, arrays.bin bytes) of a model file."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return json.loads(zf.read("model.json")), zf.read("arrays.bin")


def model_file(manifest, arrays: bytes, manifest_bytes: bytes | None = None) -> bytes:
    """A well-formed archive (deflated manifest, stored arrays) of possibly ill-formed content."""
    text = manifest_bytes if manifest_bytes is not None else json.dumps(manifest).encode()
    return archive([entry("model.json", text, zipfile.ZIP_DEFLATED), entry("arrays.bin", arrays)])


def bomb_manifest(manifest, inflated_bytes: int) -> dict:
    """A model.json entry that inflates to `inflated_bytes` (the manifest, then spaces: still valid
    JSON) while its headers claim the manifest's own size and CRC. Built from one compressed
    megabyte of spaces repeated (after a full flush deflate blocks carry no history), so a
    2 GiB bomb costs 2 MB and no compression time."""
    text = json.dumps(manifest).encode()
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = c.compress(text) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(b" " * (1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    payload = head + block * max(0, (inflated_bytes - len(text)) >> 20) + c.flush(zlib.Z_FINISH)
    return dict(
        name="model.json", payload=payload, method=zipfile.ZIP_DEFLATED, size=len(text), crc=zlib.crc32(text), flags=0
    )


def png_with_size(width, height):
    """A valid PNG header claiming width x height (the pixel data is not needed to refuse it)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def finishes(fn, seconds=20):
    """fn() in a thread; its result, or a failure if it does not return in time (a hang)."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 -- handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung"
    if "error" in box:
        raise box["error"]
    return box.get("value")

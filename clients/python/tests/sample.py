"""The model the tests push, and small helpers to compare folders."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from kiln import Registry

MODEL = "acme/roundtrip"
VERSION = "1.0.0"
MIB = 1024 * 1024


def write_model(folder: Path, big_size: int) -> dict[str, bytes]:
    """A folder of a few files: one larger than one upload part, a nested one whose name needs
    percent-encoding, an empty one, and two with the same bytes (one blob). Not a model kiln can convert,
    so the pipeline settles fast: scanned, nothing to convert."""
    settings = json.dumps({"labels": ["negative", "positive"]}).encode()
    files = {
        "settings.json": settings,
        "weights/model.bin": os.urandom(big_size),
        "docs/read me.txt": b"what this is, in a file whose name has a space\n",
        "empty.txt": b"",
        "copy/settings.json": settings,
    }
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return files


def read_folder(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by its relative path (partial downloads included, so leftovers show)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def part_size(registry: Registry) -> int:
    """The server's part size: the server tells it in an upload session, so open one and abort it."""
    response = registry.http.post("/api/v1/uploads", json={"digest": "sha256:" + "ab" * 32, "size": 1})
    response.raise_for_status()
    session = response.json()
    registry.http.delete(f"/api/v1/uploads/{session['id']}").raise_for_status()
    return session["part_size"]


def write_tiny_onnx(path: Path) -> None:
    """A tiny ONNX model, y = x @ W + b (MatMul, Add; W 4x3 and b initializers), written as raw protobuf so
    that the tests need no onnx package: kiln converts and optimizes it into variants in well under a second."""
    graph = (
        msg(1, node(["x", "W"], ["h"], "MatMul", "matmul"))
        + msg(1, node(["h", "b"], ["y"], "Add", "add"))
        + text(2, "tiny")
        + msg(5, initializer("W", [4, 3], [0.1 * i for i in range(12)]))
        + msg(5, initializer("b", [3], [0.5, -0.5, 0.25]))
        + msg(11, value_info("x", ["batch", 4]))
        + msg(12, value_info("y", ["batch", 3]))
    )
    # ModelProto: ir_version 8, producer_name, graph, opset_import {domain "", version 17}
    model = field(1, 0, 8) + text(2, "kiln-tests") + msg(7, graph) + msg(8, text(1, "") + field(2, 0, 17))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model)


# Protobuf's wire format, just enough of it for ONNX's ModelProto (field numbers from onnx.proto).


def varint(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def field(number: int, wire_type: int, value: int | bytes) -> bytes:
    """One field: a varint (wire type 0) or length-delimited bytes (2)."""
    key = varint(number << 3 | wire_type)
    if wire_type == 0:
        return key + varint(value)
    return key + varint(len(value)) + value


def text(number: int, value: str) -> bytes:
    return field(number, 2, value.encode())


def msg(number: int, body: bytes) -> bytes:
    return field(number, 2, body)


def value_info(name: str, dims: list[int | str]) -> bytes:
    """ValueInfoProto of a float tensor; a str dim is symbolic (dim_param)."""
    shape = b"".join(msg(1, field(1, 0, d) if isinstance(d, int) else text(2, d)) for d in dims)
    tensor_type = field(1, 0, 1) + msg(2, shape)  # elem_type FLOAT, shape
    return text(1, name) + msg(2, msg(1, tensor_type))


def initializer(name: str, dims: list[int], values: list[float]) -> bytes:
    """TensorProto: dims, data_type FLOAT, name, raw_data (little-endian float32)."""
    raw = struct.pack(f"<{len(values)}f", *values)
    return b"".join(field(1, 0, d) for d in dims) + field(2, 0, 1) + text(8, name) + field(9, 2, raw)


def node(inputs: list[str], outputs: list[str], op_type: str, name: str) -> bytes:
    return (
        b"".join(text(1, i) for i in inputs) + b"".join(text(2, o) for o in outputs) + text(3, name) + text(4, op_type)
    )

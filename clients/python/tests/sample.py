"""The model the tests push, and small helpers to compare folders."""

from __future__ import annotations

import json
import os
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

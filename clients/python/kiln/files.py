"""Local files: what a push sends (relative paths, sizes, sha256 digests) and where a pull may write."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import KilnError

HASH_BLOCK = 1 << 20

# The server refuses these in file paths (docs/api.md); a pull checks again before joining a path the server
# sent onto the output folder, so that no path can write outside it on any platform.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_DEVICE_NAMES = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class LocalFile:
    path: str  # relative, `/`-separated: the path in the version
    source: Path
    size: int
    digest: str  # sha256:HEX


def hash_into(path: Path, hasher: Any) -> int:
    """Feeds the file's bytes to `hasher` (a hashlib object); the number of bytes."""
    total = 0
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            hasher.update(block)
            total += len(block)
    return total


def sha256_file(path: Path) -> str:
    """The file's digest as kiln writes it (`sha256:HEX`)."""
    hasher = hashlib.sha256()
    hash_into(path, hasher)
    return "sha256:" + hasher.hexdigest()


def collect(folder: Path) -> list[LocalFile]:
    """Every regular file under `folder` (or `folder` itself when it is a file), hashed, sorted by path."""
    folder = Path(folder)
    if folder.is_file():
        return [_local(folder.name, folder)]
    if not folder.is_dir():
        raise KilnError("not_found", f"{folder} is neither a file nor a folder")
    files = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            source = Path(root, name)
            if not source.is_file():
                raise KilnError(
                    "not_a_file",
                    f"{source} is not a regular file (a socket, pipe or device); remove it or push without it",
                )
            files.append(_local(source.relative_to(folder).as_posix(), source))
    if not files:
        raise KilnError("empty_folder", f"{folder} holds no files: a version needs at least one")
    return sorted(files, key=lambda f: f.path)


def _local(path: str, source: Path) -> LocalFile:
    check_path(path)
    return LocalFile(path=path, source=source, size=source.stat().st_size, digest=sha256_file(source))


def check_path(path: str) -> str:
    """Refuses a file path that kiln would refuse, or that could leave the output folder of a pull."""
    segments = path.split("/")
    problem = None
    if not path or len(path.encode()) > 1024:
        problem = "must be 1 to 1024 bytes"
    elif path.startswith("/") or any(s in ("", ".", "..") for s in segments):
        problem = "must be relative, without empty, `.` or `..` segments"
    elif "\\" in path or ":" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        problem = "must not hold backslashes, `:` or control characters"
    elif _BIDI_CONTROLS.search(path):
        problem = "must not hold bidirectional control characters"
    elif any(s.endswith((".", " ")) or _DEVICE_NAMES.match(s) or len(s.encode()) > 255 for s in segments):
        problem = "has a segment that is not the same file on every platform"
    if problem:
        raise KilnError("unsafe_path", f"file path {path!r} {problem}")
    return path


def destination(folder: Path, path: str) -> Path:
    """Where a pulled file goes: `path` joined segment by segment onto `folder`, checked first."""
    return Path(folder, *PurePosixPath(check_path(path)).parts)


def partial_path(target: Path) -> Path:
    """An unfinished download lives beside its destination (the CLI uses the same name, so either resumes)."""
    return target.with_name(target.name + ".kiln-partial")

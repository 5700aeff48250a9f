#!/usr/bin/env bash
# ONNX Runtime's shared library for kiln-runner's `ort` engine, from the official `onnxruntime` wheel on
# PyPI (CPU), pinned by version and SHA-256: the wheel is downloaded once, checked, and its two libraries
# unpacked into DEST (default target/onnxruntime/VERSION), each checked again. Idempotent: a DEST that
# already holds the checked libraries is left alone. Prints the path of libonnxruntime.so.VERSION, the
# file a runner is pointed at. Nothing fetches ONNX Runtime at run time.
# Usage: scripts/fetch-onnxruntime.sh [DEST]
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.32.0
wheel="onnxruntime-$version-cp311-cp311-manylinux_2_28_x86_64.whl"
wheel_sha256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
declare -A library_sha256=(
  ["libonnxruntime.so.$version"]=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f
  [libonnxruntime_providers_shared.so]=8ef51f6bf2c621fc129f625b22241fa6f9a5870bc08eaf2fdd279169ec40d09a
)
dest="${1:-target/onnxruntime/$version}"

checked() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

all_there=true
for name in "${!library_sha256[@]}"; do
  checked "$dest/$name" "${library_sha256[$name]}" || all_there=false
done
if ! $all_there; then
  download=$(mktemp -d)
  trap 'rm -rf "$download"' EXIT
  # pip from a venv of its own when the system Python has none (Debian's python3 without python3-pip).
  pip=(python3 -m pip)
  if ! python3 -m pip --version >/dev/null 2>&1; then
    python3 -m venv "$download/venv"
    pip=("$download/venv/bin/pip")
  fi
  # The C library inside is the same whatever the wheel's Python tag; pip only needs to be told which.
  "${pip[@]}" download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 "onnxruntime==$version" -d "$download"
  checked "$download/$wheel" "$wheel_sha256" ||
    { echo "fetch-onnxruntime: $wheel does not have the pinned SHA-256; refusing it" >&2; exit 1; }
  mkdir -p "$dest"
  for name in "${!library_sha256[@]}"; do
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
      "$download/$wheel" "onnxruntime/capi/$name" >"$dest/$name.part"
    checked "$dest/$name.part" "${library_sha256[$name]}" ||
      { echo "fetch-onnxruntime: $name in the wheel does not have the pinned SHA-256" >&2; exit 1; }
    mv "$dest/$name.part" "$dest/$name"
  done
fi
realpath "$dest/libonnxruntime.so.$version"

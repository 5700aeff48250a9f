#!/usr/bin/env bash
# Checks kiln's ONNX output with ONNX's own Python package (onnx 1.23.2 from PyPI, in a venv under
# target/): the official checker, the reference evaluator's numbers, and a byte-exact protobuf round trip;
# and with ONNX Runtime (1.20.1): converted decoders generate, with their key/value cache, the tokens
# kiln's evaluator generated.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/py-onnx
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import onnxruntime' 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet onnx==1.23.2 onnxruntime==1.20.1 numpy safetensors
fi
out=target/onnx-crosscheck
rm -rf "$out" && mkdir -p "$out"
KILN_EXPORT_DIR="$PWD/$out" cargo test --workspace --test conversion export_for_outside_check -- --exact --ignored --quiet
KILN_EXPORT_DIR="$PWD/$out" cargo test --workspace --test decoding export_decoding_for_outside_check -- --exact --ignored --quiet
cargo build --workspace --example onnx_roundtrip --quiet
"$venv/bin/python" scripts/onnx_crosscheck.py "$out" target/debug/examples/onnx_roundtrip

#!/usr/bin/env bash
# ONNX's own backend node tests (1288 one-operator models with inputs and expected outputs, shipped in
# the onnx 1.17.0 wheel on PyPI; newer wheels no longer ship them) run through kiln's evaluator.
# Prints a table by outcome and fails when fewer pass than the recorded floor.
# Usage: scripts/onnx-node-suite.sh        (KILN_ONNX_NODE_TESTS_FLOOR overrides the floor)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/onnx-node-tests
if [ ! -d "$dir/onnx/backend/test/data/node" ]; then
  mkdir -p "$dir"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux2014_x86_64 onnx==1.17.0 -d "$dir"
  python3 - "$dir" <<'PY'
import glob, sys, zipfile
target = sys.argv[1]
wheel = glob.glob(f"{target}/onnx-1.17.0-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    z.extractall(target, [n for n in z.namelist() if n.startswith("onnx/backend/test/data/node/")])
PY
fi
KILN_ONNX_NODE_TESTS="$PWD/$dir/onnx/backend/test/data/node" \
KILN_ONNX_NODE_TESTS_FLOOR="${KILN_ONNX_NODE_TESTS_FLOOR:-1181}" \
  cargo test --workspace --test node_suite -- --ignored --nocapture --test-threads 1

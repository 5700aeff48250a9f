#!/usr/bin/env bash
# kiln's evaluator against ONNX Runtime 1.32.0 (PyPI, the same release kiln-runner's `ort` engine loads) on
# random one-operator models: scripts/onnx_differential.py draws each operator's input types, shapes,
# values (the types' limits, NaN, the infinities) and attributes from a seed and keeps ONNX Runtime's
# answers as the expected outputs; ONNX's node-test harness (onnx/tests/node_suite.rs) runs every case
# through kiln's evaluator, as given and after kiln's optimization passes, and fails unless all agree.
# Usage: scripts/onnx-differential.sh [SEED] [CASES_PER_OPERATOR]   (1 and 30: the suite's run; other
# seeds and more cases by hand)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/serving-venv.sh)
seed="${1:-1}"
per_operator="${2:-30}"
out=target/onnx-differential
rm -rf "$out" && mkdir -p "$out"
"$venv/bin/python" scripts/onnx_differential.py "$out" "$seed" "$per_operator"
cases=$(find "$out" -mindepth 1 -maxdepth 1 -type d | wc -l)
KILN_ONNX_NODE_TESTS="$PWD/$out" KILN_ONNX_NODE_TESTS_FLOOR="$cases" \
  cargo test --workspace --test node_suite -- --ignored --nocapture --test-threads 1

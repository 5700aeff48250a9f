#!/usr/bin/env bash
# kiln-runner's two engines against Python's onnxruntime on the same files with inputs of the same shapes,
# all on one CPU thread: kiln's evaluator (--engine kiln) and ONNX Runtime inside the runner (--engine ort,
# the library scripts/fetch-onnxruntime.sh unpacks), each in its own process so its peak memory is its
# own, beside onnxruntime's Python package of the same version timing its own loop. The models are
# scripts/bench-variants.sh's (an MLP, a CNN, small BERT/GPT-2/Llama). Not part of the test suite.
# ONNX Runtime's two sides are measured in alternating rounds (ROUNDS, default 3) and each reported as the
# median of its rounds. BEFORE_RUNNER=path adds a column of
# kiln's engine measured by another kiln-runner build (before a change).
# Usage: [ROUNDS=3] [BEFORE_RUNNER=path] scripts/bench-runner.sh
set -euo pipefail
cd "$(dirname "$0")/.."
models=target/bench-variants
venv=target/py-bench-runner
ort_version=1.32.0
pins="onnxruntime==$ort_version numpy==2.3.5"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $pins
  echo "$pins" >"$venv/.pins"
fi
library=$(scripts/fetch-onnxruntime.sh)
[ -d "$models/mlp" ] || cargo run --release --quiet -p kiln-onnx --example export_variants -- "$models"
cargo build --release --quiet -p kiln-runner
out=target/bench-runner
rm -rf "$out" && mkdir -p "$out"
"$venv/bin/python" scripts/bench_runner.py target/release/kiln-runner "$library" "$models" "$out" "${ROUNDS:-3}"

#!/usr/bin/env bash
# Serving throughput and latency over the Open Inference Protocol's REST API: `kiln-runner serve` (engine
# ort) against Seldon MLServer with a minimal ONNX Runtime runtime (scripts/bench_serving_mlserver.py), on
# the same ONNX file (scripts/bench-variants.sh's CNN and small BERT, kiln's fp32 variant) with the same
# one-row JSON request, at 1, 8 and 64 concurrent connections (wrk, scripts/bench-serving.lua), one server at
# a time. Both run ONNX Runtime 1.32.0 with BENCH_THREADS intra-op threads (default: all cores) and batch
# dynamically up to 16 rows within 1 ms. Not part of the test suite; needs wrk (apt-get install wrk).
# MLSERVER_WORKERS is MLServer's parallel_workers, default 0 here (MLServer's own default is 1): on 2 cores
# running the model in the HTTP server's process served 15-50% more requests per second than handing each
# batch to a worker process (pickled both ways, a second Python process on the same cores) at 1, 8 and 64
# clients, with a longer p99 at 64.
# Usage: [BENCH_SECONDS=10] [BENCH_THREADS=N] [MLSERVER_WORKERS=0] scripts/bench-serving.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "scripts/bench-serving.sh needs wrk: apt-get install wrk" >&2; exit 2; }
venv=target/py-bench-serving
# uvloop below 0.22: from 0.22 on, MLServer 1.7.1's inference workers die at start (SeldonIO/MLServer#2286).
pins="mlserver==1.7.1 uvloop==0.21.0 onnxruntime==1.32.0 numpy==2.4.6"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  # --no-compile: with PYTHONDONTWRITEBYTECODE set, the venv's pip fails asserting the .pyc files it compiled.
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --no-compile $pins
  echo "$pins" >"$venv/.pins"
fi
library=$(scripts/fetch-onnxruntime.sh)
models=target/bench-variants
[ -f "$models/cnn/kiln-fp32.onnx" ] && [ -f "$models/bert/kiln-fp32.onnx" ] ||
  cargo run --release --quiet -p kiln-onnx --example export_variants -- "$models"
cargo build --release --quiet -p kiln-runner
out=target/bench-serving
rm -rf "$out" && mkdir -p "$out"
"$venv/bin/python" scripts/bench_serving.py target/release/kiln-runner "$library" "$models" "$out" \
  "${BENCH_SECONDS:-10}" "${BENCH_THREADS:-$(nproc)}" "${MLSERVER_WORKERS:-0}"

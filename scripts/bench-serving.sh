#!/usr/bin/env bash
# Serving throughput and latency over the Open Inference Protocol, REST and gRPC: `kiln-runner serve` (engine
# ort) against Seldon MLServer with a minimal ONNX Runtime runtime (scripts/bench_serving_mlserver.py), on
# the same ONNX file (scripts/bench-variants.sh's CNN and small BERT, kiln's fp32 variant) with the same
# one-row request, at 1, 8 and 64 concurrent connections: JSON over REST (wrk, scripts/bench-serving.lua),
# raw_input_contents over gRPC (runner/examples/grpc_load). Both run ONNX Runtime 1.32.0 and batch
# dynamically up to 16 rows within BATCH_DELAY_US (default 1 ms), each in the ways it offers to use several
# cores, PARALLELxTHREADS: kiln `--instances P --threads T`, MLServer `parallel_workers` P (0: in the HTTP
# server's process) with T intra-op threads. Defaults on N cores: kiln 1xN and Nx1; MLServer 0xN, 0x1 and Nx1.
# The servers' runs are interleaved, ROUNDS each, and the median reported (scripts/bench_serving.py says
# why). Not part of the test suite; needs wrk (apt-get install wrk). About 20 minutes with the defaults (10
# for one protocol: BENCH_PROTOCOLS=rest or grpc).
# Usage: [BENCH_SECONDS=5] [ROUNDS=3] [KILN_CONFIGS=1x2,2x1] [MLSERVER_CONFIGS=0x2,0x1,2x1]
#        [BATCH_DELAY_US=1000] [BENCH_MODELS=cnn,bert] [BENCH_PROTOCOLS=rest,grpc] [BENCH_CLIENTS=1,8,64]
#        [KILN_SERVE_ARGS='--max-engine-memory-mib 0'] [BENCH_VARIANT=fp32] scripts/bench-serving.sh
# BENCH_VARIANT: which of kiln's variants both servers run (fp32; fused for the BERT alone, its attention
# and GELU fused into ONNX Runtime's operators: BENCH_MODELS=bert BENCH_VARIANT=fused).
# KILN_SERVE_ARGS: more flags for every kiln-runner serve it starts, to compare settings.
# KILN_RUNNER: another kiln-runner binary to bench instead of this tree's release build (an older build,
# to compare builds in one hour; the same MLServer beside it).
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
[ -f "$models/cnn/kiln-fp32.onnx" ] && [ -f "$models/bert/kiln-fused.onnx" ] ||
  cargo run --release --quiet -p kiln-onnx --example export_variants -- "$models"
cargo build --release --quiet -p kiln-runner --bins --example grpc_load
out=target/bench-serving
rm -rf "$out" && mkdir -p "$out"
n=$(nproc)
"$venv/bin/python" scripts/bench_serving.py "${KILN_RUNNER:-target/release/kiln-runner}" "$library" "$models" "$out" \
  "${BENCH_SECONDS:-5}" "${ROUNDS:-3}" "${KILN_CONFIGS:-1x$n,${n}x1}" "${MLSERVER_CONFIGS:-0x$n,0x1,${n}x1}" \
  "${BATCH_DELAY_US:-1000}" "${BENCH_MODELS:-cnn,bert}" "${BENCH_PROTOCOLS:-rest,grpc}" "${BENCH_CLIENTS:-1,8,64}"

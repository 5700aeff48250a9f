#!/usr/bin/env bash
# The corpus of real ONNX models (scripts/fetch-onnx-corpus.sh) through a real kiln-server on the embedded
# default: each model pushed with the CLI must become ready, be validated or skipped naming the operator
# kiln cannot run, and every deployable variant, pulled by alias, must agree with ONNX Runtime on the
# stored input. Prints a table (scripts/onnx_corpus_server.py says what is checked). Part of scripts/test.sh.
# Knobs: KILN_ONNX_CORPUS_FILTER, KILN_ONNX_CORPUS_SLOW=1, KILN_ONNX_CORPUS_SERVER_TIMEOUT_SECS.
set -euo pipefail
cd "$(dirname "$0")/.."
export KILN_ONNX_CORPUS="${KILN_ONNX_CORPUS:-$PWD/target/onnx-corpus}"
listed="$(sha256sum scripts/onnx_corpus.py | cut -d' ' -f1)"
if [ "$(cat "$KILN_ONNX_CORPUS/fetched-with.sha256" 2>/dev/null)" != "$listed" ]; then
  scripts/fetch-onnx-corpus.sh
fi
cargo build --quiet --workspace --bin kiln-server --bin kiln
source scripts/throwaway-server.sh
# Two pipeline workers for two models at a time; no embedded runner: benchmarks are not what this checks.
start_throwaway_server target/debug/kiln-server KILN_PIPELINE_WORKERS="${KILN_PIPELINE_WORKERS:-2}" \
  KILN_EMBEDDED_RUNNER=false
if ! "$KILN_ONNX_CORPUS/venv/bin/python" scripts/onnx_corpus_server.py "$KILN_ONNX_CORPUS" \
    "$PWD/target/debug/kiln" "$work/pulled"; then
  echo "--- the server's log, last 40 lines:"; tail -n 40 "$work/server.log"; exit 1
fi

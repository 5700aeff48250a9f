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
cargo build --quiet -p kiln-server -p kiln-cli
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
token=onnx-corpus-server-token-0123456789abcdef
# Two pipeline workers for two models at a time; no embedded runner: benchmarks are not what this checks.
KILN_DATA_DIR="$work/data" KILN_LISTEN="127.0.0.1:$port" KILN_BOOTSTRAP_TOKEN="$token" \
  KILN_PIPELINE_WORKERS="${KILN_PIPELINE_WORKERS:-2}" KILN_EMBEDDED_RUNNER=false \
  target/debug/kiln-server >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
export KILN_SERVER="http://127.0.0.1:$port" KILN_TOKEN="$token"
for _ in $(seq 100); do curl -fs "$KILN_SERVER/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
if ! "$KILN_ONNX_CORPUS/venv/bin/python" scripts/onnx_corpus_server.py "$KILN_ONNX_CORPUS" \
    "$PWD/target/debug/kiln" "$work/pulled"; then
  echo "--- the server's log, last 40 lines:"; tail -n 40 "$work/server.log"; exit 1
fi

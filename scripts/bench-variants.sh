#!/usr/bin/env bash
# kiln's optimized/fp16/int8 variants against onnx-simplifier, onnxconverter-common and ONNX Runtime's
# quantize_dynamic on the same models (an MLP, a CNN with BatchNorm, small BERT/GPT-2/Llama), measured with
# ONNX Runtime on the CPU. Not part of the test suite. Usage: scripts/bench-variants.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/bench-variants}"
venv=target/py-bench
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet onnx==1.17.0 onnxruntime onnxsim onnxconverter-common ml_dtypes numpy safetensors
fi
rm -rf "$out" && mkdir -p "$out"
cargo run --release --quiet -p kiln-onnx --example export_variants -- "$out"
"$venv/bin/python" -c 'import onnxruntime, onnxsim, onnxconverter_common; print("onnxruntime", onnxruntime.__version__, "onnxsim", onnxsim.__version__, "onnxconverter-common", onnxconverter_common.__version__)'
"$venv/bin/python" scripts/bench_variants.py "$out"

#!/usr/bin/env bash
# kiln's benchmark engine (kiln-runner --measure: what runners report) against ONNX Runtime on the same
# files, inputs of the same shapes, both on one CPU thread. The models are scripts/bench-variants.sh's
# (an MLP, a CNN, small BERT/GPT-2/Llama). Not part of the test suite. Usage: scripts/bench-runner.sh
set -euo pipefail
cd "$(dirname "$0")/.."
models=target/bench-variants
venv=target/py-bench
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet onnx==1.17.0 onnxruntime onnxsim onnxconverter-common ml_dtypes numpy safetensors
fi
[ -d "$models/mlp" ] || cargo run --release --quiet -p kiln-onnx --example export_variants -- "$models"
cargo build --release --quiet -p kiln-runner
out=target/bench-runner
rm -rf "$out" && mkdir -p "$out"
for model in mlp cnn bert gpt2 llama; do
  for variant in fp32 fp16 int8-dynamic; do
    target/release/kiln-runner --measure "$models/$model/kiln-$variant.onnx" --threads 1 \
      --batch-sizes 1,8 --symbolic-size 16 --warmup 5 --min-iterations 50 --max-iterations 500 \
      --time-budget-ms 2000 --name bench >"$out/$model-$variant.json"
  done
done
"$venv/bin/python" scripts/bench_runner.py "$models" "$out"

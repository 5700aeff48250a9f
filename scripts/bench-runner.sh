#!/usr/bin/env bash
# kiln-runner's two engines against Python's onnxruntime on the same files with inputs of the same shapes,
# all on one CPU thread: kiln's evaluator (--engine kiln) and ONNX Runtime inside the runner (--engine ort,
# the library scripts/fetch-onnxruntime.sh unpacks), each in its own process so its peak memory is its
# own, beside onnxruntime's Python package of the same version timing its own loop. The models are
# scripts/bench-variants.sh's (an MLP, a CNN, small BERT/GPT-2/Llama). Not part of the test suite.
# Usage: scripts/bench-runner.sh
set -euo pipefail
cd "$(dirname "$0")/.."
models=target/bench-variants
venv=target/py-bench-runner
ort_version=1.32.0
pins="onnxruntime==$ort_version numpy==2.3.5"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $pins
  echo "$pins" >"$venv/.pins"
fi
library=$(scripts/fetch-onnxruntime.sh)
[ -d "$models/mlp" ] || cargo run --release --quiet -p kiln-onnx --example export_variants -- "$models"
cargo build --release --quiet -p kiln-runner
out=target/bench-runner
rm -rf "$out" && mkdir -p "$out"
for model in mlp cnn bert gpt2 llama; do
  for variant in fp32 fp16 int8-dynamic; do
    for engine in kiln ort; do
      target/release/kiln-runner --measure "$models/$model/kiln-$variant.onnx" --threads 1 \
        --engine "$engine" --onnxruntime-lib "$library" \
        --batch-sizes 1,8 --sequence-lengths 16 --symbolic-size 16 --warmup 5 --min-iterations 50 \
        --max-iterations 500 --time-budget-ms 2000 --name bench >"$out/$model-$variant.$engine.json" ||
        echo "kiln-runner --engine $engine could not measure $model $variant (shown as -)" >&2
    done
  done
done
"$venv/bin/python" scripts/bench_runner.py "$models" "$out"

#!/usr/bin/env bash
# Converting a 7B-class LLM in bounded memory: writes a Llama-shaped checkpoint with random bf16 weights
# (sharded safetensors with an index, as save_pretrained writes them; onnx/examples/llama_checkpoint.rs),
# then converts and proves it exactly as the pipeline's convert step does (onnx/examples/convert_bench.rs:
# streamed conversion, the cached graph run streamed on a prompt and one cached step, against the eager
# reference layer by layer). Prints one table row per shape: parameters, bytes written, seconds, peak RSS.
# Usage: scripts/bench-large-model.sh [7b|3b|tiny ...]   (default: 7b 3b)
# Needs about 2.1 × the checkpoint on disk (the checkpoint and the ONNX model): 29 GB for 7b. The files
# go under target/bench-large (KILN_BENCH_DIR to choose) and are removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
shapes=("$@"); [ ${#shapes[@]} -eq 0 ] && shapes=(7b 3b)
cargo build --quiet --release -p kiln-onnx --example llama_checkpoint --example convert_bench
root="${KILN_BENCH_DIR:-target/bench-large}"
mkdir -p "$root"
declare -A need_gb=([7b]=29 [3b]=15 [tiny]=1)
echo "| checkpoint | parameters | ONNX bytes | convert + validate (s) | peak RSS (MiB) | rel L2 error |"
echo "|---|---|---|---|---|---|"
for shape in "${shapes[@]}"; do
  free_gb=$(( $(df -Pk "$root" | awk 'NR == 2 {print $4}') / 1024 / 1024 ))
  if [ "$free_gb" -lt "${need_gb[$shape]:-29}" ]; then
    echo "| $shape | skipped: $free_gb GB free under $root, ${need_gb[$shape]:-29} GB needed | | | | |"
    continue
  fi
  dir="$root/llama-$shape"
  rm -rf "$dir"
  target/release/examples/llama_checkpoint "$dir" "$shape" >/dev/null
  target/release/examples/convert_bench "$dir" | tail -n 1
  rm -rf "$dir"
done

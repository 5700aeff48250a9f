#!/usr/bin/env bash
# The GPU device check (docs/gpu.md): run on a machine with an NVIDIA GPU, PyTorch (+ torchvision) and the
# carried binaries; builds nothing. Prints one table: PyTorch eager on CUDA, kiln-runner's two engines on
# CUDA (kiln's evaluator and ONNX Runtime's CUDA execution provider) and, for ONNX Runtime, an independent
# measurement of the same variant file with CUDA events (scripts/gpu_bench_ort.py), the runner's p50
# checked to be within 5 % of it.
#
#   needs: target/cuda-runner/kiln-runner (scripts/build-cuda-runner.sh), target/release/kiln-server and
#          target/release/kiln (cargo build --release -p kiln-server -p kiln-cli), python3 with torch.
#   ORT_GPU_WHEEL=path/to/onnxruntime_gpu-*.whl adds ONNX Runtime (the wheel is ~300 MB: carried to the
#   device machine, which reaches no package index, in pieces; docs/gpu.md). Without it: kiln and PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
work=$(mktemp -d)
out=${OUT:-$work}
# The CUDA libraries kiln-runner loads, from the PyTorch install's wheels when there is no system toolkit.
site=$("$python" -c 'import site; print(site.getsitepackages()[0])')
for lib in "$site"/nvidia/*/lib; do LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"; done
export LD_LIBRARY_PATH
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
engines=kiln
ort_lib=()
if [ -n "${ORT_GPU_WHEEL:-}" ]; then
  "$python" -m pip install --quiet --no-index --no-deps --target "$work/ort" "$ORT_GPU_WHEEL"
  export PYTHONPATH="$work/ort:${PYTHONPATH:-}"
  engines=kiln,ort
  ort_lib=(--onnxruntime-lib "$(ls "$work"/ort/onnxruntime/capi/libonnxruntime.so.*)")
fi

echo "== PyTorch: export to ONNX and measure eager CUDA (CUDA events)"
"$python" scripts/gpu_bench_torch.py "$work/models" | tee "$out/torch.json"

echo "== kiln: server (embedded default, CPU runner off) and a CUDA runner"
port=18080
token=kiln_gpu_bench_admin_token_0123456789abcdef
KILN_DATA_DIR="$work/data" KILN_LISTEN="127.0.0.1:$port" KILN_BOOTSTRAP_TOKEN="$token" \
  KILN_EMBEDDED_RUNNER=false target/release/kiln-server >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server ${runner:-} 2>/dev/null || true' EXIT
export KILN_SERVER="http://127.0.0.1:$port" KILN_TOKEN="$token"
for _ in $(seq 100); do curl -fs "$KILN_SERVER/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
runner_token=$(curl -fsS -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"name":"gpu","scopes":["runner"]}' "$KILN_SERVER/api/v1/tokens" |
  "$python" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
target/cuda-runner/kiln-runner --server "$KILN_SERVER" --token "$runner_token" --device cuda:0 \
  --engine "$engines" "${ort_lib[@]}" --cache "$work/cache" --name gpu-bench --min-iterations 50 --max-iterations 500 --time-budget-ms 5000 \
  >"$out/runner.log" 2>&1 &
runner=$!
for _ in $(seq 100); do
  [ "$(target/release/kiln runners --json | "$python" -c 'import json,sys; print(len(json.load(sys.stdin)))')" -ge 1 ] && break
  sleep 0.2
done

models=$(ls "$work/models")
for m in $models; do
  target/release/kiln push "$work/models/$m" "bench/$m:1" --variants fp32,fp16 >/dev/null
done
for m in $models; do
  for _ in $(seq 900); do
    target/release/kiln show "bench/$m:1" --json >"$out/kiln-$m.json"
    "$python" - "$out/kiln-$m.json" <<'PY' && break
import json, sys
d = json.load(open(sys.argv[1]))
jobs = [j for j in d["pipeline"] if j["kind"] == "benchmark"]
done = d["status"] == "failed" or (d["status"] == "ready" and jobs and all(j["state"] in ("succeeded", "failed") for j in jobs))
sys.exit(0 if done else 1)
PY
    sleep 1
  done
done
ort_json=()
if [ "$engines" = kiln,ort ]; then
  echo "== ONNX Runtime with CUDA events, on the fp32 variant files the runner measured"
  pairs=()
  for m in $models; do
    target/release/kiln pull "bench/$m:1" --variant fp32 -o "$work/variants/$m" >/dev/null
    pairs+=("$m=$(ls "$work/variants/$m"/*.onnx | head -n 1)")
  done
  "$python" scripts/gpu_bench_ort.py "${pairs[@]}" >"$out/ort-events.json"
  ort_json=(--ort-events "$out/ort-events.json")
fi
echo "== results ($(date -u +%Y-%m-%d))"
"$python" scripts/gpu_bench_table.py "$out/torch.json" "${ort_json[@]}" "$out"/kiln-*.json | tee "$out/table.md"

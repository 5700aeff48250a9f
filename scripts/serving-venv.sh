#!/usr/bin/env bash
# The Python environment of the serving checks and of scripts/bench-serving-returned-memory.sh: tritonclient
# (the Open Inference Protocol client of Triton and KServe), ONNX Runtime as the independent checker, and the
# h2 package for raw HTTP/2, onnx to write the hostile-request drill's models. Made once in target/py-serving
# (remade when the pins change); prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/py-serving
pins='tritonclient[http,grpc]==2.73.0 onnxruntime==1.32.0 numpy==2.4.6 safetensors==0.4.5 pyyaml==6.0.2 h2==4.4.1 onnx==1.23.2'
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  python3 -m venv "$venv" >&2
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $pins >&2
  echo "$pins" >"$venv/.pins"
fi
echo "$PWD/$venv"

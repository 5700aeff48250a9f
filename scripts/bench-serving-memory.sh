#!/usr/bin/env bash
# What one large request costs `kiln-runner serve` in memory: the process's peak resident set (VmHWM)
# after one JSON request and after one binary-data request of about BODY_MIB MiB (default 30) to a small
# classifier (4 features in, 2 logits out a row, ONNX Runtime), and the wall time of each. Each request
# goes to a fresh process, so each peak is that request's alone. Not part of the test suite.
# Usage: [BODY_MIB=30] [KILN_RUNNER_BIN=path] scripts/bench-serving-memory.sh
# KILN_RUNNER_BIN: another build of kiln-runner to measure instead of this checkout's (to compare builds).
set -euo pipefail
cd "$(dirname "$0")/.."
# The corpus's venv has the onnx package, which writes the model.
venv="${KILN_ONNX_CORPUS:-target/onnx-corpus}/venv"
[ -x "$venv/bin/python" ] || scripts/fetch-onnx-corpus.sh
library=$(scripts/fetch-onnxruntime.sh)
runner="${KILN_RUNNER_BIN:-}"
if [ -z "$runner" ]; then
  cargo build --release --quiet -p kiln-runner --bins
  runner="$PWD/target/release/kiln-runner"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" - "$work" "$runner" "$library" "${BODY_MIB:-30}" <<'PY'
import json, os, socket, subprocess, sys, time, urllib.error, urllib.request
import onnx
from onnx import helper, TensorProto

work, runner, library, body_mib = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
weights = helper.make_tensor("weights", TensorProto.FLOAT, [4, 2], [0.9, -0.4, -1.1, 0.8, 0.3, 0.2, -0.5, 1.2])
graph = helper.make_graph([helper.make_node("MatMul", ["features", "weights"], ["logits"])], "classifier",
                          [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])], [weights])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
os.makedirs(f"{work}/model")
onnx.save(model, f"{work}/model/model.onnx")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_after(body, headers):
    port = free_port()
    process = subprocess.Popen([runner, "serve", "--model-dir", f"{work}/model", "--name", "m",
                                "--onnxruntime-lib", library, "--http-listen", f"127.0.0.1:{port}",
                                "--grpc-listen", f"127.0.0.1:{free_port()}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready")
                break
            except OSError:
                time.sleep(0.1)
        hwm = lambda: int(next(l for l in open(f"/proc/{process.pid}/status") if l.startswith("VmHWM:")).split()[1])
        idle = hwm()
        started = time.monotonic()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/m/infer", data=body, headers=headers)
        status = urllib.request.urlopen(request).status
        return status, idle / 1024, hwm() / 1024, time.monotonic() - started
    finally:
        process.terminate()
        process.wait(30)


rows = int(body_mib * 2**20 / 8)  # "0," takes two bytes: four a row, eight bytes of text
text = ('{"inputs":[{"name":"features","shape":[%d,4],"datatype":"FP32","data":[' % rows
        + ",".join(["0"] * (4 * rows)) + "]}]}").encode()
header = json.dumps({"inputs": [{"name": "features", "shape": [rows, 4], "datatype": "FP32",
                                 "parameters": {"binary_data_size": 16 * rows}}],
                     "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
binary = header + bytes(16 * rows)
print(f"{rows} rows of 4 zeros; peak resident set (VmHWM) of a fresh kiln-runner serve before and after one request\n")
print("| request | body MiB | status | idle MB | peak MB | seconds |")
print("|---|---:|---:|---:|---:|---:|")
for name, body, headers in [
    ("JSON", text, {"Content-Type": "application/json"}),
    ("binary data", binary, {"Inference-Header-Content-Length": str(len(header))}),
]:
    status, idle, peak, seconds = peak_after(body, headers)
    print(f"| {name} | {len(body) / 2**20:.1f} | {status} | {idle:.0f} | {peak:.0f} | {seconds:.2f} |")
PY

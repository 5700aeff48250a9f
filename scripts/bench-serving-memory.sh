#!/usr/bin/env bash
# What large requests cost `kiln-runner serve` in memory: the process's peak resident set (VmHWM) after
# one JSON request and after one binary-data request of about BODY_MIB MiB (default 30) to a small
# classifier (4 features in, 2 logits out a row, ONNX Runtime), and the wall time of each; then after
# CONCURRENT (default 12) binary-data requests of that size sent at once, with the requests in flight
# unlimited (--max-in-flight-mib 0), at IN_FLIGHT_MIB (default 200) and at the default limit. Each row is
# a fresh process, so each peak is that row's requests' alone. Not part of the test suite.
# Usage: [BODY_MIB=30] [CONCURRENT=12] [IN_FLIGHT_MIB=200] [KILN_RUNNER_BIN=path] scripts/bench-serving-memory.sh
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
"$venv/bin/python" - "$work" "$runner" "$library" "${BODY_MIB:-30}" "${CONCURRENT:-12}" "${IN_FLIGHT_MIB:-200}" <<'PY'
import http.client, json, os, socket, subprocess, sys, threading, time, urllib.request
import onnx
from onnx import helper, TensorProto

work, runner, library, body_mib = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
concurrent, in_flight_mib = int(sys.argv[5]), sys.argv[6]
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


def send(port, body, headers):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("POST", "/v2/models/m/infer", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def peak_after(body, headers, clients=1, extra=()):
    """The statuses of `clients` requests of `body` sent at once to a fresh runner, its idle and peak
    resident set in MB, and the seconds until the last answer."""
    port = free_port()
    process = subprocess.Popen([runner, "serve", "--model-dir", f"{work}/model", "--name", "m",
                                "--onnxruntime-lib", library, "--http-listen", f"127.0.0.1:{port}",
                                "--grpc-listen", f"127.0.0.1:{free_port()}", *extra],
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
        statuses = []
        threads = [threading.Thread(target=lambda: statuses.append(send(port, body, headers)))
                   for _ in range(clients)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        status = "/".join(f"{statuses.count(s)}×{s}" if clients > 1 else str(s) for s in sorted(set(statuses)))
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

print(f"\n{concurrent} binary-data requests of {len(binary) / 2**20:.1f} MiB sent at once\n")
print("| --max-in-flight-mib | statuses | idle MB | peak MB | seconds to the last answer |")
print("|---|---|---:|---:|---:|")
binary_headers = {"Inference-Header-Content-Length": str(len(header))}
for limit in ["0", in_flight_mib, None]:
    extra = ["--max-in-flight-mib", limit] if limit else []
    status, idle, peak, seconds = peak_after(binary, binary_headers, concurrent, extra)
    print(f"| {limit or 'default'} | {status} | {idle:.0f} | {peak:.0f} | {seconds:.2f} |")
PY

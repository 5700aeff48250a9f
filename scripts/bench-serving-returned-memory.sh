#!/usr/bin/env bash
# What a large request leaves behind in `kiln-runner serve` (engine ort), by default and with
# --keep-engine-memory: the bench's small BERT (scripts/bench-variants.sh's, kiln's fp32 variant) served
# to one gRPC client (tritonclient), the resident memory before, at the peak of, and after one request of
# ROWS rows of 64 tokens (default 1024), after the next one-row request and after two and a half seconds
# with nothing to do; then what giving back costs: the median time of back-to-back requests of 1, 64 and
# 256 rows from one client, the two settings alternating, ROUNDS rounds (default 2). Each setting is a
# fresh process. Not part of the test suite; about 3 minutes.
# Usage: [ROWS=1024] [ROUNDS=2] scripts/bench-serving-returned-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/serving-venv.sh)
library=$(scripts/fetch-onnxruntime.sh)
models=target/bench-variants
[ -f "$models/bert/kiln-fp32.onnx" ] || cargo run --release --quiet -p kiln-onnx --example export_variants -- "$models"
cargo build --release --quiet -p kiln-runner --bins
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
KILN_ONNXRUNTIME_LIB="$library" "$venv/bin/python" - "$work" "$PWD/target/release/kiln-runner" \
  "$models/bert/kiln-fp32.onnx" "${ROWS:-1024}" "${ROUNDS:-2}" <<'PY'
import statistics, sys, time
sys.path.insert(0, "scripts")
import numpy as np
import tritonclient.grpc as grpcclient
from serving_client import start_runner

work, runner, model, rows, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
SETTINGS = {"default": [], "--keep-engine-memory": ["--keep-engine-memory"]}


def inputs(batch, tokens):
    ids = (np.arange(batch * tokens, dtype=np.int64) % 997).reshape(batch, tokens)
    made = []
    for name, value in (("input_ids", ids), ("attention_mask", np.ones_like(ids)), ("token_type_ids", np.zeros_like(ids))):
        tensor = grpcclient.InferInput(name, [batch, tokens], "INT64")
        tensor.set_data_from_numpy(value)
        made.append(tensor)
    return made


def mib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


one, large = inputs(1, 32), inputs(rows, 64)
servers = {name: start_runner(runner, model, work, name.strip("-"), ["--engine", "ort", "--name", "bert", *flags])
           for name, flags in SETTINGS.items()}
memory = {}
for name, (process, _, grpc_url) in servers.items():
    client = grpcclient.InferenceServerClient(grpc_url)
    for _ in range(20):
        client.infer("bert", one)
    before = mib(process.pid, "VmRSS")
    client.infer("bert", large)
    peak, after = mib(process.pid, "VmHWM"), mib(process.pid, "VmRSS")
    client.infer("bert", one)
    next_one = mib(process.pid, "VmRSS")
    time.sleep(2.5)
    memory[name] = (before, peak, after, next_one, mib(process.pid, "VmRSS"))
print(f"\nResident MB around one request of {rows} rows of 64 tokens (one gRPC client):\n")
print("| setting | before | peak | after it | after the next one-row request | after 2.5 s quiet |")
print("|---|---:|---:|---:|---:|---:|")
for name, values in memory.items():
    print(f"| {name} | " + " | ".join(f"{v:.0f}" for v in values) + " |")

times = {}
for round_ in range(rounds):
    for name in (list(SETTINGS) if round_ % 2 == 0 else list(SETTINGS)[::-1]):
        client = grpcclient.InferenceServerClient(servers[name][2])
        for batch, count in ((1, 300), (64, 15), (256, 5)):
            request = inputs(batch, 32 if batch == 1 else 64)
            client.infer("bert", request)
            took = []
            for _ in range(count):
                start = time.perf_counter()
                client.infer("bert", request)
                took.append(time.perf_counter() - start)
            times.setdefault((batch, name), []).append(statistics.median(took) * 1000)
for process, _, _ in servers.values():
    process.terminate()
print(f"\nMedian ms of back-to-back requests from one client, each round's median ({rounds} rounds, alternating):\n")
print("| rows | " + " | ".join(SETTINGS) + " | default / keep |")
print("|---:|" + "---:|" * (len(SETTINGS) + 1))
for batch in (1, 64, 256):
    cells = [times[(batch, name)] for name in SETTINGS]
    ratio = statistics.median(cells[0]) / statistics.median(cells[1])
    print(f"| {batch} | " + " | ".join(" / ".join(f"{v:.2f}" for v in cell) for cell in cells) + f" | {ratio:.3f} |")
PY

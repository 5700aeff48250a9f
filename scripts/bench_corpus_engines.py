"""scripts/bench-corpus-engines.sh's measurements and table: kiln's evaluator against ONNX Runtime on the real
models of the ONNX corpus (target/onnx-corpus), one CPU thread each, on the inputs the corpus stores for each
model. kiln: runner/examples/profile_ops (kiln-runner's settings), p50 and the operator taking most of the
run. ONNX Runtime (the corpus's pinned Python package, 1 intra-op thread, all graph optimizations): p50 of
its own loop over OrtValues, which includes Python's calling overhead (tens of microseconds: it flatters
kiln on the smallest models). The runs per model adapt to its speed (at most ~2 s a side).
Usage: bench_corpus_engines.py PROFILE_OPS CORPUS_DIR"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
from ort_cpu_session import one_thread_session as session

profile_ops, corpus = sys.argv[1], sys.argv[2]
DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32,
          "BOOL": np.bool_}
ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
             "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
             "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def read_safetensors(path):
    """The tensors of a safetensors file as numpy arrays (its format: a u64 header length, a JSON header
    of dtypes, shapes and byte ranges, then the bytes)."""
    raw = open(path, "rb").read()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    data = raw[8 + size:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors


def p50(samples):
    samples = sorted(samples)
    return samples[(len(samples) + 1) // 2 - 1]


def ort_side(path, inputs):
    """(loop p50 ms, runs) for ONNX Runtime; the runs fit in about 2 s."""
    sess = session(path)
    declared = {i.name: ORT_TYPES.get(i.type) for i in sess.get_inputs()}
    feed = {name: ort.OrtValue.ortvalue_from_numpy(
        np.ascontiguousarray(value.astype(declared[name]) if declared.get(name) else value))
        for name, value in inputs.items() if name in declared}
    outputs = [o.name for o in sess.get_outputs()]
    for _ in range(3):
        sess.run_with_ort_values(outputs, feed)
    samples, started = [], time.perf_counter()
    while len(samples) < 5 or (len(samples) < 200 and time.perf_counter() - started < 2.0):
        t0 = time.perf_counter()
        sess.run_with_ort_values(outputs, feed)
        samples.append((time.perf_counter() - t0) * 1000)
    return p50(samples), len(samples)


def kiln_side(path, inputs_path, runs):
    try:
        done = subprocess.run([profile_ops, path, "--inputs", inputs_path, "--runs", str(runs), "--json"],
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "over 5 minutes"
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["failed"])[-1][:120]
    return json.loads(done.stdout), None


listing = json.load(open(os.path.join(corpus, "corpus.json")))
rows, ratios = [], []
for model in listing["models"]:
    if model.get("ort") != "ran":
        continue
    path = os.path.join(corpus, model["model"])
    inputs_path = os.path.join(corpus, model["inputs"])
    try:
        loop, runs = ort_side(path, read_safetensors(inputs_path))
    except Exception as e:  # a model the corpus's inputs no longer fit: say so, go on
        rows.append(f"| {model['id']} | - | - | - | ONNX Runtime: {str(e).splitlines()[0][:100]} |")
        continue
    # kiln's runs: as many as ONNX Runtime's when kiln is as fast, fewer for slower models (5 at least).
    kiln, error = kiln_side(path, inputs_path, max(5, min(runs, 200)))
    if kiln is None:
        rows.append(f"| {model['id']} | - | {loop:.3f} | - | kiln: {error} |")
        continue
    top = kiln["ops"][0] if kiln["ops"] else {"op": "-", "share": 0}
    ratio = kiln["p50_ms"] / loop
    ratios.append(ratio)
    rows.append(f"| {model['id']} | {kiln['p50_ms']:.3f} | {loop:.3f} | {ratio:.1f}x | "
                f"{top['op']} {top['share']:.0f} % |")

print(f"kiln's evaluator against onnxruntime {ort.__version__} (Python), 1 CPU thread, p50 in ms, on the ONNX "
      f"corpus's stored inputs")
print()
print("| model | kiln p50 | ORT p50 | kiln/ORT | kiln's top operator (share of its run) |")
print("|---|---:|---:|---:|---|")
print("\n".join(rows))
if ratios:
    within = sum(1 for r in ratios if r <= 3.0)
    print()
    print(f"{len(ratios)} models measured by both: kiln/ORT median {statistics.median(ratios):.1f}x, "
          f"{within} within 3x, worst {max(ratios):.1f}x")

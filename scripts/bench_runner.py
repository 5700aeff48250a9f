"""Table for scripts/bench-runner.sh: per model, variant and batch, kiln-runner's p50 with kiln's evaluator
and with ONNX Runtime inside the runner, beside Python onnxruntime's own timing loop on the same file with
inputs of the same shapes, all on one CPU thread, with the same session settings the runner records."""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

models, measured = sys.argv[1], sys.argv[2]
DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
          "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def python_p50(session, types, input_shapes):
    """onnxruntime's own loop, as onnxruntime_perf_test times it: 5 warm-up runs, then 50-500 runs or 2 s."""
    rng = np.random.default_rng(0)
    feed = {}
    for name, shape in input_shapes.items():
        dtype = types[name]
        feed[name] = (rng.standard_normal(shape).astype(dtype) if np.issubdtype(dtype, np.floating)
                      else np.ones(shape, dtype=dtype))
    for _ in range(5):
        session.run(None, feed)
    samples = []
    started = time.perf_counter()
    while len(samples) < 50 or (len(samples) < 500 and time.perf_counter() - started < 2.0):
        t0 = time.perf_counter()
        session.run(None, feed)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return samples[(len(samples) + 1) // 2 - 1]


def load(path):
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return {}
    return {r["batch_size"]: r for r in json.load(open(path))}


print(f"onnxruntime {ort.__version__} (Python) beside kiln-runner; 1 CPU thread; p50 in ms; "
      "peak = the runner process's peak RSS")
print()
print("| model | variant | batch | input shapes | kiln p50 | runner ORT p50 | Python ORT p50 | runner/Python ORT "
      "| kiln/ORT | kiln peak MiB | runner ORT peak MiB |")
print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
names = sorted({n.rsplit(".", 2)[0] for n in os.listdir(measured)})
for name in names:
    model, variant = name.split("-", 1)
    kiln = load(os.path.join(measured, f"{name}.kiln.json"))
    runner_ort = load(os.path.join(measured, f"{name}.ort.json"))
    path = os.path.join(models, model, f"kiln-{variant}.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    types = {i.name: DTYPES[i.type] for i in session.get_inputs()}
    for batch in sorted(set(kiln) | set(runner_ort)):
        reference = runner_ort.get(batch) or kiln[batch]
        python = python_p50(session, types, reference["input_shapes"])
        shapes = "; ".join(f"{k} {'x'.join(map(str, v))}" for k, v in sorted(reference["input_shapes"].items()))

        def p50(results):
            return f"{results[batch]['p50_ms']:.3f}" if batch in results else "-"

        def peak(results):
            b = results.get(batch, {}).get("peak_memory_bytes")
            return f"{b / 2**20:.0f}" if b else "-"

        ratio = f"{runner_ort[batch]['p50_ms'] / python:.2f}" if batch in runner_ort else "-"
        kiln_ratio = f"{kiln[batch]['p50_ms'] / python:.1f}x" if batch in kiln else "-"
        print(f"| {model} | {variant} | {batch} | {shapes} | {p50(kiln)} | {p50(runner_ort)} | {python:.3f} | "
              f"{ratio} | {kiln_ratio} | {peak(kiln)} | {peak(runner_ort)} |")

"""Table for scripts/bench-runner.sh: kiln-runner's p50 beside ONNX Runtime's (1 thread) on the same file
with inputs of the same shapes."""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

models, measured = sys.argv[1], sys.argv[2]
print(f"onnxruntime {ort.__version__}, both on 1 CPU thread; p50 in ms")
print()
print("| model | variant | batch | input shapes | kiln p50 | kiln p99 | ORT p50 | kiln/ORT |")
print("|---|---|---:|---|---:|---:|---:|---:|")
dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
          "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
for name in sorted(os.listdir(measured)):
    model, variant = name[:-5].split("-", 1)
    path = os.path.join(models, model, f"kiln-{variant}.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    types = {i.name: dtypes[i.type] for i in session.get_inputs()}
    for result in json.load(open(os.path.join(measured, name))):
        rng = np.random.default_rng(0)
        feed = {}
        for input_name, shape in result["input_shapes"].items():
            dtype = types[input_name]
            feed[input_name] = (rng.standard_normal(shape).astype(dtype) if np.issubdtype(dtype, np.floating)
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
        ort_p50 = samples[(len(samples) + 1) // 2 - 1]
        shapes = "; ".join(f"{k} {'x'.join(map(str, v))}" for k, v in sorted(result["input_shapes"].items()))
        print(f"| {model} | {variant} | {result['batch_size']} | {shapes} | {result['p50_ms']:.3f} | "
              f"{result['p99_ms']:.3f} | {ort_p50:.3f} | {result['p50_ms'] / ort_p50:.1f}x |")

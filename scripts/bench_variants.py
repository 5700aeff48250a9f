"""kiln's variants next to what users would otherwise run, on the same models (run by
scripts/bench-variants.sh): onnx-simplifier for the optimized fp32 model, onnxconverter-common's float16
converter, and onnxruntime.quantization.quantize_dynamic for int8. For every file: size, node count, ONNX
Runtime CPU latency (p50 of many runs, one thread), and accuracy against the fp32 original (relative L2,
top-1 agreement). Prints a markdown table."""
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnxconverter_common import float16
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxsim import simplify
from safetensors.numpy import load_file

root = sys.argv[1]
runs = int(os.environ.get("KILN_BENCH_RUNS", "2000"))


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def latency_ms(sess, feeds):
    for _ in range(10):
        sess.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50))


def accuracy(output, reference):
    rel = float(np.linalg.norm(output.astype(np.float64) - reference) / np.linalg.norm(reference))
    top1 = float(np.mean(output.argmax(-1) == reference.argmax(-1)))
    return rel, top1


print("| model | variant | by | bytes | nodes | ORT p50 (ms, 1 thread) | rel L2 vs fp32 | top-1 agreement |")
print("|---|---|---|---|---|---|---|---|")
for name in sorted(os.listdir(root)):
    d = os.path.join(root, name)
    feeds = {k: v for k, v in load_file(os.path.join(d, "inputs.safetensors")).items()}
    original = os.path.join(d, "original.onnx")
    model = onnx.load(original)
    simplified, ok = simplify(model)
    assert ok
    onnx.save(simplified, os.path.join(d, "onnxsim-fp32.onnx"))
    onnx.save(float16.convert_float_to_float16(model, keep_io_types=True), os.path.join(d, "occ-fp16.onnx"))
    quantize_dynamic(original, os.path.join(d, "ort-int8.onnx"), weight_type=QuantType.QInt8)
    reference = session(original).run(None, feeds)[0].astype(np.float64)
    rows = [
        ("fp32", "original", "original.onnx"),
        ("fp32", "kiln", "kiln-fp32.onnx"),
        ("fp32", "onnxsim", "onnxsim-fp32.onnx"),
        ("fp16", "kiln", "kiln-fp16.onnx"),
        ("fp16", "onnxconverter-common", "occ-fp16.onnx"),
        ("int8", "kiln (weight-only)", "kiln-int8.onnx"),
        ("int8", "kiln int8-dynamic", "kiln-int8-dynamic.onnx"),
        ("int8", "ORT quantize_dynamic", "ort-int8.onnx"),
    ]
    for variant, by, file in rows:
        path = os.path.join(d, file)
        try:
            sess = session(path)
            out = sess.run(None, feeds)[0]
            rel, top1 = accuracy(out, reference)
            p50 = f"{latency_ms(sess, feeds):.3f}"
        except Exception as e:  # a runtime that cannot load the file is a result too
            rel, top1, p50 = float("nan"), float("nan"), f"fails: {type(e).__name__}"
        size = os.path.getsize(path)
        nodes = len(onnx.load(path).graph.node)
        print(f"| {name} | {variant} | {by} | {size} | {nodes} | {p50} | {rel:.2e} | {top1:.3f} |")

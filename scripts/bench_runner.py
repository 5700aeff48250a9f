"""scripts/bench-runner.sh's measurements and table: per model, variant and batch, kiln-runner's p50 with
kiln's evaluator and with ONNX Runtime inside the runner, beside Python onnxruntime's own timing loop on the
same file with inputs of the same shapes, all on one CPU thread with the session settings the runner
records. The runner's ONNX Runtime and Python's are measured in alternating rounds and each reported as the
median of its rounds' p50s, so that a slow minute of a shared machine does not land on one side only.
With BEFORE_RUNNER=path, kiln's engine is also measured with that
kiln-runner build (the before of a change to the engine).
Usage: bench_runner.py RUNNER LIBRARY MODELS OUT ROUNDS"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
from ort_cpu_session import one_thread_session as session

runner, library, models, out, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
          "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
MODELS = ["mlp", "cnn", "bert", "gpt2", "llama"]
VARIANTS = ["fp32", "fp16", "int8-dynamic"]


def measure(engine, path, into, binary=runner):
    """kiln-runner --measure: exactly what a runner reports. Results by batch; {} when it cannot run it."""
    with open(into, "w") as f:
        done = subprocess.run([binary, "--measure", path, "--threads", "1", "--engine", engine,
                               "--onnxruntime-lib", library, "--batch-sizes", "1,8", "--sequence-lengths", "16",
                               "--symbolic-size", "16", "--warmup", "5", "--min-iterations", "50",
                               "--max-iterations", "500", "--time-budget-ms", "2000", "--name", "bench"],
                              stdout=f, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        print(f"kiln-runner --engine {engine} could not measure {path}: {done.stderr.strip()}", file=sys.stderr)
        return {}
    return {r["batch_size"]: r for r in json.load(open(into))}


def feed_for(sess, input_shapes):
    types = {i.name: DTYPES[i.type] for i in sess.get_inputs()}
    rng = np.random.default_rng(0)
    feed = {}
    for name, shape in input_shapes.items():
        dtype = types[name]
        array = (rng.standard_normal(shape).astype(dtype) if np.issubdtype(dtype, np.floating)
                 else np.ones(shape, dtype=dtype))
        feed[name] = ort.OrtValue.ortvalue_from_numpy(array)
    return feed


def python_p50(sess, input_shapes):
    """onnxruntime's own loop over OrtValues made once (as the runner's are), 5 warm-up runs, then 50-500 runs
    or 2 s; p50 by nearest rank."""
    feed = feed_for(sess, input_shapes)
    outputs = [o.name for o in sess.get_outputs()]
    for _ in range(5):
        sess.run_with_ort_values(outputs, feed)
    samples = []
    started = time.perf_counter()
    while len(samples) < 50 or (len(samples) < 500 and time.perf_counter() - started < 2.0):
        t0 = time.perf_counter()
        sess.run_with_ort_values(outputs, feed)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return samples[(len(samples) + 1) // 2 - 1]


def mib(result):
    b = (result or {}).get("peak_memory_bytes")
    return f"{b / 2**20:.0f}" if b else "-"


rows = []
for model in MODELS:
    for variant in VARIANTS:
        path = os.path.join(models, model, f"kiln-{variant}.onnx")
        kiln = measure("kiln", path, os.path.join(out, f"{model}-{variant}.kiln.json"))
        before = (measure("kiln", path, os.path.join(out, f"{model}-{variant}.before.json"),
                          os.environ["BEFORE_RUNNER"]) if os.environ.get("BEFORE_RUNNER") else {})
        sess = session(path)
        runner_rounds, python_rounds, last = {}, {}, {}
        for r in range(rounds):
            measured = measure("ort", path, os.path.join(out, f"{model}-{variant}.ort.{r}.json"))
            for batch, result in measured.items():
                last[batch] = result
                runner_rounds.setdefault(batch, []).append(result["p50_ms"])
                python_rounds.setdefault(batch, []).append(python_p50(sess, result["input_shapes"]))
        for batch in sorted(set(kiln) | set(last)):
            shapes_of = (last.get(batch) or kiln[batch])["input_shapes"]
            shapes = "; ".join(f"{k} {'x'.join(map(str, v))}" for k, v in sorted(shapes_of.items()))
            runner_p50 = statistics.median(runner_rounds[batch]) if batch in runner_rounds else None
            python = statistics.median(python_rounds[batch]) if batch in python_rounds else None
            kiln_p50 = kiln[batch]["p50_ms"] if batch in kiln else None
            before_p50 = before[batch]["p50_ms"] if batch in before else None

            def ms(v):
                return f"{v:.3f}" if v is not None else "-"

            def times(a, b, digits=2, suffix=""):
                return f"{a / b:.{digits}f}{suffix}" if a and b else "-"

            before_cells = f"{ms(before_p50)} | " if before else ""
            rows.append(f"| {model} | {variant} | {batch} | {shapes} | {before_cells}{ms(kiln_p50)} | {ms(runner_p50)} | "
                        f"{ms(python)} | {times(runner_p50, python)} | "
                        f"{times(kiln_p50, runner_p50, 1, 'x')} | {mib(kiln.get(batch))} | {mib(last.get(batch))} |")

print(f"onnxruntime {ort.__version__} (Python) beside kiln-runner, 1 CPU thread, p50 in ms; ONNX Runtime's "
      f"columns are the median of {rounds} alternating rounds; peak = the runner process's peak RSS")
print()
before_head = "kiln p50 before | " if os.environ.get("BEFORE_RUNNER") else ""
print(f"| model | variant | batch | input shapes | {before_head}kiln p50 | runner ORT p50 | Python ORT p50 "
      "| runner/Python | kiln/runner ORT | kiln peak MiB | runner ORT peak MiB |")
print("|---|---|---:|---|" + ("---:|" if before_head else "") + "---:|---:|---:|---:|---:|---:|---:|")
print("\n".join(rows))

"""ONNX Runtime's run of several models on the same inputs, timed in interleaved rounds so that a drifting
host slows them alike; prints a table (median ms a run, each round's) and the largest difference of each
model's first output from the first model's. For comparing variants of one model (fp32 against fused).

    target/py-serving/bin/python scripts/ort_interleaved.py INPUTS MODEL.onnx MODEL.onnx... [--threads 2]

INPUTS is a safetensors file of the graph inputs (an `output` tensor in it is ignored) or a REST inference
request's JSON (the serving bench's target/bench-serving/bert.json).
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort

DTYPES = {"INT64": np.int64, "INT32": np.int32, "FP32": np.float32, "FP64": np.float64, "BOOL": np.bool_}


def load_inputs(path):
    if path.endswith(".json"):
        with open(path) as f:
            request = json.load(f)
        return {i["name"]: np.array(i["data"], dtype=DTYPES[i["datatype"]]).reshape(i["shape"])
                for i in request["inputs"]}
    from safetensors.numpy import load_file
    return {k: v for k, v in load_file(path).items() if k != "output"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=0.4)
    args = parser.parse_args()
    feed = load_inputs(args.inputs)
    sessions = []
    for path in args.models:
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        sessions.append(ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]))
    first = [s.run(None, feed)[0] for s in sessions]
    rounds = [[] for _ in sessions]
    for _ in range(args.rounds):
        for session, times in zip(sessions, rounds):
            for _ in range(50):
                session.run(None, feed)
            start, runs = time.perf_counter(), 0
            while time.perf_counter() - start < args.seconds:
                session.run(None, feed)
                runs += 1
            times.append(1000 * (time.perf_counter() - start) / runs)
    print(f"ONNX Runtime {ort.__version__}, {args.threads} intra-op threads, {args.rounds} interleaved rounds "
          f"of {args.seconds} s\n")
    print("| model | median ms | rounds | max abs difference from the first |")
    print("|---|---:|---|---:|")
    for path, times, out in zip(args.models, rounds, first):
        spread = "/".join(f"{t:.3f}" for t in times)
        print(f"| {path} | {np.median(times):.3f} | {spread} | {np.abs(out - first[0]).max():.2e} |")


main()

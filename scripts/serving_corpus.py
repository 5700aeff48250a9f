"""Every model of the ONNX corpus (real models that PyPI packages ship, scripts/fetch-onnx-corpus.sh) served
by `kiln-runner serve --model-dir` and called with tritonclient: on ONNX Runtime over REST (binary data and
JSON) and gRPC, then three calls at once (batched where the runner found the model batchable), and on
kiln's evaluator over gRPC. Each answer must be the corpus's stored ONNX Runtime outputs, by the rules of
kiln's corpus test (onnx/tests/corpus/agreement.rs): floats within a relative L2 error of 1e-4 (1e-2 for
a model that quantizes its activations at run time) or 1e-5 apart at most, everything else equal. An
output that is not a tensor (skl2onnx's ZipMap) is left out of what is served, and asking for it is a
clear 400 / INVALID_ARGUMENT; kiln's evaluator may refuse a model at start only by naming the operators
it does not implement, and must refuse a call of a model the corpus lists as malformed (ONNX Runtime's
answer there comes from reading past the input). Prints a table of what each model did.

Run by scripts/serving-test.sh:  python serving_corpus.py WORK KILN_RUNNER CORPUS_DIR [MODEL_ID...]
with KILN_ONNXRUNTIME_LIB set.
"""
import json
import os
import shutil
import sys
import threading
import time

import numpy as np
import onnx
from safetensors.numpy import load_file
from tritonclient.utils import InferenceServerException

from serving_client import check, failures, grpc_infer, http_infer, start_runner

MAX_RELATIVE_L2 = 1e-4
MAX_RELATIVE_L2_DYNAMIC_QUANTIZATION = 1e-2
DYNAMIC_QUANTIZATION = {"DynamicQuantizeLinear", "DynamicQuantizeLSTM"}
MAX_ABS = 1e-5


def disagreement(got, want, max_relative_l2):
    """Why `got` is not ONNX Runtime's `want`, or None."""
    if got is None:
        return "missing"
    if got.shape != want.shape:
        return f"shape {got.shape}, ONNX Runtime's {want.shape}"
    if not np.issubdtype(want.dtype, np.floating):
        differing = int(np.sum(got != want))
        return f"{differing} of {want.size} elements differ" if differing or got.dtype != want.dtype else None
    a, e = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    if np.any(np.isnan(a) != np.isnan(e)):
        return "NaN where ONNX Runtime has none (or the reverse)"
    a, e = a[~np.isnan(e)], e[~np.isnan(e)]
    max_abs = float(np.max(np.abs(a - e), initial=0.0))
    norm = float(np.linalg.norm(e))
    relative = float(np.linalg.norm(a - e)) / norm if norm > 0 else float(np.linalg.norm(a - e))
    if relative <= max_relative_l2 or max_abs <= MAX_ABS:
        return None
    return f"relative L2 {relative:.2e}, max abs {max_abs:.2e}"


def problems(result, expected, tolerance):
    found = [f"{name}: {why}" for name, want in expected.items()
             if (why := disagreement(result.as_numpy(name), want, tolerance))]
    return "; ".join(found) or None


def answered(call, expected, tolerance):
    """Why `call`'s answer is not ONNX Runtime's, or None; a refusal is a reason too."""
    try:
        return problems(call(), expected, tolerance)
    except InferenceServerException as e:
        return f"refused: {e}"[:300]


def start(runner, folder, work, name, engine):
    """A runner of `folder` on `engine`: (process, REST address, gRPC address), or (None, its log) when it
    stopped before it was ready."""
    try:
        return start_runner(runner, folder, work, name, ["--engine", engine, "--batch-delay-us", "20000"])
    except SystemExit:
        return None, open(os.path.join(work, f"{name}.log")).read()


def stop(process):
    process.terminate()
    process.wait(30)


def left_out_refused(url, grpc_url, feeds, names):
    """Whether asking for each output in `names` is refused over REST and gRPC, saying it is not a tensor."""
    refused = []
    for name in names:
        for call, status in [(http_infer, "400"), (grpc_infer, "StatusCode.INVALID_ARGUMENT")]:
            try:
                call(url if call is http_infer else grpc_url, "model", feeds, outputs=[name])
                refused.append(False)
            except InferenceServerException as e:
                refused.append(str(e.status()) == status and "sequence or a map" in e.message())
    return all(refused)


def on_onnx_runtime(runner, work, model, folder, feeds, expected, tolerance):
    key = model["id"]
    started = start(runner, folder, work, f"{key}-ort", "ort")
    if started[0] is None:
        check(False, f"{key} on ONNX Runtime: started ({started[1][-400:]!r})")
        return "did not start"
    process, url, grpc_url = started
    try:
        calls = {
            "REST binary": lambda: http_infer(url, "model", feeds, binary=True),
            "REST JSON": lambda: http_infer(url, "model", feeds, binary=False),
            "gRPC": lambda: grpc_infer(grpc_url, "model", feeds),
        }
        wrong = {how: why for how, call in calls.items() if (why := answered(call, expected, tolerance))}
        check(not wrong, f"{key} on ONNX Runtime: REST (binary and JSON) and gRPC give ONNX Runtime's outputs"
                         + (f" ({wrong})" if wrong else ""))
        together = ["not answered"] * 3

        def one(n):
            together[n] = answered(lambda: grpc_infer(grpc_url, "model", feeds), expected, tolerance)
        threads = [threading.Thread(target=one, args=(n,)) for n in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        check(together == [None] * 3, f"{key} on ONNX Runtime: three calls at once each give its outputs"
                                      + ("" if together == [None] * 3 else f" ({together})"))
        left_out = [o.split(" ")[0] for o in model["outputs_left_out"]]
        if left_out:
            check(left_out_refused(url, grpc_url, feeds, left_out),
                  f"{key}: asking for {left_out} (not tensors, left out) is a 400 / INVALID_ARGUMENT saying so")
        batched = "batched" if "batchable=true" in open(os.path.join(work, f"{key}-ort.log")).read() else "one at a time"
        verdict = "ok" if not wrong and together == [None] * 3 else "WRONG"
        return f"{verdict}, {batched}" + (f", {len(left_out)} left out" if left_out else "")
    finally:
        stop(process)


def malformed_refused(key, why, grpc_url, feeds):
    """A model the corpus calls malformed (ONNX Runtime reads past an input) must be refused
    INVALID_ARGUMENT by kiln's evaluator, naming the node, not answered."""
    try:
        grpc_infer(grpc_url, "model", feeds)
        refusal = None
    except InferenceServerException as e:
        refusal = e
    refused = (refusal is not None and str(refusal.status()) == "StatusCode.INVALID_ARGUMENT"
               and "node" in refusal.message())
    check(refused, f"{key} on kiln's evaluator: a malformed model ({why}) is refused INVALID_ARGUMENT "
                   f"naming the node" + ("" if refused else f" ({refusal})"))
    return "refused, malformed: " + (refusal.message()[:160] if refusal else "answered")


def on_kiln(runner, work, model, folder, feeds, expected, tolerance):
    key = model["id"]
    started = time.time()
    result = start(runner, folder, work, f"{key}-kiln", "kiln")
    if result[0] is None:
        refused = "kiln's evaluator does not implement" in result[1] and "--engine ort" in result[1]
        check(refused, f"{key} on kiln's evaluator: answers, or is refused at start naming the operators it lacks"
                       + ("" if refused else f" ({result[1][-400:]!r})"))
        return "refused: " + result[1].strip().splitlines()[-1].removeprefix("error: ")[:200]
    process, _, grpc_url = result
    try:
        if model.get("malformed"):
            return malformed_refused(key, model["malformed"], grpc_url, feeds)
        why = answered(lambda: grpc_infer(grpc_url, "model", feeds), expected, tolerance)
        check(why is None, f"{key} on kiln's evaluator over gRPC gives ONNX Runtime's outputs"
                           + (f" ({why})" if why else ""))
        return f"{'WRONG' if why else 'ok'} ({time.time() - started:.1f} s)"
    finally:
        stop(process)


def main():
    work, runner, corpus, *only = sys.argv[1:]
    work = os.path.join(work, "corpus")
    os.makedirs(work, exist_ok=True)
    rows = []
    for model in json.load(open(os.path.join(corpus, "corpus.json")))["models"]:
        if only and model["id"] not in only:
            continue
        folder = os.path.join(work, model["id"])
        os.makedirs(folder, exist_ok=True)
        shutil.copy(os.path.join(corpus, model["model"]), os.path.join(folder, "model.onnx"))
        ops = {node.op_type for node in onnx.load(os.path.join(folder, "model.onnx")).graph.node}
        tolerance = MAX_RELATIVE_L2_DYNAMIC_QUANTIZATION if ops & DYNAMIC_QUANTIZATION else MAX_RELATIVE_L2
        feeds = load_file(os.path.join(corpus, model["inputs"]))
        expected = load_file(os.path.join(corpus, model["outputs"]))
        rows.append((model["id"], on_onnx_runtime(runner, work, model, folder, feeds, expected, tolerance),
                     on_kiln(runner, work, model, folder, feeds, expected, tolerance)))
    print("\n| model | ONNX Runtime | kiln's evaluator |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print(f"all {len(rows)} corpus models served")


if __name__ == "__main__":
    main()

"""The corpus of real ONNX models through a running kiln-server, the way a user meets it (run by
scripts/onnx-corpus-server.sh, in the corpus venv, with KILN_SERVER and KILN_TOKEN set).

Every model is pushed with the kiln CLI (default variants; the stored input beside it as
sample_inputs.safetensors), and must become `ready`. Its pipeline must
then either validate it (the optimize step succeeded) or skip it naming the operator kiln could not run.
The version is aliased, and every deployable variant is pulled by alias (the CLI verifies the signed
manifest and every digest), then run in ONNX Runtime on the corpus's stored input: it must agree with
ONNX Runtime's outputs of the model as published, within the variant's own tolerance (relative L2 at most
the tolerance kiln validated it against; at most 1e-4, or max abs 1e-5, for variants that claim
equality). Prints a markdown table; exits non-zero on any failure.

Usage: python onnx_corpus_server.py CORPUS_DIR KILN_CLI WORK_DIR
Knobs: KILN_ONNX_CORPUS_FILTER (substring of ids), KILN_ONNX_CORPUS_SLOW=1 (the slow models too),
KILN_ONNX_CORPUS_SERVER_TIMEOUT_SECS (3600: how long all pipelines may take together).
"""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

NAMESPACE = "corpus"
# Variants that claim to compute what the model as published computes, to float rounding.
EXACT = {"onnx": 1e-4, "original": 1e-4}


def kiln(cli, *args):
    done = subprocess.run([cli, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"kiln {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def show(cli, ref):
    return json.loads(kiln(cli, "show", ref, "--json"))


def settled(detail):
    if detail["status"] == "failed":
        return True
    busy = any(j["state"] in ("queued", "running") for j in detail["pipeline"] if j["kind"] != "benchmark")
    return detail["status"] == "ready" and not busy


def compare(actual, expected):
    """Relative L2 and max abs error of one output, in float64."""
    a = np.asarray(actual, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    if a.shape != e.shape:
        return float("inf"), float("inf")
    diff = a - e
    norm = np.linalg.norm(e)
    rel = float(np.linalg.norm(diff) / norm) if norm > 0 else float(np.linalg.norm(diff))
    return rel, float(np.max(np.abs(diff))) if diff.size else 0.0


def run_in_ort(model_path, inputs, expected):
    """The worst relative L2 and max abs error over the outputs ORT's reference run stored."""
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feeds = {i.name: inputs[i.name] for i in session.get_inputs() if i.name in inputs}
    outputs = dict(zip(names, session.run(None, feeds)))
    worst_rel, worst_abs = 0.0, 0.0
    for name, reference in expected.items():
        if name not in outputs:
            raise RuntimeError(f"the variant has no output {name!r}")
        rel, abs_ = compare(outputs[name], reference)
        worst_rel, worst_abs = max(worst_rel, rel), max(worst_abs, abs_)
    return worst_rel, worst_abs


def push_folder(model, work):
    """The model with the corpus's stored input as sample_inputs.safetensors, as a user pushes a model
    whose inputs need valid values (a sample rate, ids within a vocabulary): kiln validates its variants on
    the input ONNX Runtime's reference outputs were made from."""
    folder = os.path.join(work, "push", model["key"])
    os.makedirs(folder)
    shutil.copy(os.path.join(model["corpus"], model["model"]), os.path.join(folder, "model.onnx"))
    shutil.copy(os.path.join(model["corpus"], model["inputs"]), os.path.join(folder, "sample_inputs.safetensors"))
    return folder


def step(detail, kind):
    return next((j for j in detail["pipeline"] if j["kind"] == kind), None)


def check_variants(cli, model, detail, work):
    """Pulls every deployable variant by alias and runs it in ORT; returns (cells, failures)."""
    kiln(cli, "alias", "set", f"{NAMESPACE}/{model['key']}", "production", "1")
    inputs = load_file(os.path.join(model["corpus"], model["inputs"]))
    expected = load_file(os.path.join(model["corpus"], model["outputs"]))
    cells, failures = [], []
    for variant in detail["variants"]:
        if variant["status"] != "deployable":
            continue
        name = variant["name"]
        out = os.path.join(work, model["key"], name)
        kiln(cli, "pull", f"{NAMESPACE}/{model['key']}@production", "--variant", name, "-o", out,
             "--state", os.path.join(work, "manifest-state.json"))
        rel, abs_ = run_in_ort(os.path.join(out, variant["files"][0]["path"]), inputs, expected)
        tolerance = (variant.get("validation") or {}).get("tolerance_rel_l2", EXACT.get(name, 1e-4))
        ok = rel <= tolerance or abs_ <= 1e-5
        size = variant["size"] / 1e6
        cells.append(f"{name} {size:.1f} MB {rel:.0e}{'' if ok else ' ✗'}")
        if not ok:
            failures.append(f"{name}: relative L2 {rel:.2e} against ORT exceeds its tolerance {tolerance:.0e}")
    return cells, failures


def why_rejected(validation):
    """kiln's own words for a rejected variant: its error, or its numbers against its tolerance (JSON has
    no NaN: serde writes a NaN error as null)."""
    if validation.get("error"):
        return validation["error"]
    number = lambda key: "NaN" if validation.get(key) is None else f"{validation[key]:.1e}"
    return (f"relative L2 {number('rel_l2_error')}, max abs {number('max_abs_error')}, "
            f"tolerance {number('tolerance_rel_l2')}")


def report(cli, model, detail, work):
    optimize = step(detail, "optimize") or {}
    convert = step(detail, "convert") or {}
    failures = []
    if detail["status"] != "ready":
        failures.append(f"version {detail['status']}")
    evaluated = optimize.get("state") == "succeeded"
    reason = ""
    if not evaluated:
        reason = optimize.get("message") or convert.get("message") or f"optimize {optimize.get('state')}"
        if model.get("malformed"):
            # ONNX Runtime reads past its input: kiln's optimize step must say why it cannot run it,
            # naming the node, and the model is still served as pushed.
            if "node" not in reason:
                failures.append(f"malformed ({model['malformed']}), but optimize said: {reason}")
        elif optimize.get("state") != "skipped" or "op " not in reason:
            failures.append(f"optimize {optimize.get('state')} without naming an operator: {reason}")
    not_deployable = [
        f"{v['name']} rejected ({why_rejected(v.get('validation') or {})})"
        for v in detail["variants"] if v["status"] != "deployable"
    ] + [f"{n['variant']} not made: {n['reason']}" for n in ((optimize.get("report") or {}).get("not_made") or [])]
    cells = []
    if detail["status"] == "ready":
        cells, variant_failures = check_variants(cli, model, detail, work)
        failures += variant_failures
        if not cells:
            failures.append("no deployable variant")
    return {
        "id": model["id"],
        "producer": model.get("producer") or "(none)",
        "opset": model["opset"],
        "status": detail["status"],
        "evaluated": "yes" if evaluated else "no",
        "variants": "; ".join(cells),
        "not_deployable": "; ".join(not_deployable),
        "notes": "; ".join(failures) or reason,
        "failed": bool(failures),
    }


def main():
    corpus, cli, work = sys.argv[1:4]
    listing = json.load(open(os.path.join(corpus, "corpus.json")))
    wanted = os.environ.get("KILN_ONNX_CORPUS_FILTER", "")
    slow = os.environ.get("KILN_ONNX_CORPUS_SLOW") == "1"
    timeout = float(os.environ.get("KILN_ONNX_CORPUS_SERVER_TIMEOUT_SECS", "3600"))
    models = [m for m in listing["models"] if wanted in m["id"] and (slow or not m["slow"])]
    for model in models:
        model["corpus"] = corpus
        model["key"] = model["id"]
        kiln(cli, "push", push_folder(model, work), f"{NAMESPACE}/{model['key']}:1")
    started = time.monotonic()
    pending = {m["id"]: m for m in models}
    details = {}
    while pending and time.monotonic() - started < timeout:
        for key in list(pending):
            detail = show(cli, f"{NAMESPACE}/{key}:1")
            if settled(detail):
                details[key] = detail
                print(f"{key}: {detail['status']} after {time.monotonic() - started:.0f} s", file=sys.stderr)
                del pending[key]
        time.sleep(1)
    rows = []
    for model in models:
        if model["id"] in pending:
            rows.append({"id": model["id"], "producer": model.get("producer") or "(none)", "opset": model["opset"],
                         "status": "(still running)", "evaluated": "–", "variants": "", "not_deployable": "",
                         "notes": f"pipeline not settled after {timeout:.0f} s", "failed": True})
            continue
        try:
            rows.append(report(cli, model, details[model["id"]], work))
        except Exception as error:  # one model's failure is a row, not the end of the report
            rows.append({"id": model["id"], "producer": model.get("producer") or "(none)", "opset": model["opset"],
                         "status": details[model["id"]]["status"], "evaluated": "?", "variants": "", "not_deployable": "",
                         "notes": str(error).replace("\n", " "), "failed": True})
    print("| model | producer | opset | status | evaluated by kiln | deployable variants pulled by alias "
          "(size, relative L2 against ORT) | not deployable | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['id']} | {row['producer']} | {row['opset']} | {row['status']} | {row['evaluated']} "
              f"| {row['variants']} | {row['not_deployable']} | {row['notes']} |")
    failed = [r["id"] for r in rows if r["failed"]]
    ready = sum(r["status"] == "ready" for r in rows)
    print(f"\n{ready} of {len(rows)} ready; {sum(r['evaluated'] == 'yes' for r in rows)} evaluated by kiln; "
          f"{len(rows) - len(failed)} with every deployable variant agreeing with ONNX Runtime "
          f"({time.monotonic() - started:.0f} s)")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

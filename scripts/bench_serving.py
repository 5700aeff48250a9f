"""scripts/bench-serving.sh's measurements and table: kiln-runner serve (engine ort) and Seldon MLServer with
scripts/bench_serving_mlserver.py's runtime, one at a time on the same ONNX file. Both are first asked the
benchmark's request once and their answers checked against Python onnxruntime's on the same inputs, so that
the two do equal work; then wrk (scripts/bench-serving.lua) sends that same JSON request at 1, 8 and 64
connections, a warm-up at each level before the measured run. CPU seconds of each server's processes and of
wrk are read around every measured run: on a small machine they share the cores, and wrk's share shows it is
not what limits the rate.
Usage: bench_serving.py RUNNER ORT_LIBRARY MODELS OUT SECONDS THREADS MLSERVER_WORKERS"""
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import mlserver
import numpy as np
import onnxruntime as ort

runner, library, models, out = sys.argv[1:5]
seconds, threads, workers = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
MAX_BATCH, DELAY_US = 16, 1000
CLIENTS = (1, 8, 64)
WARMUP_S = 2
SEQUENCE = 32
HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inputs_for(model):
    """One row. Values rounded to 3 decimals keep the JSON short; the reference runs on what they parse to."""
    rng = np.random.default_rng(0)
    if model == "cnn":
        return {"image": np.round(rng.standard_normal((1, 3, 32, 32)), 3).astype(np.float32)}
    ids = rng.integers(1, 4000, (1, SEQUENCE), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def request_body(feeds):
    datatypes = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}
    return json.dumps({"inputs": [
        {"name": name, "shape": list(a.shape), "datatype": datatypes[a.dtype],
         "data": [float(f"{x:.3f}") for x in a.ravel()] if a.dtype == np.float32 else a.ravel().tolist()}
        for name, a in feeds.items()]}).encode()


def reference(path, feeds):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def answer(url, name, body):
    request = urllib.request.Request(f"{url}/v2/models/{name}/infer", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        outputs = json.loads(response.read())["outputs"]
    return {o["name"]: np.array(o["data"], dtype=np.float64).reshape(o["shape"]) for o in outputs}


def check_same(server, got, want):
    """ONNX Runtime on both sides, but thread counts and batching may order float sums differently."""
    if set(got) != set(want):
        raise SystemExit(f"{server} answered outputs {sorted(got)}, the model has {sorted(want)}")
    for name, expected in want.items():
        if got[name].shape != expected.shape or not np.allclose(got[name], expected, rtol=1e-4, atol=1e-4):
            worst = np.max(np.abs(got[name] - expected)) if got[name].shape == expected.shape else "shape"
            raise SystemExit(f"{server}'s {name} differs from onnxruntime's on the same inputs ({worst})")


def start(command, log, cwd=None, env=None):
    # Its own process group: MLServer's inference workers are child processes that must stop with it.
    return subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=cwd,
                            env=env, start_new_session=True)


def stop(process):
    """Until every process of the group is gone, so that the next server has the cores to itself."""
    for sig, patience in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + patience
        while time.time() < deadline:
            process.poll()
            if not group_stat(process.pid):
                return
            time.sleep(0.1)
    raise SystemExit(f"process group {process.pid} outlived SIGKILL")


def wait_ready(url, name, process, log):
    # The model's own readiness: MLServer's server is ready even when the model failed to load.
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/v2/models/{name}/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready (exit {process.poll()}); its log:\n{open(log).read()[-3000:]}")


def start_kiln(model_file, name):
    port = free_port()
    log = os.path.join(out, f"kiln-{name}.log")
    process = start([runner, "serve", "--model-dir", model_file, "--name", name, "--engine", "ort",
                     "--onnxruntime-lib", library, "--http-listen", f"127.0.0.1:{port}",
                     "--grpc-listen", f"127.0.0.1:{free_port()}", "--threads", str(threads), "--instances", "1",
                     "--max-batch-size", str(MAX_BATCH), "--batch-delay-us", str(DELAY_US)], log)
    return process, f"http://127.0.0.1:{port}", log


def start_mlserver(model_file, name):
    folder = os.path.join(out, f"mlserver-{name}")
    os.makedirs(folder)
    # MLServer puts the model's folder on the import path of the server and of its workers.
    shutil.copy(os.path.join(HERE, "bench_serving_mlserver.py"), folder)
    port = free_port()
    # debug false: MLServer's default (true) writes an access-log line per request, which kiln does not.
    settings = {"debug": False, "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
                "metrics_port": free_port(), "parallel_workers": workers}
    model_settings = {"name": name, "implementation": "bench_serving_mlserver.OnnxRuntimeModel",
                      "parameters": {"uri": os.path.abspath(model_file)},
                      "max_batch_size": MAX_BATCH, "max_batch_time": DELAY_US / 1e6}
    for file, content in (("settings.json", settings), ("model-settings.json", model_settings)):
        with open(os.path.join(folder, file), "w") as f:
            json.dump(content, f, indent=2)
    log = os.path.join(out, f"mlserver-{name}.log")
    command = [os.path.join(os.path.dirname(sys.executable), "mlserver"), "start", "."]
    process = start(command, log, cwd=folder, env=dict(os.environ, BENCH_THREADS=str(threads)))
    return process, f"http://127.0.0.1:{port}", log


def group_stat(pgid):
    """/proc/PID/stat after the command's name (state ppid pgrp ... utime, stime 12th and 13th) of the
    group's live processes. Zombies are left out: a worker orphaned to a PID 1 that does not reap stays one."""
    stats = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            stats.append(fields)
    return stats


def group_cpu_seconds(pgid):
    return sum(int(fields[11]) + int(fields[12]) for fields in group_stat(pgid)) / TICK


def wrk(url, name, body_file, clients, duration):
    # One wrk thread: it shares the two cores with the server, and one thread is far from saturated here.
    result = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{duration}s", "--timeout", "10s", "-s",
         os.path.join(HERE, "bench-serving.lua"), f"{url}/v2/models/{name}/infer"],
        capture_output=True, text=True, env=dict(os.environ, BENCH_BODY=body_file))
    line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
    requests, took, p50, p99, non_200, socket_errors = line.split()[1:]
    return {"rps": int(requests) / float(took), "p50": float(p50), "p99": float(p99), "requests": int(requests),
            "errors": int(non_200) + int(socket_errors), "non_200": int(non_200),
            "socket_errors": int(socket_errors)}


def measure(process, url, name, body_file):
    results = {}
    for clients in CLIENTS:
        wrk(url, name, body_file, clients, WARMUP_S)
        server_before = group_cpu_seconds(process.pid)
        wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        result = wrk(url, name, body_file, clients, seconds)
        wall = time.monotonic() - started
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["server_cpu"] = (group_cpu_seconds(process.pid) - server_before) / wall
        result["wrk_cpu"] = (wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime
                             - wrk_before.ru_stime) / wall
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode}) during the run at {clients} clients")
        results[clients] = result
    return results


def main():
    begun = time.monotonic()
    servers = (("kiln", start_kiln), ("MLServer", start_mlserver))
    rows = []
    for name in ("cnn", "bert"):
        model_file = os.path.join(models, name, "kiln-fp32.onnx")
        feeds = inputs_for(name)
        body_file = os.path.join(out, f"{name}.json")
        with open(body_file, "wb") as f:
            f.write(request_body(feeds))
        want = reference(model_file, feeds)
        results = {}
        for server, launch in servers:
            process, url, log = launch(model_file, name)
            try:
                wait_ready(url, name, process, log)
                check_same(server, answer(url, name, open(body_file, "rb").read()), want)
                print(f"{name}: {server} answers as onnxruntime does; measuring", file=sys.stderr, flush=True)
                results[server] = measure(process, url, name, body_file)
            finally:
                stop(process)
        rows += [(name, clients, results["kiln"][clients], results["MLServer"][clients]) for clients in CLIENTS]
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump([{"model": n, "clients": c, "kiln": k, "mlserver": m} for n, c, k, m in rows], f, indent=2)

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    kiln_version = subprocess.run([runner, "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"{kiln_version} ({commit}, --engine ort, ONNX Runtime library {os.path.basename(library)}) vs "
          f"MLServer {mlserver.__version__} (onnxruntime {ort.__version__}, numpy {np.__version__}, "
          f"Python {platform.python_version()}, parallel_workers {workers}, debug false); wrk {wrk_version}, "
          f"1 thread, keep-alive.")
    print(f"Both: the same file (target/bench-variants/{{cnn,bert}}/kiln-fp32.onnx), {threads} intra-op threads, "
          f"1 inter-op, sequential, all graph optimizations; dynamic batching up to {MAX_BATCH} rows within "
          f"{DELAY_US} µs (kiln --max-batch-size/--batch-delay-us, MLServer max_batch_size/max_batch_time). "
          f"Request: one JSON row (CNN 1x3x32x32 FP32; BERT {SEQUENCE} tokens, 3 INT64 inputs), answers "
          f"checked against onnxruntime's. {seconds} s per row after {WARMUP_S} s of warm-up; servers one at a "
          f"time on {os.cpu_count()} CPUs shared with wrk.")
    print()
    print("| model | clients | kiln req/s | kiln p50 ms | kiln p99 ms | MLServer req/s | MLServer p50 ms "
          "| MLServer p99 ms | throughput × | errors (kiln / MLServer) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, clients, k, m in rows:
        print(f"| {name} | {clients} | {k['rps']:.0f} | {k['p50']:.2f} | {k['p99']:.2f} | {m['rps']:.0f} | "
              f"{m['p50']:.2f} | {m['p99']:.2f} | {k['rps'] / m['rps']:.1f} | {k['errors']} / {m['errors']} |")
    print()
    print("CPU use during each measured run, in cores (server = all its processes):")
    print()
    print("| model | clients | kiln | wrk (kiln) | MLServer | wrk (MLServer) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, clients, k, m in rows:
        print(f"| {name} | {clients} | {k['server_cpu']:.2f} | {k['wrk_cpu']:.2f} | {m['server_cpu']:.2f} | "
              f"{m['wrk_cpu']:.2f} |")
    print(f"\n{time.monotonic() - begun:.0f} s in all; logs, settings and results.json in {out}", file=sys.stderr)


main()

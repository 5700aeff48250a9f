"""scripts/bench-serving.sh's measurements and table: kiln-runner serve (engine ort) and Seldon MLServer with
scripts/bench_serving_mlserver.py's runtime on the same ONNX file, each in the configurations it offers for
using several cores (kiln: --instances x --threads; MLServer: parallel_workers x intra-op threads). Every
server of a model is started and first asked the benchmark's request once, its answer checked against
Python onnxruntime's on the same inputs, so that all do equal work. Then, at 1, 8 and 64 connections, wrk
(scripts/bench-serving.lua) sends that same JSON request to each server in turn, ROUNDS times in a rotating
order, a warm-up before each measured run; each server's median run is reported. Interleaving matters on a
shared VM, whose speed drifts by tens of percent within minutes: running one server's levels and then the
other's compares the machine's moods as much as the servers. The servers of a model are all resident while
one is measured; an idle one takes no CPU (checked: the CPU seconds of every server's processes and of wrk
are read around each measured run, so that wrk's share also shows it is not what limits the rate).
Usage: bench_serving.py RUNNER ORT_LIBRARY MODELS OUT SECONDS ROUNDS KILN_CONFIGS MLSERVER_CONFIGS DELAY_US
[NAMES] (configs: comma-separated PARALLELxTHREADS, e.g. 1x2,2x1; NAMES: the models, default cnn,bert)"""
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
seconds, rounds = int(sys.argv[5]), int(sys.argv[6])


def configs(text):
    """PARALLELxTHREADS pairs, duplicates dropped (on one core, 1x1 and 0x1 may be asked twice)."""
    pairs = [tuple(int(n) for n in c.split("x")) for c in text.split(",") if c]
    return list(dict.fromkeys(pairs))


KILN_CONFIGS, MLSERVER_CONFIGS = configs(sys.argv[7]), configs(sys.argv[8])
MAX_BATCH, DELAY_US = 16, int(sys.argv[9])
NAMES = [n for n in (sys.argv[10] if len(sys.argv) > 10 else "cnn,bert").split(",") if n]
CLIENTS = (1, 8, 64)
WARMUP_S = 1
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


def start_kiln(model_file, name, instances, threads):
    port = free_port()
    log = os.path.join(out, f"kiln-{name}-{instances}x{threads}.log")
    process = start([runner, "serve", "--model-dir", model_file, "--name", name, "--engine", "ort",
                     "--onnxruntime-lib", library, "--http-listen", f"127.0.0.1:{port}",
                     "--grpc-listen", f"127.0.0.1:{free_port()}", "--threads", str(threads),
                     "--instances", str(instances),
                     "--max-batch-size", str(MAX_BATCH), "--batch-delay-us", str(DELAY_US)], log)
    return process, f"http://127.0.0.1:{port}", log


def start_mlserver(model_file, name, workers, threads):
    folder = os.path.join(out, f"mlserver-{name}-{workers}x{threads}")
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
    log = os.path.join(out, f"mlserver-{name}-{workers}x{threads}.log")
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


def measure_once(process, others, url, name, body_file, clients):
    wrk(url, name, body_file, clients, WARMUP_S)
    server_before = group_cpu_seconds(process.pid)
    others_before = sum(group_cpu_seconds(p.pid) for p in others)
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = wrk(url, name, body_file, clients, seconds)
    wall = time.monotonic() - started
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["server_cpu"] = (group_cpu_seconds(process.pid) - server_before) / wall
    result["others_cpu"] = (sum(group_cpu_seconds(p.pid) for p in others) - others_before) / wall
    result["wrk_cpu"] = (wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime
                         - wrk_before.ru_stime) / wall
    if process.poll() is not None:
        raise SystemExit(f"{url} exited ({process.returncode}) during the run at {clients} clients")
    return result


def median_run(runs):
    """The run of median throughput (an odd count has one; an even one takes the lower middle)."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    return dict(ordered[(len(ordered) - 1) // 2], runs=[round(r["rps"]) for r in runs])


def servers_of():
    kiln = [(f"kiln {i}x{t}", lambda f, n, i=i, t=t: start_kiln(f, n, i, t)) for i, t in KILN_CONFIGS]
    mlserver = [(f"MLServer {w}x{t}", lambda f, n, w=w, t=t: start_mlserver(f, n, w, t))
                for w, t in MLSERVER_CONFIGS]
    return kiln + mlserver


def measure_model(name):
    """{server label: {clients: median run}} for one model, every server resident, runs interleaved."""
    model_file = os.path.join(models, name, "kiln-fp32.onnx")
    feeds = inputs_for(name)
    body_file = os.path.join(out, f"{name}.json")
    with open(body_file, "wb") as f:
        f.write(request_body(feeds))
    want = reference(model_file, feeds)
    running = []
    try:
        for label, launch in servers_of():
            process, url, log = launch(model_file, name)
            running.append((label, process, url))
            wait_ready(url, name, process, log)
            check_same(label, answer(url, name, open(body_file, "rb").read()), want)
        print(f"{name}: {len(running)} servers answer as onnxruntime does; measuring", file=sys.stderr,
              flush=True)
        results = {label: {} for label, _, _ in running}
        for clients in CLIENTS:
            runs = {label: [] for label, _, _ in running}
            for round_ in range(rounds):
                shift = round_ % len(running)
                for label, process, url in running[shift:] + running[:shift]:
                    others = [p for _, p, _ in running if p is not process]
                    runs[label].append(measure_once(process, others, url, name, body_file, clients))
            for label in runs:
                results[label][clients] = median_run(runs[label])
        return results
    finally:
        for _, process, _ in running:
            stop(process)


def best(results, prefix, clients):
    label = max((l for l in results if l.startswith(prefix)), key=lambda l: results[l][clients]["rps"])
    return label, results[label][clients]


def main():
    begun = time.monotonic()
    results = {name: measure_model(name) for name in NAMES}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    kiln_version = subprocess.run([runner, "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"{kiln_version} ({commit}, --engine ort, ONNX Runtime library {os.path.basename(library)}) vs "
          f"MLServer {mlserver.__version__} (onnxruntime {ort.__version__}, numpy {np.__version__}, "
          f"Python {platform.python_version()}, debug false); wrk {wrk_version}, 1 thread, keep-alive.")
    print(f"All: the same file (target/bench-variants/{{cnn,bert}}/kiln-fp32.onnx), ONNX Runtime with 1 inter-op "
          f"thread, sequential, all graph optimizations; dynamic batching up to {MAX_BATCH} rows within "
          f"{DELAY_US} µs (kiln --max-batch-size/--batch-delay-us, MLServer max_batch_size/max_batch_time). "
          f"Configurations PxT: kiln --instances P --threads T; MLServer parallel_workers P (0: the model "
          f"runs in the HTTP server's process), T intra-op threads. Request: one JSON row (CNN 1x3x32x32 FP32; "
          f"BERT {SEQUENCE} tokens, 3 INT64 inputs), answers checked against onnxruntime's. Each cell: the "
          f"median of {rounds} runs of {seconds} s (after {WARMUP_S} s of warm-up each), servers interleaved; "
          f"{os.cpu_count()} CPUs shared with wrk.")
    print()
    print("Each at its best configuration for the load:")
    print()
    print("| model | clients | kiln req/s | p50 ms | p99 ms | config | MLServer req/s | p50 ms | p99 ms | config "
          "| throughput × |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|")
    for name, by_server in results.items():
        for clients in CLIENTS:
            (kl, k), (ml, m) = best(by_server, "kiln", clients), best(by_server, "MLServer", clients)
            print(f"| {name} | {clients} | {k['rps']:.0f} | {k['p50']:.2f} | {k['p99']:.2f} | {kl[5:]} | "
                  f"{m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {ml[9:]} | {k['rps'] / m['rps']:.1f} |")
    print()
    print("Every configuration (req/s, p99 ms; the runs' req/s in brackets; errors after the slash if any):")
    print()
    labels = list(next(iter(results.values())))
    print("| model | clients | " + " | ".join(labels) + " |")
    print("|---|---:|" + "---|" * len(labels))
    for name, by_server in results.items():
        for clients in CLIENTS:
            cells = []
            for label in labels:
                r = by_server[label][clients]
                errors = f" / {r['errors']} errors" if r["errors"] else ""
                cells.append(f"{r['rps']:.0f}, {r['p99']:.1f} ({'/'.join(map(str, r['runs']))}){errors}")
            print(f"| {name} | {clients} | " + " | ".join(cells) + " |")
    print()
    print("CPU use during each median run, in cores (server = all its processes; wrk in brackets):")
    print()
    print("| model | clients | " + " | ".join(labels) + " |")
    print("|---|---:|" + "---:|" * len(labels))
    for name, by_server in results.items():
        for clients in CLIENTS:
            cells = [f"{by_server[l][clients]['server_cpu']:.2f} ({by_server[l][clients]['wrk_cpu']:.2f})"
                     for l in labels]
            print(f"| {name} | {clients} | " + " | ".join(cells) + " |")
    idle = max(r["others_cpu"] for by_server in results.values() for by_clients in by_server.values()
               for r in by_clients.values())
    print(f"\nThe other resident servers used at most {idle:.2f} cores during any median run.")
    print(f"\n{time.monotonic() - begun:.0f} s in all; logs, settings and results.json in {out}", file=sys.stderr)


main()

"""scripts/bench-serving.sh's measurements and table: kiln-runner serve (engine ort) and Seldon MLServer with
scripts/bench_serving_mlserver.py's runtime on the same ONNX file, each in the configurations it offers for
using several cores (kiln: --instances x --threads; MLServer: parallel_workers x intra-op threads). Every
server of a model is started and first asked the benchmark's request once, its answer checked against
Python onnxruntime's on the same inputs, over REST and over gRPC, so that all do equal work. Then, at 1, 8
and 64 connections, wrk (scripts/bench-serving.lua) sends that same JSON request to each server in turn,
ROUNDS times in a rotating order, a warm-up before each measured run; each server's median run is reported.
Over gRPC, runner/examples/grpc_load does what wrk does, sending the same inputs as raw_input_contents (as
tritonclient does); each server answers in its own way (kiln raw contents, MLServer typed). Interleaving matters on a
shared VM, whose speed drifts by tens of percent within minutes: running one server's levels and then the
other's compares the machine's moods as much as the servers. The servers of a model are all resident while
one is measured; an idle one takes no CPU (checked: the CPU seconds of every server's processes and of the
client are read around each measured run, so that the client's share also shows it is not what limits the
rate).
Usage: bench_serving.py RUNNER ORT_LIBRARY MODELS OUT SECONDS ROUNDS KILN_CONFIGS MLSERVER_CONFIGS DELAY_US
[NAMES] [PROTOCOLS] [CLIENTS] (configs: comma-separated PARALLELxTHREADS, e.g. 1x2,2x1; NAMES: the models,
default cnn,bert; PROTOCOLS: rest,grpc by default; CLIENTS: the levels of concurrent connections, 1,8,64 by
default)"""
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import grpc
import mlserver
import numpy as np
import onnxruntime as ort
# The protocol's messages as MLServer generated them from the same grpc_predict_v2.proto (tritonclient's
# would clash with them in protobuf's one descriptor pool); grpcio comes with MLServer too.
from mlserver.grpc import dataplane_pb2, dataplane_pb2_grpc

runner, library, models, out = sys.argv[1:5]
seconds, rounds = int(sys.argv[5]), int(sys.argv[6])


def configs(text):
    """PARALLELxTHREADS pairs, duplicates dropped (on one core, 1x1 and 0x1 may be asked twice)."""
    pairs = [tuple(int(n) for n in c.split("x")) for c in text.split(",") if c]
    return list(dict.fromkeys(pairs))


KILN_CONFIGS, MLSERVER_CONFIGS = configs(sys.argv[7]), configs(sys.argv[8])
MAX_BATCH, DELAY_US = 16, int(sys.argv[9])
# More of kiln-runner serve's flags, to compare settings (bench-serving.sh's KILN_SERVE_ARGS).
KILN_EXTRA = shlex.split(os.environ.get("KILN_SERVE_ARGS", ""))
NAMES = [n for n in (sys.argv[10] if len(sys.argv) > 10 else "cnn,bert").split(",") if n]
PROTOCOLS = [p for p in (sys.argv[11] if len(sys.argv) > 11 else "rest,grpc").split(",") if p]
if not PROTOCOLS or set(PROTOCOLS) - {"rest", "grpc"}:
    raise SystemExit(f"protocols: rest, grpc or both, not {sys.argv[11]!r}")
# The client is this tree's build whichever runner is measured (scripts/bench-serving.sh's KILN_RUNNER).
GRPC_LOAD = os.path.join("target", "release", "examples", "grpc_load")
# Which of kiln's variants both servers run (scripts/bench-serving.sh's BENCH_VARIANT): fp32 by default;
# fused for the BERT (attention fused into ONNX Runtime's Attention; the CNN has none).
VARIANT = os.environ.get("BENCH_VARIANT", "fp32")
CLIENTS = tuple(int(n) for n in (sys.argv[12] if len(sys.argv) > 12 else "1,8,64").split(",") if n)
if not CLIENTS or min(CLIENTS) < 1:
    raise SystemExit(f"clients: positive counts, not {sys.argv[12]!r}")
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


DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}


def request_body(feeds):
    return json.dumps({"inputs": [
        {"name": name, "shape": list(a.shape), "datatype": DATATYPES[a.dtype],
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


def grpc_answer(address, name, feeds):
    """Over gRPC: the outputs, raw or typed, whichever was sent."""
    request = dataplane_pb2.ModelInferRequest(model_name=name)
    for input_name, a in feeds.items():
        tensor = request.inputs.add(name=input_name, datatype=DATATYPES[a.dtype])
        tensor.shape.extend(a.shape)
        request.raw_input_contents.append(a.tobytes())
    with grpc.insecure_channel(address) as channel:
        response = dataplane_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    outputs = {}
    for i, o in enumerate(response.outputs):
        if o.datatype != "FP32":
            raise SystemExit(f"{address} answered {o.name} as {o.datatype}; the bench's models give FP32")
        if response.raw_output_contents:
            values = np.frombuffer(response.raw_output_contents[i], dtype="<f4")
        else:
            values = np.array(o.contents.fp32_contents, dtype=np.float32)
        outputs[o.name] = values.astype(np.float64).reshape(o.shape)
    return outputs


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
    port, grpc_port = free_port(), free_port()
    log = os.path.join(out, f"kiln-{name}-{instances}x{threads}.log")
    process = start([runner, "serve", "--model-dir", model_file, "--name", name, "--engine", "ort",
                     "--onnxruntime-lib", library, "--http-listen", f"127.0.0.1:{port}",
                     "--grpc-listen", f"127.0.0.1:{grpc_port}", "--threads", str(threads),
                     "--instances", str(instances),
                     "--max-batch-size", str(MAX_BATCH), "--batch-delay-us", str(DELAY_US), *KILN_EXTRA], log)
    return process, f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", log


def start_mlserver(model_file, name, workers, threads):
    folder = os.path.join(out, f"mlserver-{name}-{workers}x{threads}")
    os.makedirs(folder)
    # MLServer puts the model's folder on the import path of the server and of its workers.
    shutil.copy(os.path.join(HERE, "bench_serving_mlserver.py"), folder)
    port, grpc_port = free_port(), free_port()
    # debug false: MLServer's default (true) writes an access-log line per request, which kiln does not.
    settings = {"debug": False, "host": "127.0.0.1", "http_port": port, "grpc_port": grpc_port,
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
    return process, f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", log


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


STAGES = {"request": "kiln_serve_request_duration_seconds", "queue": "kiln_serve_queue_duration_seconds",
          "compute": "kiln_serve_compute_duration_seconds"}


def kiln_stage_totals(url, protocol):
    """{stage: (sum of seconds, count)} from kiln's /metrics: requests of this protocol from arrival to
    answer, each request's wait in the queue, each engine run (a batch or a lone request)."""
    totals = {stage: [0.0, 0] for stage in STAGES}
    for line in urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode().splitlines():
        for stage, metric in STAGES.items():
            for part, at in (("_sum", 0), ("_count", 1)):
                head = metric + part
                if line.startswith(head) and line[len(head):len(head) + 1] in (" ", "{"):
                    labels = line[len(head):].split(" ")[0]
                    if stage == "request" and f'protocol="{protocol}"' not in labels:
                        continue
                    totals[stage][at] += float(line.rsplit(" ", 1)[1])
    return totals


def kiln_stages(before, after, rps):
    """Milliseconds a request spent in kiln (arrival to answer), waiting in its queue, and a run of the
    engine took, over one measured run; requests answered per run; the rest of 1/throughput is outside kiln's handler
    (the sockets, the client)."""
    mean = {stage: (after[stage][0] - before[stage][0]) * 1e3 / max(after[stage][1] - before[stage][1], 1)
            for stage in STAGES}
    runs = after["compute"][1] - before["compute"][1]
    requests = after["queue"][1] - before["queue"][1]
    return dict(mean, requests_per_run=requests / max(runs, 1), outside=1e3 / rps - mean["request"])


def ort_alone(model_file, feeds, threads, duration=1.0):
    """Milliseconds of ONNX Runtime's run alone (Python, the median of a second of runs, 1 inter-op thread,
    all graph optimizations): what no server can go below at one client."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model_file, options, providers=["CPUExecutionProvider"])
    for _ in range(50):
        session.run(None, feeds)
    took, ends = [], time.monotonic() + duration
    while time.monotonic() < ends:
        started = time.perf_counter()
        session.run(None, feeds)
        took.append(time.perf_counter() - started)
    return sorted(took)[len(took) // 2] * 1e3


def load(protocol, endpoint, name, body_file, clients, duration):
    """One closed-loop run: wrk over REST, grpc_load over gRPC. Each on one thread: it shares the two cores
    with the server, and one thread is far from saturated here."""
    if protocol == "rest":
        command = ["wrk", "-t1", f"-c{clients}", f"-d{duration}s", "--timeout", "10s", "-s",
                   os.path.join(HERE, "bench-serving.lua"), f"{endpoint}/v2/models/{name}/infer"]
    else:
        command = [GRPC_LOAD, f"http://{endpoint}", name, body_file, "--clients", str(clients),
                   "--seconds", str(duration)]
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, BENCH_BODY=body_file))
    line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"{command[0]} failed ({result.returncode}): {result.stdout}{result.stderr}")
    requests, took, p50, p99, non_200, socket_errors = line.split()[1:]
    return {"rps": int(requests) / float(took), "p50": float(p50), "p99": float(p99), "requests": int(requests),
            "errors": int(non_200) + int(socket_errors), "non_200": int(non_200),
            "socket_errors": int(socket_errors)}


def measure_once(process, others, protocol, endpoints, name, body_file, clients):
    endpoint, metrics_url = endpoints[protocol], endpoints.get("metrics")
    load(protocol, endpoint, name, body_file, clients, WARMUP_S)
    stages_before = kiln_stage_totals(metrics_url, protocol) if metrics_url else None
    server_before = group_cpu_seconds(process.pid)
    others_before = sum(group_cpu_seconds(p.pid) for p in others)
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = load(protocol, endpoint, name, body_file, clients, seconds)
    wall = time.monotonic() - started
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["server_cpu"] = (group_cpu_seconds(process.pid) - server_before) / wall
    result["others_cpu"] = (sum(group_cpu_seconds(p.pid) for p in others) - others_before) / wall
    result["client_cpu"] = (client_after.ru_utime + client_after.ru_stime - client_before.ru_utime
                            - client_before.ru_stime) / wall
    if stages_before:
        result["stages"] = kiln_stages(stages_before, kiln_stage_totals(metrics_url, protocol), result["rps"])
    if process.poll() is not None:
        raise SystemExit(f"{endpoint} exited ({process.returncode}) during the {protocol} run at {clients} "
                         "clients")
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


def measure_model(name, alone):
    """{protocol: {server label: {clients: median run}}} for one model, every server resident, runs
    interleaved; ONNX Runtime's run alone before each round of one client, into alone[protocol]."""
    model_file = os.path.join(models, name, f"kiln-{VARIANT}.onnx")
    if not os.path.exists(model_file):
        raise SystemExit(f"{model_file} does not exist: kiln makes no {VARIANT} variant of the {name} model")
    feeds = inputs_for(name)
    body_file = os.path.join(out, f"{name}.json")
    with open(body_file, "wb") as f:
        f.write(request_body(feeds))
    want = reference(model_file, feeds)
    running = []
    try:
        for label, launch in servers_of():
            process, url, grpc_address, log = launch(model_file, name)
            endpoints = {"rest": url, "grpc": grpc_address}
            if label.startswith("kiln"):
                endpoints["metrics"] = url
            running.append((label, process, endpoints))
            wait_ready(url, name, process, log)
            check_same(label, answer(url, name, open(body_file, "rb").read()), want)
            check_same(f"{label} (gRPC)", grpc_answer(grpc_address, name, feeds), want)
        print(f"{name}: {len(running)} servers answer as onnxruntime does over REST and gRPC; measuring",
              file=sys.stderr, flush=True)
        results = {protocol: {label: {} for label, _, _ in running} for protocol in PROTOCOLS}
        for protocol in PROTOCOLS:
            for clients in CLIENTS:
                runs = {label: [] for label, _, _ in running}
                for round_ in range(rounds):
                    if clients == 1:
                        alone.setdefault(protocol, []).append(ort_alone(model_file, feeds, os.cpu_count()))
                    shift = round_ % len(running)
                    for label, process, endpoints in running[shift:] + running[:shift]:
                        others = [p for _, p, _ in running if p is not process]
                        runs[label].append(measure_once(process, others, protocol, endpoints, name,
                                                        body_file, clients))
                for label in runs:
                    results[protocol][label][clients] = median_run(runs[label])
        return results
    finally:
        for _, process, _ in running:
            stop(process)


def best(results, prefix, clients):
    label = max((l for l in results if l.startswith(prefix)), key=lambda l: results[l][clients]["rps"])
    return label, results[label][clients]


def cells_of(results):
    """(model, protocol, clients, {server label: {clients: run}}) in the tables' order."""
    return [(name, protocol, clients, by_server) for name, by_protocol in results.items()
            for protocol, by_server in by_protocol.items() for clients in CLIENTS]


def print_stages(results, alone):
    """Where kiln's time per request goes at its best configuration, and at one client how far any server
    could go: MLServer's time per request over ONNX Runtime's run alone."""
    print()
    print("kiln at its best configuration, ms: 1/throughput; a request's mean time in kiln from arrival to "
          "answer (its /metrics over the median run), of which waiting in the queue and the engine's run (with "
          "the requests each run answered). At one client also the rest of 1/throughput, outside kiln's "
          f"handler (sockets, client); ONNX Runtime's run alone (Python, {os.cpu_count()} intra-op threads, "
          "the median over rounds; each round's in brackets); and the bound: MLServer's ms per request over "
          "that run, the most throughput × any server could show:")
    print()
    print("| model | protocol | clients | config | 1/throughput | in kiln | queue | engine run | requests per "
          "run | outside | ORT alone | bound × |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, protocol, clients, by_server in cells_of(results):
        (kl, k), (_, m) = best(by_server, "kiln", clients), best(by_server, "MLServer", clients)
        st = k.get("stages")
        if st is None:
            continue
        # With several clients, 1/throughput is not any request's time: only one client's time splits.
        ort_ms, bound, outside = "", "", f"{st['outside']:.2f}" if clients == 1 else ""
        if clients == 1 and alone[name].get(protocol):
            runs = sorted(alone[name][protocol])
            median = runs[(len(runs) - 1) // 2]
            ort_ms = f"{median:.2f} ({'/'.join(f'{r:.2f}' for r in alone[name][protocol])})"
            bound = f"{1e3 / m['rps'] / median:.1f}"
        print(f"| {name} | {protocol} | {clients} | {kl[5:]} | {1e3 / k['rps']:.2f} | {st['request']:.2f} | "
              f"{st['queue']:.2f} | {st['compute']:.2f} | {st['requests_per_run']:.1f} | {outside} | "
              f"{ort_ms} | {bound} |")


def main():
    begun = time.monotonic()
    alone = {name: {} for name in NAMES}
    results = {name: measure_model(name, alone[name]) for name in NAMES}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"servers": results, "ort_alone_ms": alone}, f, indent=2)

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    kiln_version = subprocess.run([runner, "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    if os.environ.get("KILN_RUNNER"):
        commit = f"{runner}, not this tree's build"
    print(f"{kiln_version} ({commit}, --engine ort, ONNX Runtime library {os.path.basename(library)}) vs "
          f"MLServer {mlserver.__version__} (onnxruntime {ort.__version__}, numpy {np.__version__}, "
          f"Python {platform.python_version()}, debug false); REST: wrk {wrk_version}, 1 thread, keep-alive; "
          f"gRPC: runner/examples/grpc_load (tonic), 1 thread, a connection per client.")
    print(f"All: the same file (target/bench-variants/{{cnn,bert}}/kiln-{VARIANT}.onnx), ONNX Runtime with 1 inter-op "
          f"thread, sequential, all graph optimizations; dynamic batching up to {MAX_BATCH} rows within "
          f"{DELAY_US} µs (kiln --max-batch-size/--batch-delay-us, MLServer max_batch_size/max_batch_time). "
          f"Configurations PxT: kiln --instances P --threads T; MLServer parallel_workers P (0: the model "
          f"runs in the HTTP server's process), T intra-op threads. Request: one row (CNN 1x3x32x32 FP32; BERT "
          f"{SEQUENCE} tokens, 3 INT64 inputs), as JSON over REST and raw_input_contents over gRPC, answers checked against onnxruntime's. Each cell: the "
          f"median of {rounds} runs of {seconds} s (after {WARMUP_S} s of warm-up each), servers interleaved; "
          f"{os.cpu_count()} CPUs shared with the client.")
    print()
    print("Each at its best configuration for the load:")
    print()
    print("| model | protocol | clients | kiln req/s | p50 ms | p99 ms | config | MLServer req/s | p50 ms | p99 ms "
          "| config | throughput × |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|")
    for name, protocol, clients, by_server in cells_of(results):
        (kl, k), (ml, m) = best(by_server, "kiln", clients), best(by_server, "MLServer", clients)
        print(f"| {name} | {protocol} | {clients} | {k['rps']:.0f} | {k['p50']:.2f} | {k['p99']:.2f} | {kl[5:]} | "
              f"{m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {ml[9:]} | {k['rps'] / m['rps']:.1f} |")
    labels = list(next(iter(next(iter(results.values())).values())))
    print()
    print("Every configuration (req/s, p99 ms; the runs' req/s in brackets; errors after the slash if any):")
    print()
    print("| model | protocol | clients | " + " | ".join(labels) + " |")
    print("|---|---|---:|" + "---|" * len(labels))
    for name, protocol, clients, by_server in cells_of(results):
        cells = []
        for label in labels:
            r = by_server[label][clients]
            errors = f" / {r['errors']} errors" if r["errors"] else ""
            cells.append(f"{r['rps']:.0f}, {r['p99']:.1f} ({'/'.join(map(str, r['runs']))}){errors}")
        print(f"| {name} | {protocol} | {clients} | " + " | ".join(cells) + " |")
    print()
    print("CPU use during each median run, in cores (server = all its processes; the client, wrk or grpc_load, "
          "in brackets):")
    print()
    print("| model | protocol | clients | " + " | ".join(labels) + " |")
    print("|---|---|---:|" + "---:|" * len(labels))
    for name, protocol, clients, by_server in cells_of(results):
        cells = [f"{by_server[l][clients]['server_cpu']:.2f} ({by_server[l][clients]['client_cpu']:.2f})"
                 for l in labels]
        print(f"| {name} | {protocol} | {clients} | " + " | ".join(cells) + " |")
    print_stages(results, alone)
    idle = max(r["others_cpu"] for _, _, _, by_server in cells_of(results) for by_clients in by_server.values()
               for r in by_clients.values())
    print(f"\nThe other resident servers used at most {idle:.2f} cores during any median run.")
    print(f"\n{time.monotonic() - begun:.0f} s in all; logs, settings and results.json in {out}", file=sys.stderr)


main()

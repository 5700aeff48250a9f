"""What the serving tests share: the record of their checks, a `kiln-runner serve` started and waited for,
calls through tritonclient (PyPI) over REST and gRPC, and ONNX Runtime's answers to compare with."""
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request

import numpy as np
import onnxruntime as ort
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

# The throwaway registry of scripts/serving-test.sh (none when only local files are served).
SERVER = os.environ.get("KILN_SERVER")
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kiln(cli, *args):
    return subprocess.run([cli, *args], check=True, capture_output=True, text=True).stdout


def start_runner(runner, reference, work, name, extra, server=SERVER, http_port=None, env=None, preexec_fn=None):
    """`kiln-runner serve` of a registry reference, or of a local ONNX file or folder when `reference` is a path
    (`preexec_fn` runs in the child before the runner starts)."""
    http_port, grpc_port = http_port or free_port(), free_port()
    log = open(os.path.join(work, f"{name}.log"), "w")
    source = ["--model-dir", reference] if os.path.exists(reference) else [reference, "--server", server]
    process = subprocess.Popen(
        [runner, "serve", *source, "--http-listen", f"127.0.0.1:{http_port}",
         "--grpc-listen", f"127.0.0.1:{grpc_port}", "--cache", os.path.join(work, f"{name}-cache"), *extra],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})), preexec_fn=preexec_fn)
    url = f"127.0.0.1:{http_port}"
    for _ in range(600):
        try:
            if httpclient.InferenceServerClient(url).is_server_ready():
                return process, url, f"127.0.0.1:{grpc_port}"
        except Exception:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    print(open(os.path.join(work, f"{name}.log")).read())
    raise SystemExit(f"kiln-runner serve {reference} did not become ready")


def storage_initializer(cli, work, uri, name):
    """KServe's kiln:// storage initializer (deploy/kserve/) run as KServe runs it, into WORK/NAME; its
    manifest sequence state kept apart per call. The folder it filled."""
    dest = os.path.join(work, name)
    env = dict(os.environ, KILN_BIN=cli, KILN_MANIFEST_STATE=os.path.join(work, f"{name}-state.json"))
    subprocess.run(["deploy/kserve/kiln-storage-initializer", uri, dest], check=True, env=env, capture_output=True)
    return dest


def ort_outputs(model_path, feeds):
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def inputs_of(module, feeds, **options):
    """tritonclient's inputs for `feeds` (`module`: tritonclient.http or tritonclient.grpc; `options`:
    set_data_from_numpy's)."""
    made = []
    for name, value in feeds.items():
        i = module.InferInput(name, list(value.shape), np_to_datatype(value))
        i.set_data_from_numpy(value, **options)
        made.append(i)
    return made


def http_infer(url, model, feeds, binary=True, outputs=None):
    client = httpclient.InferenceServerClient(url)
    requested = None if outputs is None else [httpclient.InferRequestedOutput(o, binary_data=binary) for o in outputs]
    return client.infer(model, inputs_of(httpclient, feeds, binary_data=binary), outputs=requested)


def grpc_infer(url, model, feeds, timeout=None, client=None, outputs=None):
    """A call over a new channel, or over `client`'s."""
    client = client or grpcclient.InferenceServerClient(url)
    requested = None if outputs is None else [grpcclient.InferRequestedOutput(o) for o in outputs]
    return client.infer(model, inputs_of(grpcclient, feeds), client_timeout=timeout, outputs=requested)


def np_to_datatype(value):
    from tritonclient.utils import np_to_triton_dtype
    return np_to_triton_dtype(value.dtype)


def agrees(result, expected, tolerance):
    return all(np.allclose(result.as_numpy(name), value, rtol=tolerance, atol=tolerance)
               for name, value in expected.items())


def run_together(url, one, count):
    """Runs one(n) for n < count on threads and returns how many batches the runner ran meanwhile."""
    before = metric(url, "kiln_serve_batch_size_count")
    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return metric(url, "kiln_serve_batch_size_count") - before


def metric(url, name):
    text = urllib.request.urlopen(f"http://{url}/metrics").read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def post_json(address, body, headers=None):
    """POSTs JSON (`body` as it is when it is bytes already); the status and, for an error, its JSON body."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(address, data=data,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        urllib.request.urlopen(request)
        return 200, {}
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())

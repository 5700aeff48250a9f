"""kiln-runner serve against off-the-shelf Open Inference Protocol clients: tritonclient (PyPI), over REST
and gRPC, must get ONNX Runtime's numbers from a model kiln converted and from a real ONNX model of the
corpus; bad inputs get the protocol's errors; the alias moves under load with no failed request and the new
version's numbers afterwards; a tampered manifest is refused while the old version keeps serving; BYTES
(string) tensors go in and out over REST and gRPC, batched; every numeric datatype's extremes, NaN and the
infinities among them, round-trip over REST (JSON and binary) and gRPC on both engines; models of odd but
legal signatures (no inputs, no shapes, an output that is an input, rank 0, a defaulted input, TensorFlow's
names) answer with ONNX Runtime's numbers; the classification extension ranks classes as
ONNX Runtime's scores do, naming them where the model or --labels does; a runner told by the registry's webhook follows the alias without waiting for
its next poll; a request needing more memory than the engine may hold, or an answer larger than the server sends, is
refused and the process serves on; a run past --run-timeout-s, or past every one of its clients' own deadlines,
is stopped and the instance serves on, and a request whose client gave up while it waited is not run; a client too slow to send its body or take its answer is cut off and
what its request held freed; a real model whose batch dimensions are named apart is batched once
its rows prove independent, and a model whose rows change each other is not.

Run by scripts/serving-test.sh (which starts the server, pushes the models and sets the alias):
  python serving_test.py WORK KILN_CLI KILN_RUNNER CORPUS_DIR
with KILN_SERVER, KILN_TOKEN and KILN_ONNXRUNTIME_LIB set.
"""
import base64
import http.client
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import yaml
from safetensors.numpy import load_file
from tritonclient.utils import InferenceServerException

from serving_batching import batched_by_probe, left_unbatched
from serving_classes import classified, labeled, named_by_config
from serving_limits import (chunked_bodies, compressed_bodies, decoded_in_flight, engine_memory_given_back, engine_memory_limit,
                            in_flight_limit, memory_wait, outer_sum, response_limit, strings_in_flight)
from serving_connections import connection_age, connection_limits
from serving_datatypes import every_datatype
from serving_deadlines import deadlines
from serving_signatures import odd_signatures
from serving_pace import client_pace, waiting_calls
from serving_client import (SERVER, agrees, check, failures, free_port, grpc_infer, http_infer, kiln,
                            metric, ort_outputs, post_json, run_together, start_runner, storage_initializer)


class Proxy(http.server.ThreadingHTTPServer):
    """Forwards the runner's requests to the kiln server; with `tamper` set, it alters the signed payload
    of alias manifests on the way (a compromised mirror or a man in the middle)."""
    daemon_threads = True
    tamper = False
    tampered = 0
    down = False


class Forward(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def forward(self):
        if self.server.down:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = urllib.parse.urlparse(SERVER)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        length = int(self.headers.get("Content-Length") or 0)
        upstream.request(self.command, self.path, body=self.rfile.read(length) if length else None,
                         headers=headers)
        response = upstream.getresponse()
        body = response.read()
        headers = [(k, v) for k, v in response.getheaders()
                   if k.lower() not in ("transfer-encoding", "connection", "content-length")]
        if self.server.tamper and "/aliases/" in self.path and self.path.endswith("/manifest") and response.status == 200:
            header, payload, signature = body.decode().strip().split(".")
            document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            for variant in document["variants"]:
                variant["sha256"] = "sha256:" + "0" * 64
            payload = base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")
            body = f"{header}.{payload}.{signature}".encode()
            headers = [(k, v) for k, v in headers if k.lower() != "etag"]
            self.server.tampered += 1
        self.send_response(response.status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_DELETE = forward


def bert_feeds(rows, length=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"input_ids": rng.integers(0, 1000, (rows, length), dtype=np.int64),
            "attention_mask": np.ones((rows, length), dtype=np.int64),
            "token_type_ids": np.zeros((rows, length), dtype=np.int64)}


def bad_inputs(url, grpc_url):
    good = bert_feeds(1)

    def post(body, model="bert"):
        return post_json(f"http://{url}/v2/models/{model}/infer", body)

    ids = {"name": "input_ids", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]}
    types = {"name": "token_type_ids", "shape": [1, 2], "datatype": "INT64", "data": [0, 0]}
    mask = {"name": "attention_mask", "shape": [1, 2], "datatype": "INT64", "data": [1, 1]}
    status, body = post({"inputs": [ids, types, dict(mask, datatype="FP32")]})
    check(status == 400 and "attention_mask" in body["error"] and "INT64" in body["error"],
          f"REST: a wrong datatype is 400 naming the input ({body})")
    status, body = post({"inputs": [ids, types]})
    check(status == 400 and "attention_mask" in body["error"] and "missing" in body["error"],
          f"REST: a missing input is 400 naming it ({body})")
    status, body = post({"inputs": [ids, types, dict(mask, shape=[2], data=[1, 1])]})
    check(status == 400 and "shape" in body["error"], f"REST: a wrong shape is 400 ({body})")
    status, body = post({"inputs": [ids, types, dict(mask, data=[1])]})
    check(status == 400 and "2 elements" in body["error"], f"REST: data that does not fill the shape is 400 ({body})")
    status, body = post({"inputs": [ids, types, mask]}, model="nope")
    check(status == 404 and "nope" in body["error"], f"REST: an unknown model is 404 ({body})")
    status, body = post({"inputs": "x"})
    check(status == 400 and "error" in body, f"REST: a body that is not an inference request is 400 ({body})")
    status, body = post({"inputs": [ids, types, mask], "outputs": [{"name": "nope"}]})
    check(status == 400 and "nope" in body["error"], f"REST: an unknown output is 400 ({body})")
    try:
        client = grpcclient.InferenceServerClient(grpc_url)
        wrong = grpcclient.InferInput("input_ids", [1, 8], "FP32")
        wrong.set_data_from_numpy(good["input_ids"].astype(np.float32))
        rest = []
        for name in ("attention_mask", "token_type_ids"):
            rest.append(grpcclient.InferInput(name, [1, 8], "INT64"))
            rest[-1].set_data_from_numpy(good[name])
        client.infer("bert", [wrong, *rest])
        check(False, "gRPC: a wrong datatype is refused")
    except InferenceServerException as e:
        check("INVALID_ARGUMENT" in str(e.status()) and "input_ids" in e.message(),
              f"gRPC: a wrong datatype is INVALID_ARGUMENT naming the input ({e.status()}: {e.message()})")


def move_under_load(cli, url, grpc_url, expected_v2):
    """8 clients (REST and gRPC) call in a loop while the alias moves to version 2; none may fail."""
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0, "v1": 0, "v2": 0}
    errors = []
    lock = threading.Lock()

    def client(n):
        feeds = bert_feeds(1 + n % 3, seed=100 + n)
        while not stop.is_set():
            try:
                result = http_infer(url, "bert", feeds) if n % 2 else grpc_infer(grpc_url, "bert", feeds)
                version = result.get_response()["model_version"] if n % 2 else result.get_response().model_version
                with lock:
                    counts["ok"] += 1
                    counts["v" + version] = counts.get("v" + version, 0) + 1
            except Exception as e:  # every failure counts
                with lock:
                    counts["failed"] += 1
                    errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    kiln(cli, "alias", "set", "acme/bert", "production", "2")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and counts["v2"] < 200:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    check(counts["failed"] == 0 and counts["v1"] > 0 and counts["v2"] >= 200,
          f"the alias moved under load: {counts['ok']} requests answered ({counts['v1']} by version 1, "
          f"{counts['v2']} by version 2), {counts['failed']} failed {errors[:3]}")
    feeds = bert_feeds(2, seed=7)
    result = http_infer(url, "bert", feeds)
    check(result.get_response()["model_version"] == "2" and agrees(result, ort_outputs(expected_v2, feeds), 1e-4),
          "after the move, REST answers with version 2's numbers (ONNX Runtime's)")


def tampered(cli, proxy, url, work):
    proxy.tamper = True
    kiln(cli, "alias", "set", "acme/bert", "production", "1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and metric(url, "kiln_serve_manifests_refused_total") < 2:
        time.sleep(0.2)
    result = http_infer(url, "bert", bert_feeds(1))
    log = open(os.path.join(work, "bert.log")).read()
    check(proxy.tampered >= 2 and metric(url, "kiln_serve_manifests_refused_total") >= 2
          and "signature does not match" in log and result.get_response()["model_version"] == "2",
          "a tampered manifest is refused and logged, and version 2 keeps serving")
    proxy.tamper = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and http_infer(url, "bert", bert_feeds(1)).get_response()["model_version"] != "1":
        time.sleep(0.2)
    check(http_infer(url, "bert", bert_feeds(1)).get_response()["model_version"] == "1",
          "once the manifest verifies again, the alias's version (1) is served")


def expiry(runner, proxy, work, follower_url):
    """The server signs manifests for a short time here (KILN_MANIFEST_VALIDITY_SECS in serving-test.sh)
    and re-signs them before they expire. A fixed version served with --when-expired refuse keeps serving on the re-signed manifests;
    with the registry unreachable it stops once its manifest expires (not ready, 503), while the alias's
    follower (--when-expired keep) keeps answering; when the registry is back, it serves again."""
    process, url, grpc_url = start_runner(
        runner, "acme/bert:1", work, "bert-refuse", ["--engine", "ort", "--poll-seconds", "0.3", "--when-expired", "refuse"],
        server=f"http://127.0.0.1:{proxy.server_address[1]}")
    client = httpclient.InferenceServerClient(url)

    def answers(address):
        try:
            http_infer(address, "bert", bert_feeds(1))
            return True
        except InferenceServerException:
            return False
    try:
        first_expiry = metric(url, "kiln_serve_manifest_expiry_timestamp_seconds")
        time.sleep(max(0.0, first_expiry - time.time()) + 1)
        check(answers(url) and client.is_server_ready()
              and metric(url, "kiln_serve_manifest_expiry_timestamp_seconds") > time.time(),
              "a fixed version follows its re-signed manifests: still serving after the first one expired")
        proxy.down = True
        # A poll already past the proxy may still bring a fresh manifest: let it land before reading.
        time.sleep(1)
        expires = metric(url, "kiln_serve_manifest_expiry_timestamp_seconds")
        time.sleep(max(0.0, expires - time.time()) + 1)
        refused = None
        try:
            http_infer(url, "bert", bert_feeds(1))
        except InferenceServerException as e:
            refused = str(e)
        check(refused is not None and "expired" in refused and "--when-expired refuse" in refused
              and not client.is_server_ready() and not grpcclient.InferenceServerClient(grpc_url).is_server_ready(),
              f"registry unreachable and the manifest expired: --when-expired refuse is not ready and answers 503 ({refused})")
        check(answers(follower_url), "meanwhile the alias's follower (--when-expired keep) keeps answering")
        proxy.down = False
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not answers(url):
            time.sleep(0.2)
        check(answers(url) and client.is_server_ready(), "the registry back, a fresh manifest verifies and it serves again")
    finally:
        proxy.down = False
        process.terminate()
        process.wait(30)


def bert(work, cli, runner):
    pulled = {}
    for version in ("1", "2"):
        folder = os.path.join(work, f"pulled-{version}")
        kiln(cli, "pull", f"acme/bert:{version}", "--variant", "fp32", "-o", folder)
        pulled[version] = os.path.join(folder, next(f for f in os.listdir(folder) if f.endswith(".onnx")))
    proxy = Proxy(("127.0.0.1", 0), Forward)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    runner_token = json.loads(kiln(cli, "token", "create", "serving-test", "--scope", "runner", "--json"))["token"]
    process, url, grpc_url = start_runner(
        runner, "acme/bert@production", work, "bert",
        ["--engine", "ort", "--poll-seconds", "0.3", "--batch-delay-us", "5000", "--max-batch-size", "16",
         "--runner-token", runner_token, "--instance-name", "serving-test-1"],
        server=f"http://127.0.0.1:{proxy.server_address[1]}")
    try:
        client = httpclient.InferenceServerClient(url)
        metadata = client.get_model_metadata("bert")
        check(metadata["versions"] == ["1"] and {i["name"]: i["datatype"] for i in metadata["inputs"]}
              == {"input_ids": "INT64", "attention_mask": "INT64", "token_type_ids": "INT64"}, f"REST model metadata ({metadata})")
        grpc_metadata = grpcclient.InferenceServerClient(grpc_url).get_model_metadata("bert", as_json=True)
        check(grpc_metadata["versions"] == ["1"], f"gRPC model metadata ({grpc_metadata})")
        check(client.is_model_ready("bert") and grpcclient.InferenceServerClient(grpc_url).is_model_ready("bert"),
              "the model is ready over REST and gRPC")
        feeds = bert_feeds(3)
        expected = ort_outputs(pulled["1"], feeds)
        check(agrees(http_infer(url, "bert", feeds), expected, 1e-4), "REST (binary tensors) gives ONNX Runtime's numbers")
        check(agrees(http_infer(url, "bert", feeds, binary=False, outputs=list(expected)), expected, 1e-4),
              "REST (JSON tensors) gives ONNX Runtime's numbers")
        check(agrees(grpc_infer(grpc_url, "bert", feeds), expected, 1e-4), "gRPC gives ONNX Runtime's numbers")
        classified(url, grpc_url, "bert", feeds, expected)
        # 32 clients at once, each with its own rows: batched together, each gets its own answer.
        results = [None] * 32
        together = threading.Barrier(32)

        def one(n):
            f = bert_feeds(1 + n % 2, seed=n)
            together.wait()
            results[n] = agrees(http_infer(url, "bert", f), ort_outputs(pulled["1"], f), 1e-4)
        batches = run_together(url, one, 32)
        check(all(results) and batches < 32,
              f"32 concurrent requests are batched (in {batches:.0f} batches) and each gets its own rows")
        shown = kiln(cli, "show", "acme/bert")
        check("Served at" in shown and "serving-test-1" in shown and f"http://{url}" in shown
              and f"grpc://{grpc_url}" in shown and "@production" in shown,
              f"kiln show lists where the alias is served:\n{shown}")
        bad_inputs(url, grpc_url)
        move_under_load(cli, url, grpc_url, pulled["2"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "2 (manifest" not in kiln(cli, "show", "acme/bert:2"):
            time.sleep(0.2)
        check("serving-test-1" in kiln(cli, "show", "acme/bert:2"),
              "after the move, kiln show of version 2 lists the process serving it")
        tampered(cli, proxy, url, work)
        expiry(runner, proxy, work, url)
        text = urllib.request.urlopen(f"http://{url}/metrics").read().decode()
        for name in ("kiln_serve_requests_total", "kiln_serve_request_duration_seconds_bucket",
                     "kiln_serve_queue_duration_seconds_bucket", "kiln_serve_compute_duration_seconds_bucket",
                     "kiln_serve_queue_depth", "kiln_serve_model_info", "kiln_serve_version_switches_total"):
            check(name in text, f"/metrics has {name}")
        check(all(f'kiln_serve_compute_duration_seconds_count{{version="{v}"}}' in text for v in ("1", "2")),
              "/metrics counts the engine's runs of version 1 and of version 2 apart (the alias moved)")
        taken = {(protocol, v): metric(url, f'kiln_serve_requests_total{{protocol="{protocol}",outcome="ok",version="{v}"}}')
                 for protocol in ("rest", "grpc") for v in ("1", "2")}
        check(all(count > 0 for count in taken.values()),
              f"/metrics counts the requests each version answered, over REST and gRPC ({taken})")
    finally:
        process.terminate()
        process.wait(30)
        proxy.shutdown()
    check("serving-test-1" not in kiln(cli, "show", "acme/bert"),
          "a process that stops withdraws its report: kiln show no longer lists it")


def fused_variant(work, cli, runner):
    """The BERT's fused variant (attention in ONNX Runtime's contrib Attention) served by version on both
    engines gives what ONNX Runtime computes from the fp32 variant, on rows with padding."""
    pulled = os.path.join(work, "pulled-1")
    fp32 = os.path.join(pulled, next(f for f in os.listdir(pulled) if f.endswith(".onnx")))
    feeds = bert_feeds(3, length=9, seed=7)
    feeds["attention_mask"][1, 5:] = 0
    feeds["attention_mask"][2, 1:] = 0
    expected = ort_outputs(fp32, feeds)
    for engine in ("ort", "kiln"):
        process, url, grpc_url = start_runner(runner, "acme/bert:1", work, f"fused-{engine}",
                                              ["--variant", "fused", "--engine", engine])
        try:
            check(agrees(http_infer(url, "bert", feeds), expected, 1e-4)
                  and agrees(grpc_infer(grpc_url, "bert", feeds), expected, 1e-4),
                  f"the fused variant served on {engine} gives ONNX Runtime's numbers of the fp32 variant "
                  "(padded rows), over REST and gRPC")
        finally:
            process.terminate()
            process.wait(30)


def real_model(work, cli, runner, corpus, key):
    listing = json.load(open(os.path.join(corpus, "corpus.json")))
    model = next(m for m in listing["models"] if m["id"] == key)
    feeds = load_file(os.path.join(corpus, model["inputs"]))
    expected = ort_outputs(os.path.join(corpus, model["model"]), feeds)
    process, url, grpc_url = start_runner(runner, f"acme/{key}:1", work, key, ["--engine", "kiln", "--name", "cnn"])
    try:
        check(agrees(http_infer(url, "cnn", feeds), expected, 1e-3),
              f"{key} (a real ONNX model) on kiln's engine over REST gives ONNX Runtime's numbers")
        check(agrees(grpc_infer(grpc_url, "cnn", feeds), expected, 1e-3),
              f"{key} over gRPC gives ONNX Runtime's numbers")
    finally:
        process.terminate()
        process.wait(30)


def strings(work, runner, model_path):
    """BYTES tensors: a model with a string input and a string output (ai.onnx.ml LabelEncoders), pushed
    to the registry and served by alias on ONNX Runtime."""
    words = ["apple", "héllo wörld", "zzz", "", "cherry"]
    text = np.array(words, dtype=object)
    expected = ort_outputs(model_path, {"text": text})
    process, url, grpc_url = start_runner(
        runner, "acme/words@production", work, "strings",
        ["--engine", "ort", "--batch-delay-us", "20000", "--max-batch-size", "16"])

    def same(result, want=expected):
        labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").tolist()]
        return (result.as_numpy("ids").tolist() == want["ids"].tolist()
                and labels == want["label"].tolist())

    try:
        metadata = httpclient.InferenceServerClient(url).get_model_metadata("words")
        check([i["datatype"] for i in metadata["inputs"]] == ["BYTES"]
              and {o["name"]: o["datatype"] for o in metadata["outputs"]} == {"ids": "INT64", "label": "BYTES"},
              f"a string model's metadata names BYTES ({metadata})")
        check(same(http_infer(url, "words", {"text": text})), "BYTES over REST (binary tensors) gives ONNX Runtime's answer")
        check(same(http_infer(url, "words", {"text": text}, binary=False, outputs=["ids", "label"])),
              "BYTES over REST (JSON tensors) gives ONNX Runtime's answer")
        check(same(grpc_infer(grpc_url, "words", {"text": text})), "BYTES over gRPC gives ONNX Runtime's answer")
        results = [None] * 16
        together = threading.Barrier(16)

        def one(n):
            mine = np.array([words[n % len(words)]] * (1 + n % 3), dtype=object)
            want = ort_outputs(model_path, {"text": mine})
            # Client and tensor made before the barrier, so that the requests arrive within the batching
            # window: made after it, they spread over more than 5 ms on a slow host and ran alone (16
            # batches, once in about forty runs).
            client = httpclient.InferenceServerClient(url)
            tensor = httpclient.InferInput("text", [len(mine)], "BYTES")
            tensor.set_data_from_numpy(mine)
            together.wait()
            results[n] = same(client.infer("words", [tensor]), want)
        batches = run_together(url, one, 16)
        check(all(results) and batches < 16,
              f"16 concurrent string requests are batched (in {batches:.0f} batches) and each gets its own rows")
        status, body = post_json(f"http://{url}/v2/models/words/infer", {"inputs": [
            {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a\u0000b"]}]})
        check(status == 400 and "NUL" in body["error"], f"REST: a string with a NUL character is 400 ({body})")
        status, body = post_json(f"http://{url}/v2/models/words/infer", {"inputs": [
            {"name": "text", "datatype": "BYTES", "shape": [1], "data": [7]}]})
        check(status == 400 and "not a string" in body["error"], f"REST: a number for a BYTES input is 400 ({body})")
    finally:
        process.terminate()
        process.wait(30)
    refused = subprocess.run([runner, "serve", "--model-dir", model_path, "--engine", "kiln",
                              "--http-listen", f"127.0.0.1:{free_port()}", "--grpc-listen", f"127.0.0.1:{free_port()}"],
                             capture_output=True, text=True, timeout=60)
    check(refused.returncode != 0 and "--engine ort" in refused.stderr,
          f"kiln's evaluator, which has no string tensors, refuses the string model at start ({refused.stderr.strip()})")


def told_by_webhook(work, cli, runner):
    """A runner that polls once an hour, subscribed to the model's alias.moved events: it switches within
    seconds of a move, because the registry's signed delivery (Standard Webhooks) makes it poll at once; a
    delivery signed with another secret is 401 and polls nothing."""
    port = free_port()
    created = json.loads(kiln(cli, "webhook", "add", "acme/bert", f"http://127.0.0.1:{port}/kiln/webhook",
                              "--events", "alias.moved", "--json"))
    process, url, _ = start_runner(
        runner, "acme/bert@production", work, "bert-webhook", ["--engine", "ort", "--poll-seconds", "3600"],
        http_port=port, env={"KILN_SERVE_WEBHOOK_SECRET": created["secret"]})

    def version():
        return http_infer(url, "bert", bert_feeds(1)).get_response()["model_version"]
    try:
        before = version()
        after = "2" if before == "1" else "1"
        moved = time.monotonic()
        kiln(cli, "alias", "set", "acme/bert", "production", after)
        while time.monotonic() < moved + 20 and version() != after:
            time.sleep(0.1)
        took = time.monotonic() - moved
        check(version() == after and metric(url, 'kiln_serve_webhook_deliveries_total{outcome="poll_now"}') >= 1,
              f"told by the registry's webhook, a runner polling hourly followed the alias from {before} to {after} "
              f"in {took:.1f} s")
        status, answer = post_json(
            f"http://{url}/kiln/webhook", {"type": "alias.moved", "data": {"namespace": "acme", "model": "bert"}},
            headers={"webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())),
                     "webhook-signature": "v1," + base64.b64encode(b"\0" * 32).decode()})
        check(status == 401 and "does not verify" in answer.get("error", "")
              and metric(url, 'kiln_serve_webhook_deliveries_total{outcome="refused"}') == 1,
              f"a delivery signed with another secret is 401 ({answer})")
    finally:
        process.terminate()
        process.wait(30)
        kiln(cli, "webhook", "rm", "acme", created["subscription"]["id"])


def kserve_runtime(work, cli, runner):
    """deploy/kserve/serving-runtime.yaml's container args, run as KServe would after kiln's storage
    initializer filled /mnt/models from a kiln:// URI."""
    models = storage_initializer(cli, work, "kiln://acme/bert@production#fp32", "mnt-models")
    documents = list(yaml.safe_load_all(open("deploy/kserve/serving-runtime.yaml")))
    runtime = next(d for d in documents if d["kind"] == "ClusterServingRuntime")
    container = runtime["spec"]["containers"][0]
    http_port, grpc_port = free_port(), free_port()
    fill = {"/mnt/models": models, "{{.Name}}": "encoder", "0.0.0.0:8080": f"127.0.0.1:{http_port}",
            "0.0.0.0:8081": f"127.0.0.1:{grpc_port}"}
    args = [fill.get(a, a) for a in container["args"]]
    log = open(os.path.join(work, "kserve-runtime.log"), "w")
    process = subprocess.Popen([runner, *args], stdout=log, stderr=subprocess.STDOUT)
    url, grpc_url = f"127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}"
    try:
        for _ in range(300):
            try:
                if httpclient.InferenceServerClient(url).is_model_ready("encoder"):
                    break
            except Exception:
                time.sleep(0.1)
        model = next(os.path.join(root, f) for root, _, files in os.walk(models) for f in files if f.endswith(".onnx"))
        feeds = bert_feeds(2, seed=11)
        expected = ort_outputs(model, feeds)
        check(agrees(http_infer(url, "encoder", feeds), expected, 1e-4)
              and agrees(grpc_infer(grpc_url, "encoder", feeds), expected, 1e-4),
              "the KServe runtime's args serve what the kiln:// storage initializer pulled (REST and gRPC)")
    finally:
        process.terminate()
        process.wait(30)


def main():
    work, cli, runner, corpus, real = sys.argv[1:6]
    bert(work, cli, runner)
    fused_variant(work, cli, runner)
    kserve_runtime(work, cli, runner)
    told_by_webhook(work, cli, runner)
    real_model(work, cli, runner, corpus, real)
    every_datatype(work, runner)
    odd_signatures(work, runner)
    strings(work, runner, os.path.join(work, "words", "model.onnx"))
    strings_in_flight(work, runner, os.path.join(work, "words", "model.onnx"))
    labeled(work, runner, os.path.join(work, "iris", "model.onnx"))
    named_by_config(work, cli, runner, os.path.join(work, "sentiment"))
    engine_memory_limit(work, runner, os.path.join(work, "sentiment"))
    outer_sum(work, runner)
    deadlines(work, runner)
    pulled = os.path.join(work, "pulled-1")
    engine_memory_given_back(work, runner, os.path.join(pulled, next(f for f in os.listdir(pulled) if f.endswith(".onnx"))))
    response_limit(work, runner, os.path.join(work, "sentiment"))
    in_flight_limit(work, runner, os.path.join(work, "sentiment"))
    memory_wait(work, runner, os.path.join(work, "sentiment"))
    decoded_in_flight(work, runner, os.path.join(work, "sentiment"))
    chunked_bodies(work, runner, os.path.join(work, "sentiment"))
    compressed_bodies(work, runner, os.path.join(work, "sentiment"))
    client_pace(work, runner, os.path.join(work, "sentiment"))
    waiting_calls(work, runner, os.path.join(work, "sentiment"))
    connection_limits(work, runner, os.path.join(work, "sentiment"))
    connection_age(work, runner, os.path.join(work, "sentiment"))
    batched_by_probe(work, runner, corpus)
    left_unbatched(work, runner, os.path.join(work, "centered", "model.onnx"))
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all serving checks passed")


if __name__ == "__main__":
    main()

"""What requests cannot do to a real `kiln-runner serve`: one needing more memory than the engine may hold,
or an answer larger than the server sends; many holding more memory together than the server lets them.
Without limits ONNX Runtime takes what a request's shapes ask for, and the kernel kills the process (and
every request in it) when that is more than the host has: a 60 MB request asked a corpus model for 24 GB;
and the bodies of concurrent requests were held without bound (twelve of 60 MiB took the runner to 880 MB).
With `--max-engine-memory-mib` and `--max-response-mib`, such a request is refused with the protocol's
error naming the flag, over REST and gRPC, and the same process answers the next request with ONNX
Runtime's numbers; with `--max-in-flight-mib`, a body that does not fit beside the others waits for them,
then is refused as unavailable, and concurrent requests all pass through it."""
import gzip
import json
import os
import re
import socket
import threading
import time
import urllib.request
import zlib

import grpc
import numpy as np
import onnx
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from onnx import TensorProto, helper
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from serving_client import (agrees, check, grpc_infer, http_infer, inputs_of, metric, ort_outputs, post_json,
                            start_runner)


FEW = np.array([[0.5, -1.0, 2.0, 0.1], [-2.0, 1.0, 0.3, 0.7], [1.5, 1.5, -0.5, -1.0]], dtype=np.float32)


def refusals(url, grpc_url, model_name, feeds):
    """What REST and gRPC say to `feeds`: each protocol's name and its error's text ("answered" if none)."""
    for protocol, infer, address in [("REST", http_infer, url), ("gRPC", grpc_infer, grpc_url)]:
        try:
            infer(address, model_name, feeds)
            yield protocol, "answered"
        except InferenceServerException as e:
            yield protocol, str(e)


def refused_then_served(url, grpc_url, model, many, flag, what):
    """`many` refused over REST and gRPC naming `flag`; then three rows answered as ONNX Runtime does."""
    for protocol, refused in refusals(url, grpc_url, "sentiment", many):
        check(flag in refused and "send fewer rows" in refused,
              f"over {protocol}, {what} is refused naming {flag} ({refused[:240]})")
    expected = ort_outputs(model, {"features": FEW})
    check(agrees(http_infer(url, "sentiment", {"features": FEW}), expected, 1e-5)
          and agrees(grpc_infer(grpc_url, "sentiment", {"features": FEW}), expected, 1e-5)
          and httpclient.InferenceServerClient(url).is_server_ready()
          and grpcclient.InferenceServerClient(grpc_url).is_server_ready(),
          f"after refusing {what}, the same process is ready and answers with ONNX Runtime's numbers")


def engine_memory_limit(work, runner, folder):
    """The sentiment classifier (4 features in, 2 logits out a row) under a 4 MiB limit, on each engine: a
    million rows (16 MB in, 8 MB of logits out, which the engine allocates) refused; three rows answered
    after. kiln's evaluator counts its run's tensors (its input's copy first) against the limit; before it
    did, the same request was answered."""
    model = os.path.join(folder, "model.onnx")
    for engine in ("ort", "kiln"):
        process, url, grpc_url = start_runner(runner, model, work, f"memory-limit-{engine}",
                                              ["--engine", engine, "--name", "sentiment", "--max-engine-memory-mib", "4"])
        try:
            refused_then_served(url, grpc_url, model, {"features": np.ones((1_000_000, 4), dtype=np.float32)},
                                "--max-engine-memory-mib",
                                f"a request needing more than the engine's memory limit ({engine})")
        finally:
            process.terminate()
            process.wait(30)


def outer_sum(work, runner):
    """A model adding a column to a row (`[n, 1] + [1, m]`), on each engine under a 1 GiB engine limit: two
    vectors of 100,000 floats (800 kB) ask for a 40 GB sum. ONNX Runtime refused it at its arena's limit;
    kiln's evaluator allocated it whole and the refused allocation aborted the process. It now works out the
    result of a broadcast, a matrix product, a gather or a shape read from values before the node runs, and
    refuses a request whose result would pass the limit; both engines then answer a small request."""
    folder = os.path.join(work, "outer-sum")
    os.makedirs(folder, exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("Add", ["column", "row"], ["sum"])], "outer_sum",
        [helper.make_tensor_value_info("column", TensorProto.FLOAT, ["n", 1]),
         helper.make_tensor_value_info("row", TensorProto.FLOAT, [1, "m"])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["n", "m"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = os.path.join(folder, "model.onnx")
    onnx.save(model, path)
    huge = {"column": np.ones((100_000, 1), dtype=np.float32), "row": np.ones((1, 100_000), dtype=np.float32)}
    small = {"column": np.arange(3, dtype=np.float32).reshape(3, 1),
             "row": np.arange(4, dtype=np.float32).reshape(1, 4)}
    expected = {"sum": small["column"] + small["row"]}
    for engine in ("ort", "kiln"):
        process, url, grpc_url = start_runner(runner, path, work, f"outer-sum-{engine}",
                                              ["--engine", engine, "--name", "outer_sum",
                                               "--max-engine-memory-mib", "1024"])
        try:
            for protocol, refused in refusals(url, grpc_url, "outer_sum", huge):
                check("--max-engine-memory-mib" in refused,
                      f"over {protocol}, a request whose sum would hold 40 GB is refused naming "
                      f"--max-engine-memory-mib ({engine}: {refused[:200]})")
            check(process.poll() is None and agrees(http_infer(url, "outer_sum", small), expected, 0)
                  and agrees(grpc_infer(grpc_url, "outer_sum", small), expected, 0),
                  f"the same process then answers a small request with its sum ({engine})")
        finally:
            process.terminate()
            process.wait(30)


def response_limit(work, runner, folder):
    """The same classifier answering at most 1 MiB, on either engine: 200,000 rows (1.6 MB of logits)
    refused; three rows answered after."""
    model = os.path.join(folder, "model.onnx")
    for engine in ["ort", "kiln"]:
        process, url, grpc_url = start_runner(runner, model, work, f"response-limit-{engine}",
                                              ["--engine", engine, "--name", "sentiment", "--max-response-mib", "1"])
        try:
            refused_then_served(url, grpc_url, model, {"features": np.ones((200_000, 4), dtype=np.float32)},
                                "--max-response-mib", f"an answer over the response limit (engine {engine})")
        finally:
            process.terminate()
            process.wait(30)


def raw_http(url, rows, rcvbuf=None):
    """An open socket (receiving into `rcvbuf` bytes of kernel buffer, if given) that has sent the head of a
    binary-data request of `rows` rows, and the body it has not sent yet."""
    data = np.ones((rows, 4), dtype=np.float32).tobytes()
    header = json.dumps({"inputs": [{"name": "features", "shape": [rows, 4], "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(data)}}]}).encode()
    body = header + data
    host, port = url.split(":")
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(60)
    sock.connect((host, int(port)))
    sock.sendall(b"POST /v2/models/sentiment/infer HTTP/1.1\r\nHost: " + url.encode()
                 + f"\r\nContent-Length: {len(body)}\r\nInference-Header-Content-Length: {len(header)}"
                   "\r\nConnection: close\r\n\r\n".encode())
    return sock, body


def slow_upload(url, feeds_rows):
    """A client that announces a binary-data request of `feeds_rows` rows and sends only its first bytes:
    the open socket and the rest of the body, to send when asked."""
    sock, body = raw_http(url, feeds_rows)
    sock.sendall(body[:65536])
    return sock, body[65536:]


def finish_upload(sock, rest):
    """Sends the rest of a slow upload (`slow_upload`) and reads its whole answer."""
    sock.sendall(rest)
    answer = b""
    while chunk := sock.recv(1 << 20):
        answer += chunk
    sock.close()
    return answer


def in_flight_bytes(url):
    text = urllib.request.urlopen(f"http://{url}/metrics", timeout=10).read().decode()
    found = re.search(r"^kiln_serve_in_flight_bytes (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def in_flight_limit(work, runner, folder):
    """The classifier with 8 MiB for the requests in flight together: a 9.6 MB body refused at once; a
    4 MiB body waiting behind a client that announced 5 MiB and sent 64 KiB, refused as unavailable after
    the wait (REST and gRPC), then answered once that client has finished; 16 concurrent 1.5 MiB requests
    (12 over gRPC, which tritonclient puts on one connection, and 4 over REST) all answered with ONNX
    Runtime's numbers, some having waited for memory: each body is admitted whole, so that waiting ones
    hold no part of the limit, and a gRPC connection's window is as large as its calls' together, so that
    calls waiting with unread frames do not hold the window the admitted ones need; and nothing held after."""
    model = os.path.join(folder, "model.onnx")
    process, url, grpc_url = start_runner(runner, model, work, "in-flight-limit",
                                          ["--engine", "ort", "--name", "sentiment", "--max-in-flight-mib", "8"])
    try:
        refused_then_served(url, grpc_url, model, {"features": np.ones((600_000, 4), dtype=np.float32)},
                            "--max-in-flight-mib", "a body larger than the requests' whole memory limit")
        sock, rest = slow_upload(url, 5 << 16)
        waiting = {"features": np.ones((1 << 18, 4), dtype=np.float32)}
        refusals = {}

        def waits(protocol, infer, address):
            started = time.monotonic()
            try:
                infer(address, "sentiment", waiting)
                refusals[protocol] = ("answered", time.monotonic() - started)
            except InferenceServerException as e:
                refusals[protocol] = (str(e), time.monotonic() - started)

        threads = [threading.Thread(target=waits, args=a)
                   for a in [("REST", http_infer, url), ("gRPC", grpc_infer, grpc_url)]]
        [t.start() for t in threads]
        [t.join() for t in threads]
        for protocol, (refused, took) in sorted(refusals.items()):
            check(("503" in refused or "UNAVAILABLE" in refused) and "--max-in-flight-mib" in refused
                  and "try again" in refused and took >= 4.5,
                  f"over {protocol}, a body that does not fit beside a slow client's waits {took:.1f} s, then is "
                  f"refused as unavailable naming the flag ({refused[:200]})")
        answer = finish_upload(sock, rest)
        check(answer.startswith(b"HTTP/1.1 200"), f"the slow client's request is answered once sent ({answer[:80]!r})")
        expected = ort_outputs(model, waiting)
        check(agrees(http_infer(url, "sentiment", waiting), expected, 1e-5),
              "the refused body is answered with ONNX Runtime's numbers once the memory is free")
        rows = [np.full((3 << 15, 4), n / 7, dtype=np.float32) for n in range(16)]
        results = [None] * 16
        waits_before = metric(url, "kiln_serve_memory_waits_total")

        def one(n):
            infer, address = (grpc_infer, grpc_url) if n % 4 else (http_infer, url)
            try:
                results[n] = agrees(infer(address, "sentiment", {"features": rows[n]}),
                                    ort_outputs(model, {"features": rows[n]}), 1e-5)
            except InferenceServerException as e:
                results[n] = str(e)[:200]

        threads = [threading.Thread(target=one, args=(n,)) for n in range(16)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        waits = metric(url, "kiln_serve_memory_waits_total") - waits_before
        check(all(r is True for r in results) and waits > 0,
              f"16 concurrent 1.5 MiB requests (12 over gRPC, 4 over REST) under an 8 MiB limit are all answered with ONNX "
              f"Runtime's numbers, {waits:.0f} of them having waited their turn for memory "
              f"({[r for r in results if r is not True][:2]})")
        held = in_flight_bytes(url)
        check(held == 0, f"after the answers, the requests in flight hold nothing (kiln_serve_in_flight_bytes {held})")
    finally:
        process.terminate()
        process.wait(30)


def memory_wait(work, runner, folder):
    """`--max-memory-wait-ms 0`: under 8 MiB, with 5 MiB announced by a slow client, a 4 MiB request is
    refused as unavailable at once over REST and gRPC (by default it waits 5 s: `in_flight_limit`)."""
    model = os.path.join(folder, "model.onnx")
    process, url, grpc_url = start_runner(runner, model, work, "memory-wait",
                                          ["--engine", "ort", "--name", "sentiment", "--max-in-flight-mib", "8",
                                           "--max-memory-wait-ms", "0"])
    try:
        sock, rest = slow_upload(url, 5 << 16)
        waiting = {"features": np.ones((1 << 18, 4), dtype=np.float32)}
        for protocol, infer, address in (("REST", http_infer, url), ("gRPC", grpc_infer, grpc_url)):
            started = time.monotonic()
            try:
                infer(address, "sentiment", waiting)
                refused = "answered"
            except InferenceServerException as e:
                refused = str(e)
            took = time.monotonic() - started
            check(("503" in refused or "UNAVAILABLE" in refused) and "--max-in-flight-mib" in refused
                  and took < 1.5,
                  f"over {protocol}, with --max-memory-wait-ms 0 a body that does not fit is refused at once "
                  f"({took:.2f} s: {refused[:160]})")
        answer = finish_upload(sock, rest)
        check(answer.startswith(b"HTTP/1.1 200") and agrees(http_infer(url, "sentiment", waiting),
                                                            ort_outputs(model, waiting), 1e-5),
              "then the slow client is answered, and the refused body once the memory is free")
    finally:
        process.terminate()
        process.wait(30)


def strings_in_flight(work, runner, model_path):
    """A string model (ai.onnx.ml LabelEncoders) under a 64 MiB limit for the requests in flight: 2.5 Mi empty
    strings, a 10 MiB body, refused at once over REST and gRPC naming the flag, since ONNX Runtime keeps a
    32-byte std::string for each (80 MiB) however short (uncounted, a 61 MiB body of them took a runner to
    1,955 MB); 256 Ki strings answered with ONNX Runtime's labels; nothing held after."""
    process, url, grpc_url = start_runner(runner, model_path, work, "strings-in-flight",
                                          ["--engine", "ort", "--name", "words", "--max-in-flight-mib", "64"])
    try:
        many = {"text": np.array([""] * (5 << 19), dtype=object)}
        for protocol, refused in refusals(url, grpc_url, "words", many):
            check("--max-in-flight-mib" in refused and "decoded for the engine" in refused,
                  f"over {protocol}, 2.5 Mi empty strings (a 10 MiB body, 80 MiB of strings in the engine) are refused "
                  f"naming the flag ({refused[:240]})")
        fewer = {"text": np.array(["apple", "", "héllo wörld", "kiwi"] * (1 << 16), dtype=object)}
        expected = ort_outputs(model_path, fewer)
        answers = []
        for infer, address in [(http_infer, url), (grpc_infer, grpc_url)]:
            result = infer(address, "words", fewer)
            labels = [v.decode() for v in result.as_numpy("label").tolist()]
            answers.append(result.as_numpy("ids").tolist() == expected["ids"].tolist()
                           and labels == expected["label"].tolist())
        held = in_flight_bytes(url)
        check(all(answers) and held == 0,
              f"256 Ki strings are answered with ONNX Runtime's ids and labels over REST and gRPC ({answers}), and "
              f"nothing is held after ({held})")
    finally:
        process.terminate()
        process.wait(30)


def memory_mib(pid, field):
    """A process's memory from /proc: `VmRSS` (resident now) or `VmHWM` (its peak), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def engine_memory_given_back(work, runner, model):
    """The small BERT asked, over gRPC, for 1,024 rows of 64 tokens (hundreds of MB of intermediate tensors in
    ONNX Runtime's arena), then for single rows, then left quiet for a moment: by default the runner goes
    back near where it was before the large request, and the same with `--keep-engine-memory` stays near its
    peak (as every runner did before: the arena keeps all it grew into, glibc's heaps all they were given
    back), so the check tells the two apart."""
    def feeds(rows):
        ids = (np.arange(rows * 64, dtype=np.int64) % 997).reshape(rows, 64)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    small, large = feeds(1), feeds(1024)
    expected = ort_outputs(model, small)
    resident = {}
    for name, flags in (("given back", []), ("kept", ["--keep-engine-memory"])):
        process, url, grpc_url = start_runner(runner, model, work, f"engine-memory-{name.replace(' ', '-')}",
                                              ["--engine", "ort", "--name", "bert", *flags])
        try:
            for _ in range(5):
                grpc_infer(grpc_url, "bert", small)
            before = memory_mib(process.pid, "VmRSS")
            answered = grpc_infer(grpc_url, "bert", large).as_numpy("last_hidden_state").shape
            peak = memory_mib(process.pid, "VmHWM")
            answers = [grpc_infer(grpc_url, "bert", small) for _ in range(5)]
            time.sleep(2.5)  # the runner trims its heaps once no run has finished for a second
            after = memory_mib(process.pid, "VmRSS")
            resident[name] = (before, peak, after)
            check(answered == (1024, 64, 64) and all(agrees(a, expected, 1e-4) for a in answers),
                  f"memory {name}: the large request and the small ones after it are answered ({answered})")
        finally:
            process.terminate()
            process.wait(30)
    (before, peak, after), (k_before, k_peak, k_after) = resident["given back"], resident["kept"]
    check(peak - before > 100 and after - before < (peak - before) / 8,
          f"after a large request the runner gives back what its engine grew into: {before:.0f} MB resident "
          f"before, {peak:.0f} MB at the peak, {after:.0f} MB after")
    check(k_after - k_before > (k_peak - k_before) / 2,
          f"with --keep-engine-memory it stays near its peak ({k_before:.0f} MB before, {k_peak:.0f} MB at the peak, "
          f"{k_after:.0f} MB after)")


def decoded_in_flight(work, runner, folder):
    """The classifier under a 64 MiB limit for the requests in flight, over gRPC: a 2 MiB message of a million
    input tensors with no fields (two bytes each on the wire, hundreds once decoded; a 7.6 MiB one of four
    million took a runner to 1,260 MB, and 64 MiB would have been some 10 GB) refused before it is decoded,
    naming the flag, the runner's peak memory staying far below what decoding it would take; over REST a
    33 MiB body of three million request parameters (455 MB decoded) refused as it is read, past the 64 a
    `parameters` object may hold; then three rows answered with ONNX Runtime's numbers."""
    import grpc
    model = os.path.join(folder, "model.onnx")
    process, url, grpc_url = start_runner(runner, model, work, "decoded-in-flight",
                                          ["--engine", "ort", "--name", "sentiment", "--max-in-flight-mib", "64"])
    try:
        # ModelInferRequest: model_name (field 1), then a million empty `inputs` (field 5, length 0).
        message = b"\x0a\x09sentiment" + b"\x2a\x00" * 1_000_000
        channel = grpc.insecure_channel(grpc_url)
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                   request_serializer=lambda m: m, response_deserializer=lambda m: m)
        try:
            call(message, timeout=60)
            refused = "answered"
        except grpc.RpcError as e:
            refused = f"{e.code()} {e.details()}"
        peak = memory_mib(process.pid, "VmHWM")
        check("INVALID_ARGUMENT" in refused and "what it decodes to" in refused and "--max-in-flight-mib" in refused
              and peak < 150,
              f"a 2 MiB gRPC message of a million empty input tensors is refused before it is decoded, naming the flag "
              f"({refused[:200]}); the runner's peak memory {peak:.0f} MB")
        # Over REST, a 33 MiB body of three million parameters (JSON values, a few bytes each as text).
        body = b'{"parameters":{' + b",".join(b'"%d":0' % i for i in range(3_000_000)) + b'},"inputs":[]}'
        request = urllib.request.Request(f"http://{url}/v2/models/sentiment/infer", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=60)
            refused = "answered"
        except urllib.error.HTTPError as e:
            refused = f"{e.code} {e.read().decode()}"
        peak = memory_mib(process.pid, "VmHWM")
        check(refused.startswith("400") and "more than 64 parameters" in refused and peak < 150,
              f"a 33 MiB REST body of three million request parameters is refused as it is read ({refused[:160]}); "
              f"the runner's peak memory {peak:.0f} MB")
        expected = ort_outputs(model, {"features": FEW})
        check(agrees(grpc_infer(grpc_url, "sentiment", {"features": FEW}), expected, 1e-5)
              and agrees(http_infer(url, "sentiment", {"features": FEW}), expected, 1e-5) and in_flight_bytes(url) == 0,
              "then three rows are answered over gRPC and REST with ONNX Runtime's numbers, nothing held after")
    finally:
        process.terminate()
        process.wait(30)


def read_to_close(sock, answer=b""):
    """`answer` and what else comes on `sock` until its peer closes it (or the socket fails); closes it."""
    try:
        while chunk := sock.recv(1 << 16):
            answer += chunk
    except OSError:
        pass
    sock.close()
    return answer


def interleave_chunked(url):
    """Two 5 MiB chunked bodies sent at once, 256 KiB pieces each from its own thread (a client waiting for
    one socket must not hold back the other): their status lines (sorted), a 503's body, and the seconds
    it took."""
    host, port = url.split(":")
    rows = 5 << 16
    data = np.full((rows, 4), 0.25, dtype=np.float32).tobytes()
    header = json.dumps({"inputs": [{"name": "features", "shape": [rows, 4], "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(data)}}]}).encode()
    body = header + data
    answers = [None, None]

    def upload(index, sock):
        try:
            for offset in range(0, len(body), 256 << 10):
                piece = body[offset:offset + (256 << 10)]
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        answers[index] = read_to_close(sock).split(b"\r\n\r\n", 1)

    socks = []
    for _ in range(2):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"POST /v2/models/sentiment/infer HTTP/1.1\r\nHost: " + url.encode()
                     + b"\r\nTransfer-Encoding: chunked\r\nInference-Header-Content-Length: %d" % len(header)
                     + b"\r\nConnection: close\r\n\r\n")
        socks.append(sock)
    started = time.monotonic()
    uploads = [threading.Thread(target=upload, args=(index, sock)) for index, sock in enumerate(socks)]
    for thread in uploads:
        thread.start()
    for thread in uploads:
        thread.join()
    took = time.monotonic() - started
    statuses = sorted(head.split(b"\r\n")[0].decode() for head, *_ in answers)
    refusal = next((rest[0].decode() for head, *rest in answers if b" 503 " in head and rest), "")
    return statuses, refusal, took


def chunked_bodies(work, runner, folder):
    """Two 5 MiB REST bodies sent without Content-Length (chunked), at once, under an 8 MiB limit: each is
    admitted as it comes, so each holds part of the limit while the rest comes. When both waited for more
    while holding, both stalled and both were refused after the 5 s wait; when neither waited, both could be
    refused at the same moment (3 rounds of 56 on the build before). Now the first that cannot grow waits for room and the
    other, if it cannot grow either, is refused at once, 503 naming Content-Length: in every round one is
    answered at least, and the other answered too (when one body came far ahead of the other) or refused at
    once."""
    model = os.path.join(folder, "model.onnx")
    process, url, grpc_url = start_runner(runner, model, work, "chunked-bodies",
                                          ["--engine", "ort", "--name", "sentiment", "--max-in-flight-mib", "8"])
    try:
        rounds = [interleave_chunked(url) for _ in range(4)]
        answered = ["HTTP/1.1 200 OK"] * 2
        one_refused = ["HTTP/1.1 200 OK", "HTTP/1.1 503 Service Unavailable"]
        check(all((statuses == answered or statuses == one_refused and "Content-Length" in refusal) and took < 4
                  for statuses, refusal, took in rounds) and in_flight_bytes(url) == 0,
              f"of two 5 MiB chunked bodies sent at once under an 8 MiB limit, one is answered and the other answered "
              f"or refused at once naming Content-Length in each of {len(rounds)} rounds, nothing held after "
              f"({[(statuses, round(took, 1)) for statuses, _, took in rounds]}, {rounds[0][1][:160]})")
    finally:
        process.terminate()
        process.wait(30)


def compressed_bodies(work, runner, folder):
    """REST bodies compressed as tritonclient compresses them (`request_compression_algorithm`, the
    `Content-Encoding` Triton reads), under `--max-request-mib 1`: gzip and deflate, binary data and JSON,
    answered with ONNX Runtime's numbers; a gzip body of 64 KiB that inflates to 64 MiB refused naming the
    flag, the runner's peak memory growing by a few MiB, not 64; an encoding it does not read refused
    naming those it does. Over gRPC (`compression_algorithm`, the `grpc-encoding` Triton takes): gzip and
    deflate answered, a message inflating past the limit refused INVALID_ARGUMENT naming the flag (tonic
    alone says RESOURCE_EXHAUSTED). Answers: compressed in the encoding the client's `Accept-Encoding`
    prefers (gzip, deflate), with ONNX Runtime's numbers inside, and not for an encoding it does not
    write."""
    model = os.path.join(folder, "model.onnx")
    feeds = {"features": np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)}
    expected = ort_outputs(model, feeds)
    process, url, grpc_url = start_runner(runner, model, work, "compressed",
                                   ["--engine", "ort", "--name", "sentiment", "--max-request-mib", "1"])
    try:
        for algorithm in ("gzip", "deflate"):
            for binary in (True, False):
                answer = httpclient.InferenceServerClient(url).infer(
                    "sentiment", inputs_of(httpclient, feeds, binary_data=binary),
                    request_compression_algorithm=algorithm, response_compression_algorithm=algorithm)
                check(agrees(answer, expected, 1e-5),
                      f"a REST body compressed with {algorithm} ({'binary data' if binary else 'JSON'}) is "
                      "answered with ONNX Runtime's numbers")
        body = json.dumps({"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32",
                                       "data": [0, 0, 0, 0]}]}).encode()
        bomb = gzip.compress(b" " * (64 << 20) + body)
        # The peak so far (the model's load) reset to what is resident now: the bomb's own peak is measured.
        with open(f"/proc/{process.pid}/clear_refs", "w") as clear:
            clear.write("5")
        before = memory_mib(process.pid, "VmHWM")
        status, error = post_json(f"http://{url}/v2/models/sentiment/infer", bomb, {"Content-Encoding": "gzip"})
        grew = memory_mib(process.pid, "VmHWM") - before
        check(status == 400 and "--max-request-mib" in error.get("error", "") and grew < 16,
              f"a {len(bomb) >> 10} KiB gzip body inflating to 64 MiB is refused naming --max-request-mib, "
              f"the runner's peak growing by {grew:.1f} MiB ({status} {error})")
        for algorithm in ("gzip", "deflate"):
            answer = grpcclient.InferenceServerClient(grpc_url).infer(
                "sentiment", inputs_of(grpcclient, feeds), compression_algorithm=algorithm)
            check(agrees(answer, expected, 1e-5),
                  f"a gRPC message compressed with {algorithm} is answered with ONNX Runtime's numbers")
        infer = grpc.insecure_channel(grpc_url).unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=service_pb2.ModelInferRequest.SerializeToString,
            response_deserializer=service_pb2.ModelInferResponse.FromString)
        try:
            infer(service_pb2.ModelInferRequest(model_name="sentiment", id=" " * (16 << 20)),
                  compression=grpc.Compression.Gzip, timeout=30)
            check(False, "a gzip gRPC message inflating to 16 MiB is refused")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "--max-request-mib" in e.details(),
                  f"a gzip gRPC message inflating to 16 MiB is refused INVALID_ARGUMENT naming --max-request-mib "
                  f"({e.code()} {e.details()[:120]})")
        many = {"features": np.random.default_rng(6).standard_normal((256, 4)).astype(np.float32)}
        many_expected = ort_outputs(model, many)
        request = json.dumps({"inputs": [{"name": "features", "shape": [256, 4], "datatype": "FP32",
                                          "data": many["features"].ravel().tolist()}]}).encode()
        for asked, encoding, inflate in (("gzip", "gzip", gzip.decompress),
                                         ("deflate;q=1, gzip;q=0.5", "deflate", zlib.decompress),
                                         ("br", None, bytes)):
            with urllib.request.urlopen(urllib.request.Request(
                    f"http://{url}/v2/models/sentiment/infer", data=request,
                    headers={"Content-Type": "application/json", "Accept-Encoding": asked})) as reply:
                sent, raw = reply.headers.get("Content-Encoding"), reply.read()
            outputs = {o["name"]: np.array(o["data"], dtype=np.float32).reshape(o["shape"])
                       for o in json.loads(inflate(raw))["outputs"]}
            right = all(np.allclose(outputs[name], want, atol=1e-5) for name, want in many_expected.items())
            check(sent == encoding and right,
                  f"an answer to Accept-Encoding {asked!r} comes {encoding or 'uncompressed'}, "
                  f"{len(raw)} bytes, with ONNX Runtime's numbers (Content-Encoding {sent})")
        status, error = post_json(f"http://{url}/v2/models/sentiment/infer", body, {"Content-Encoding": "br"})
        check(status == 400 and "gzip, deflate, identity" in error.get("error", ""),
              f"a body of an encoding the runner does not read is refused naming those it does ({status} {error})")
    finally:
        process.terminate()
        process.wait(30)


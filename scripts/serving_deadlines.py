"""How long a request may hold a real `kiln-runner serve`: a model that runs as long as its client asks (a
Loop whose trip count is an input) stands for any request whose shapes or values make a run take minutes.
Before runs had deadlines, one such request held its instance until the engine finished (ONNX Runtime: a
billion trips, hours), and as many of them as there were instances stopped the model answering anyone;
requests whose clients had given up were still run in turn. Now, on each engine, over REST and gRPC:
a run past `--run-timeout-s` is stopped (504 / DEADLINE_EXCEEDED naming the flag) and the same instance
answers the next request at once; a client's own deadline (gRPC's `grpc-timeout`, the protocol's `timeout`
parameter) stops its run once it passes, and a gRPC call whose client leaves its deadline to the server is
ended at it as DEADLINE_EXCEEDED (not tonic's CANCELLED) and counted; requests whose clients gave up while
queued (a gRPC deadline, a REST connection closed) are not run, and a run whose clients all went (a
connection closed, a call cancelled) is stopped.

Run by serving_test.py, or alone: python serving_deadlines.py WORK KILN_RUNNER (KILN_ONNXRUNTIME_LIB set).
"""
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

import h2.events

import numpy as np
import onnx
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from onnx import TensorProto, helper
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from serving_client import check, inputs_of, metric, start_runner
from serving_pace import h2_connection, infer_headers

ENDLESS = 1 << 40


def as_long_as_asked(work):
    """A Loop of `trips` body runs over `x`: each run an Abs, so that a billion trips take hours."""
    folder = os.path.join(work, "as-long-as-asked")
    os.makedirs(folder, exist_ok=True)
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Abs", ["acc_in"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1])])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "", "x"], ["y"], body=body)], "as_long_as_asked",
        [helper.make_tensor_value_info("trips", TensorProto.INT64, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(folder, "model.onnx")
    onnx.save(model, path)
    return path


def feeds(trips):
    return {"trips": np.array(trips, dtype=np.int64), "x": np.array([-2.0], dtype=np.float32)}


def timed(call):
    """What `call` answered or raised, and how long it took."""
    started = time.monotonic()
    try:
        outcome = call()
    except InferenceServerException as e:
        outcome = e
    return outcome, time.monotonic() - started


def gave_up(outcome):
    """A gRPC call ended at its deadline, by the client's clock or the server's: DEADLINE_EXCEEDED either way."""
    return refused(outcome, "DEADLINE_EXCEEDED", "")


def left_to_the_server(grpc_url, trips, timeout):
    """A ModelInfer call over raw HTTP/2 with `grpc-timeout: timeout` and no clock of its own, as a tonic
    client's `Request::set_timeout` leaves it to the server: the status and message that ended it, and when."""
    request = service_pb2.ModelInferRequest(model_name="looped")
    for name, value in feeds(trips).items():
        tensor = request.inputs.add(name=name, datatype="INT64" if value.dtype == np.int64 else "FP32")
        tensor.shape.extend(value.shape)
        request.raw_input_contents.append(value.tobytes())
    message = request.SerializeToString()
    sock, conn = h2_connection(grpc_url, 10)
    stream = conn.get_next_available_stream_id()
    started = time.monotonic()
    conn.send_headers(stream, infer_headers(grpc_url) + [("grpc-timeout", timeout)])
    conn.send_data(stream, b"\0" + len(message).to_bytes(4, "big") + message, end_stream=True)
    sock.sendall(conn.data_to_send())
    headers, ended = {}, False
    try:
        while not ended:
            data = sock.recv(1 << 16)
            ended = not data
            for event in conn.receive_data(data):
                if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    headers.update({k.decode(): v.decode() for k, v in event.headers})
                ended = ended or isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset))
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()
    return headers.get("grpc-status"), urllib.parse.unquote(headers.get("grpc-message", "")), \
        time.monotonic() - started


def refused(outcome, status, words):
    return isinstance(outcome, InferenceServerException) and status in str(outcome.status()) \
        and words in outcome.message()


def answers_at_once(url, grpc_url, engine, after):
    """A request of three trips answered 2.0 over both protocols within a second (`after`: what came before)."""
    for protocol, client, address in [("REST", httpclient, url), ("gRPC", grpcclient, grpc_url)]:
        outcome, took = timed(lambda: client.InferenceServerClient(address).infer(
            "looped", inputs_of(client, feeds(3))).as_numpy("y"))
        check(not isinstance(outcome, Exception) and outcome.tolist() == [2.0] and took < 1.0,
              f"after {after}, the same instance answers three trips over {protocol} in {took:.2f} s ({engine})")


def run_timeout(work, runner, model):
    """`--run-timeout-s 1`: an endless request is stopped after a second on each engine and protocol."""
    for engine in ("ort", "kiln"):
        process, url, grpc_url = start_runner(runner, model, work, f"run-timeout-{engine}",
                                              ["--engine", engine, "--name", "looped", "--instances", "1",
                                               "--run-timeout-s", "1"])
        try:
            for protocol, client, address, status in [("REST", httpclient, url, "504"),
                                                      ("gRPC", grpcclient, grpc_url, "DEADLINE_EXCEEDED")]:
                outcome, took = timed(lambda: client.InferenceServerClient(address)
                                      .infer("looped", inputs_of(client, feeds(ENDLESS))))
                check(refused(outcome, status, "--run-timeout-s (1 s)") and 1.0 <= took < 4.0,
                      f"over {protocol}, a request of 2^40 trips is stopped at --run-timeout-s: {status} after "
                      f"{took:.2f} s ({engine}: {str(outcome)[:160]})")
            stopped = metric(url, 'kiln_serve_runs_stopped_total{version="1",reason="run_timeout"}')
            check(stopped == 2, f"/metrics counts the two runs stopped at the timeout ({stopped}, {engine})")
            answers_at_once(url, grpc_url, engine, "a run stopped at the timeout")
        finally:
            process.terminate()
            process.wait(30)


def own_deadlines(work, runner, model):
    """With a timeout of 10 minutes, each engine: a gRPC call's deadline (0.5 s) and a REST request's
    `timeout` parameter (0.5 s) stop their runs; the next request is answered at once; requests whose clients
    gave up while they waited are not run."""
    for engine in ("ort", "kiln"):
        process, url, grpc_url = start_runner(runner, model, work, f"own-deadlines-{engine}",
                                              ["--engine", engine, "--name", "looped", "--instances", "1",
                                               "--max-batch-size", "1", "--run-timeout-s", "600"])
        try:
            outcome, took = timed(lambda: grpcclient.InferenceServerClient(grpc_url).infer(
                "looped", inputs_of(grpcclient, feeds(ENDLESS)), client_timeout=0.5))
            check(gave_up(outcome) and took < 2.0,
                  f"a gRPC call of 2^40 trips with a 0.5 s deadline ends at it ({took:.2f} s, {engine})")
            answers_at_once(url, grpc_url, engine, "a run whose gRPC deadline passed")
            # The client above ends its call by its own clock, as the server's comes: counted or not, as it raced.
            exceeded = 'kiln_serve_requests_total{protocol="grpc",outcome="deadline_exceeded"'
            before = metric(url, exceeded)
            status, message, took = left_to_the_server(grpc_url, ENDLESS, "500m")
            # Ended by the call's clock or by its run's, stopped at the same deadline: either says so.
            check(status == "4" and "deadline" in message and 0.5 <= took < 2.0,
                  f"a gRPC call of 2^40 trips whose client leaves its 0.5 s deadline to the server ends at it as "
                  f"DEADLINE_EXCEEDED ({status}: {message!r} after {took:.2f} s, {engine})")
            counted = metric(url, exceeded) - before
            check(counted == 1, f"/metrics counts that call among the requests, deadline_exceeded ({counted}, {engine})")
            answers_at_once(url, grpc_url, engine, "a call whose deadline the server kept")
            outcome, took = timed(lambda: httpclient.InferenceServerClient(url).infer(
                "looped", inputs_of(httpclient, feeds(ENDLESS)), timeout=500_000))
            check(refused(outcome, "504", "deadline passed while the model ran") and 0.5 <= took < 2.5,
                  f"a REST request of 2^40 trips with a timeout parameter of 500,000 us is stopped then: 504 after "
                  f"{took:.2f} s ({engine}: {str(outcome)[:160]})")
            answers_at_once(url, grpc_url, engine, "a run whose timeout parameter passed")
            # A call ended at its grpc-timeout (by its client or the server) leaves its run at the same moment
            # as the run's deadline comes: either reason.
            stopped = metric(url, 'kiln_serve_runs_stopped_total{version="1",reason="deadline"}') + \
                metric(url, 'kiln_serve_runs_stopped_total{version="1",reason="clients_gone"}')
            check(stopped == 3, f"/metrics counts the three runs stopped at their clients' deadlines ({stopped}, {engine})")

            given_up_in_the_queue(url, grpc_url, engine)
            gone_while_running(url, grpc_url, engine)
        finally:
            process.terminate()
            process.wait(30)


def held_for_3_s(url):
    """A thread holding the one instance for 3 s (a request of that `timeout`), started."""
    holding = threading.Thread(target=lambda: timed(lambda: httpclient.InferenceServerClient(url).infer(
        "looped", inputs_of(httpclient, feeds(ENDLESS)), timeout=3_000_000)))
    holding.start()
    time.sleep(0.3)
    return holding


def after_holding(url, holding, runs_before):
    """Once `holding` has ended: the runs since `runs_before` runs, and the requests abandoned in all."""
    holding.join()
    time.sleep(0.2)
    runs = metric(url, 'kiln_serve_compute_duration_seconds_count{version="1"}') - runs_before
    return runs, metric(url, 'kiln_serve_requests_abandoned_total{version="1"}')


def given_up_in_the_queue(url, grpc_url, engine):
    """The one instance held for 3 s; behind it a gRPC call that leaves its 0.3 s deadline to the server and
    eight whose clients keep theirs, then four REST clients that close their connections after 0.3 s: none of
    the thirteen is run, and the server ends the first at its deadline as DEADLINE_EXCEEDED."""
    runs_before = metric(url, 'kiln_serve_compute_duration_seconds_count{version="1"}')
    holding = held_for_3_s(url)
    exceeded = 'kiln_serve_requests_total{protocol="grpc",outcome="deadline_exceeded"'
    before = metric(url, exceeded)
    status, message, took = left_to_the_server(grpc_url, ENDLESS, "300m")
    counted = metric(url, exceeded) - before
    check(status == "4" and "grpc-timeout" in message and 0.3 <= took < 1.0 and counted == 1,
          f"a gRPC call waiting behind a held instance, its 0.3 s deadline left to the server, is ended then as "
          f"DEADLINE_EXCEEDED and counted among the requests ({status}: {message!r} after {took:.2f} s, "
          f"{counted:.0f} counted, {engine})")
    ended = []
    calls = [threading.Thread(target=lambda: ended.append(timed(lambda: grpcclient.InferenceServerClient(
        grpc_url).infer("looped", inputs_of(grpcclient, feeds(ENDLESS)), client_timeout=0.3))))
        for _ in range(8)]
    for call in calls:
        call.start()
    for call in calls:
        call.join()
    runs, abandoned = after_holding(url, holding, runs_before)
    check(len(ended) == 8 and all(gave_up(o) for o, _ in ended) and abandoned == 9 and runs == 1,
          f"eight gRPC calls that gave up while an instance was held are not run: {abandoned:.0f} abandoned, "
          f"{runs:.0f} run in all ({engine}; {sorted({str(o)[:80] for o, _ in ended})})")

    holding = held_for_3_s(url)
    clients = [endless_over_raw_http(url) for _ in range(4)]
    time.sleep(0.3)
    for client in clients:
        client.close()
    runs, abandoned = after_holding(url, holding, runs_before)
    check(abandoned == 13 and runs == 2,
          f"four REST clients that closed their connections while an instance was held are not run: "
          f"{abandoned:.0f} abandoned in all, {runs:.0f} run ({engine})")
    answers_at_once(url, grpc_url, engine, "requests abandoned in the queue")


def endless_over_raw_http(url):
    """A REST request of 2^40 trips sent on a socket of its own, which the caller closes to leave."""
    body = json.dumps({"inputs": [{"name": "trips", "shape": [], "datatype": "INT64", "data": [ENDLESS]},
                                  {"name": "x", "shape": [1], "datatype": "FP32", "data": [-2.0]}]}).encode()
    host, port = url.split(":")
    client = socket.create_connection((host, int(port)))
    client.sendall(b"POST /v2/models/looped/infer HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return client


def gone_while_running(url, grpc_url, engine):
    """A REST client closing its connection, and a gRPC call cancelled, while their request runs (no
    deadline, a timeout of 10 minutes): each run stopped then, the next request answered at once."""
    before = metric(url, 'kiln_serve_runs_stopped_total{version="1",reason="clients_gone"}')
    client = endless_over_raw_http(url)
    time.sleep(0.5)
    client.close()
    answers_at_once(url, grpc_url, engine, "a REST client closed its connection while its request ran")
    call = grpcclient.InferenceServerClient(grpc_url).async_infer(
        "looped", inputs_of(grpcclient, feeds(ENDLESS)), callback=lambda result, error: None)
    time.sleep(0.5)
    call.cancel()
    answers_at_once(url, grpc_url, engine, "a gRPC call was cancelled while its request ran")
    stopped = metric(url, 'kiln_serve_runs_stopped_total{version="1",reason="clients_gone"}') - before
    check(stopped == 2, f"/metrics counts the two runs stopped as their clients went ({stopped}, {engine})")


def deadlines(work, runner):
    model = as_long_as_asked(work)
    run_timeout(work, runner, model)
    own_deadlines(work, runner, model)


if __name__ == "__main__":
    deadlines(*sys.argv[1:3])

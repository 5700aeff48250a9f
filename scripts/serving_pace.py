"""What a slow client cannot hold in a real `kiln-runner serve`: a request's memory is held from its admission
(`--max-in-flight-mib`) until its answer has gone, so a client that announced a large body and then sent it
slowly, or asked for a large answer and did not read it, used to keep its part of that limit for as long as
it kept the connection open. With `--client-timeout-s` and `--min-client-rate-kib`, a body that does not come
at the pace is answered 408 (gRPC DEADLINE_EXCEEDED) naming the flags, an answer that is not taken at the pace
is dropped, and in each case what the request held is freed while the client's connection is still open.
Nor can clients make the server hold their unread frames: the requests waiting for memory are a bounded queue.
The clients here are raw sockets (HTTP/1.1) and raw HTTP/2 connections (the `h2` package): the off-the-shelf
clients send and read as fast as they can."""
import os
import socket
import time
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import numpy as np
from tritonclient.grpc import service_pb2

from serving_client import agrees, check, grpc_infer, http_infer, metric, ort_outputs, start_runner
from serving_limits import in_flight_bytes, memory_mib, raw_http, read_to_close, slow_upload

ROWS = 1 << 20  # 16 MiB of features in; 2 Mi logits out (8 MiB raw, about 20 MB as JSON)


def trickled_body(url):
    """A REST body announced at 5 MiB and sent a KiB every 0.2 s: the status line and body of the answer,
    and how long it took."""
    sock, body = raw_http(url, 5 << 16)
    sock.settimeout(0.2)
    started, answer = time.monotonic(), b""
    for offset in range(0, 20 << 10, 1 << 10):
        try:
            sock.sendall(body[offset:offset + 1024])
            answer = sock.recv(1 << 16)
            break
        except (TimeoutError, socket.timeout):
            continue
        except OSError:
            break
    took = time.monotonic() - started
    sock.settimeout(5)
    return read_to_close(sock, answer), took


def grpc_message(rows):
    request = service_pb2.ModelInferRequest(model_name="sentiment")
    features = request.inputs.add(name="features", datatype="FP32")
    features.shape.extend([rows, 4])
    request.raw_input_contents.append(np.ones((rows, 4), dtype=np.float32).tobytes())
    message = request.SerializeToString()
    return b"\0" + len(message).to_bytes(4, "big") + message


def h2_connection(url, timeout):
    """A client HTTP/2 connection to `url` (its socket receiving with `timeout`), its preface not yet sent."""
    host, port = url.split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    return sock, conn


def infer_headers(url):
    """A ModelInfer call's request headers."""
    return [(":method", "POST"), (":scheme", "http"), (":authority", url),
            (":path", "/inference.GRPCInferenceService/ModelInfer"),
            ("content-type", "application/grpc"), ("te", "trailers")]


class RawGrpc:
    """One HTTP/2 connection and one ModelInfer call on it, which never grants the server more window than
    the protocol's initial 64 KiB: as a client that does not read its answer."""

    def __init__(self, url):
        self.sock, self.conn = h2_connection(url, 1)
        self.stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(self.stream, infer_headers(url))
        self.flush()
        self.headers = {}
        self.ended = False

    def flush(self):
        self.sock.sendall(self.conn.data_to_send())

    def receive(self):
        try:
            data = self.sock.recv(1 << 16)
        except (TimeoutError, socket.timeout):
            return
        if not data:
            self.ended = True
        for event in self.conn.receive_data(data):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                self.headers.update({k.decode(): v.decode() for k, v in event.headers})
            if isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset, h2.events.ConnectionTerminated)):
                self.ended = True
        self.flush()

    def send(self, data, end):
        """Sends `data` as the server's windows allow."""
        while data:
            room = min(self.conn.local_flow_control_window(self.stream), self.conn.max_outbound_frame_size)
            if room == 0:
                self.receive()
                continue
            self.conn.send_data(self.stream, data[:room])
            data = data[room:]
            self.flush()
        if end:
            self.conn.end_stream(self.stream)
            self.flush()

    def close(self):
        self.sock.close()


class CallsAtOnce:
    """One HTTP/2 connection with `calls` ModelInfer calls on it, each sending as much of `message` as its
    window allows and then nothing: calls that wait for memory, their frames unread by the server."""

    def __init__(self, url, calls, message):
        self.sock, self.conn = h2_connection(url, 0.2)
        self.sock.sendall(self.conn.data_to_send())
        self.started = time.monotonic()
        self.answers = {}
        # Until the server's settings and its connection window (sent in a WINDOW_UPDATE) have come.
        while self.conn.remote_settings.max_concurrent_streams > 1000 or self.conn.outbound_flow_control_window < 1 << 20:
            self.receive()
        for _ in range(calls):
            stream = self.conn.get_next_available_stream_id()
            self.conn.send_headers(stream, infer_headers(url))
            room = min(self.conn.local_flow_control_window(stream), len(message))
            for offset in range(0, room, self.conn.max_outbound_frame_size):
                self.conn.send_data(stream, message[offset:min(room, offset + self.conn.max_outbound_frame_size)])
            self.sock.sendall(self.conn.data_to_send())

    def receive(self):
        """Reads what came; each call's grpc-status and message, and when they came, into `answers`."""
        try:
            data = self.sock.recv(1 << 20)
        except (TimeoutError, socket.timeout):
            return
        for event in self.conn.receive_data(data):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                headers = {k.decode(): v.decode() for k, v in event.headers}
                if "grpc-status" in headers:
                    self.answers[event.stream_id] = (headers["grpc-status"], unquote(headers.get("grpc-message", "")),
                                                     time.monotonic() - self.started)
        self.sock.sendall(self.conn.data_to_send())


def closed_by_server(url, sock, seconds):
    """Seconds until the server's side of `sock`'s connection is gone from /proc/net/tcp (None if not
    within `seconds`): a connection the server aborts sends the client nothing."""
    server = f"{int(url.split(':')[1]):04X}"
    client = f"{sock.getsockname()[1]:04X}"
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with open("/proc/net/tcp") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        if not any(r[1].endswith(":" + server) and r[2].endswith(":" + client) and r[3] == "01" for r in rows):
            return round(time.monotonic() - started, 1)
        time.sleep(0.1)
    return None


def waiting_calls(work, runner, folder):
    """The requests waiting for memory are a bounded queue, each able to leave its gRPC window (256 KiB)
    received and unread: under an 8 MiB limit (16 may wait), half of it held by a slow REST client, two
    connections of 64 gRPC calls each sending its window of a 5 MiB message: 16 wait and are refused
    UNAVAILABLE after 5 s, the other 112 at once, naming the flag; the runner's resident memory grows by less
    than half of the 32 MiB the clients sent (unbounded, it held all of it); nothing held after."""
    model = os.path.join(folder, "model.onnx")
    process, url, grpc_url = start_runner(runner, model, work, "waiting-calls",
                                          ["--engine", "ort", "--name", "sentiment", "--max-in-flight-mib", "8"])
    try:
        holder, _ = slow_upload(url, 5 << 16)
        time.sleep(0.5)
        before = memory_mib(process.pid, "VmRSS")
        connections = [CallsAtOnce(grpc_url, 64, grpc_message(5 << 16)) for _ in range(2)]
        for _ in range(5):
            for connection in connections:
                connection.receive()
        grown = memory_mib(process.pid, "VmRSS") - before
        deadline = time.monotonic() + 10
        while sum(len(c.answers) for c in connections) < 128 and time.monotonic() < deadline:
            for connection in connections:
                connection.receive()
        answers = [answer for c in connections for answer in c.answers.values()]
        at_once = [a for a in answers if a[0] == "14" and "16 requests already wait" in a[1] and a[2] < 4]
        waited = [a for a in answers if a[0] == "14" and "within 5 s" in a[1] and a[2] >= 4.5]
        check(len(at_once) == 112 and len(waited) == 16 and "--max-in-flight-mib" in at_once[0][1],
              f"of 128 gRPC calls that do not fit, 16 wait and are refused UNAVAILABLE after 5 s and 112 at once, "
              f"naming the flag ({len(at_once)} at once, {len(waited)} after waiting, of {len(answers)}: "
              f"{sorted({a[:2] for a in answers})[:3]})")
        check(grown < 16, f"the runner's resident memory grew by {grown:.1f} MiB while the calls' 32 MiB of frames "
                          f"were sent (16 waiting calls may leave 4.3 MiB unread)")
        for connection in connections:
            connection.sock.close()
        holder.close()
        freed, _ = held_until_freed(url, 10)
        check(freed is not None, "after the clients have gone, the requests in flight hold nothing")
    finally:
        process.terminate()
        process.wait(30)


def held_until_freed(url, seconds):
    """Seconds until `kiln_serve_in_flight_bytes` is 0 (None if not within `seconds`), and the most seen."""
    started, most = time.monotonic(), 0.0
    while time.monotonic() - started < seconds:
        held = in_flight_bytes(url) or 0.0
        most = max(most, held)
        if held == 0:
            return time.monotonic() - started, most
        time.sleep(0.1)
    return None, most


def client_pace(work, runner, folder):
    """The classifier with 2 s for a client's transfers (at 64 MiB/s past that, so that what a slow client
    moved earns it next to nothing): a REST body trickled at 5 KiB/s answered 408 naming the flags; a gRPC
    call whose 5 MiB message stops after 64 KiB refused DEADLINE_EXCEEDED; a REST answer of about 20 MB and
    a gRPC one of 8 MiB, never read, dropped with their requests' memory while their connections stay open,
    the REST one's connection then closed by the runner (TCP_USER_TIMEOUT, at twice the 2 s); the same process
    then answering with ONNX Runtime's numbers."""
    model = os.path.join(folder, "model.onnx")
    process, url, grpc_url = start_runner(runner, model, work, "client-pace",
                                          ["--engine", "ort", "--name", "sentiment", "--client-timeout-s", "2",
                                           "--min-client-rate-kib", "65536"])
    try:
        # A REST body is refused by the version it was sent to; a gRPC message before one is chosen.
        timeouts = {"rest": 'kiln_serve_requests_total{protocol="rest",outcome="timeout",version="1"}',
                    "grpc": 'kiln_serve_requests_total{protocol="grpc",outcome="timeout",version=""}'}
        answer, took = trickled_body(url)
        head, _, body = answer.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 408") and b"--client-timeout-s" in body and 1.8 <= took <= 6
              and in_flight_bytes(url) == 0 and metric(url, timeouts["rest"]) == 1,
              f"a REST body trickled at 5 KiB/s is answered 408 after {took:.1f} s naming the flags, counted as a "
              f"timeout, and what it held is freed ({answer[:300]!r})")

        call = RawGrpc(grpc_url)
        started = time.monotonic()
        call.send(grpc_message(5 << 16)[:64 << 10], end=False)
        while not call.ended and time.monotonic() - started < 10:
            call.receive()
        took = time.monotonic() - started
        check(call.headers.get("grpc-status") == "4" and "--client-timeout-s" in call.headers.get("grpc-message", "")
              and 1.8 <= took <= 6 and in_flight_bytes(url) == 0 and metric(url, timeouts["grpc"]) == 1,
              f"a gRPC call whose 5 MiB message stops after 64 KiB is refused DEADLINE_EXCEEDED after {took:.1f} s "
              f"naming the flags, counted as a timeout (tonic refuses it before the handler), and what it held is "
              f"freed ({call.headers})")
        call.close()

        answers_before = metric(url, 'kiln_serve_client_timeouts_total{transfer="answer"}')
        sock, body = raw_http(url, ROWS, rcvbuf=4096)
        sock.sendall(body)
        freed, most = held_until_freed(url, 15)
        check(freed is not None and 1.5 <= freed and most > 20e6,
              f"a REST answer of about 20 MB that its client does not read holds {most / 1e6:.0f} MB of the "
              f"requests' memory, freed after {freed} s while the connection is open")
        closed = closed_by_server(url, sock, 10)
        check(closed is not None,
              f"the runner then closes that connection itself, {closed} s after, rather than keep it for as long as "
              f"the client likes")
        sock.close()

        call = RawGrpc(grpc_url)
        call.send(grpc_message(ROWS), end=True)
        freed, most = held_until_freed(url, 15)
        check(freed is not None and 1.5 <= freed and most > 8e6 and not call.ended,
              f"a gRPC answer of 8 MiB that its client grants no window for holds {most / 1e6:.0f} MB of the "
              f"requests' memory, freed after {freed} s while the call is open")
        call.close()
        dropped = metric(url, 'kiln_serve_client_timeouts_total{transfer="answer"}') - answers_before
        check(dropped == 2, f"the two answers are counted as dropped for slow clients ({dropped:.0f})")

        rows = {"features": np.linspace(-2, 2, ROWS * 4, dtype=np.float32).reshape(ROWS, 4)}
        expected = ort_outputs(model, rows)
        check(agrees(http_infer(url, "sentiment", rows), expected, 1e-5)
              and agrees(grpc_infer(grpc_url, "sentiment", rows), expected, 1e-5),
              "then a client that sends and reads at its own speed gets the same 2 Mi logits, ONNX Runtime's, "
              "over REST and gRPC")
    finally:
        process.terminate()
        process.wait(30)

"""The connections a real `kiln-runner serve` keeps open (`--max-connections`). Clients that open connections
and send nothing used to hold them for as long as they liked: 200 such connections to the gRPC port of a runner
allowed 128 open files took every descriptor, tonic retried the failing accept at once (a whole core), and
neither REST nor gRPC answered anyone until those clients went. Each front end now holds at most
`--max-connections`, fitted within the limit on open files, and a gRPC connection that begins no call within
`--client-timeout-s` is closed. The clients here are raw sockets that connect and send nothing."""
import os
import resource
import socket
import time
import urllib.request

import h2.events
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from serving_client import agrees, check, grpc_infer, metric, ort_outputs, start_runner
from serving_pace import RawGrpc, grpc_message

OPEN = 'kiln_serve_connections{protocol="grpc"}'
REST_OPEN = 'kiln_serve_connections{protocol="rest"}'


def silent_connections(address, count):
    """`count` TCP connections to `address` that send nothing."""
    host, port = address.split(":")
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.connect((host, int(port)))
        except BlockingIOError:
            pass
        sockets.append(sock)
    return sockets


def answers(grpc_url, rows, expected):
    """Whether a gRPC call is answered within 15 s with `expected`; what went wrong if not."""
    try:
        return agrees(grpc_infer(grpc_url, "sentiment", rows, timeout=15), expected, 1e-5)
    except InferenceServerException as e:
        return str(e)[:200]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connection_limits(work, runner, folder):
    """With --max-connections 8 and 2 s for a client: twelve silent gRPC connections, 8 of them open and the
    rest waiting in the listen queue with a tritonclient call behind them, which is answered once the silent
    ones have been closed; REST's open connections counted as they come and go; then a runner allowed 256 open files (its default --max-connections fitted to 64)
    under 300 silent gRPC connections: it spins no core, REST answers at once, and gRPC answers once they go."""
    model = os.path.join(folder, "model.onnx")
    rows = {"features": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)}
    expected = ort_outputs(model, rows)
    process, url, grpc_url = start_runner(runner, model, work, "connections",
                                          ["--engine", "ort", "--name", "sentiment", "--max-connections", "8",
                                           "--client-timeout-s", "2"])
    silent = []
    try:
        silent = silent_connections(grpc_url, 12)
        time.sleep(0.5)
        opened = metric(url, OPEN)
        started = time.monotonic()
        answered = answers(grpc_url, rows, expected)
        took = time.monotonic() - started
        check(opened == 8 and answered is True and 1.2 <= took <= 10,
              f"with --max-connections 8, of twelve gRPC connections that send nothing {opened:.0f} are open and the "
              f"rest wait in the listen queue with a tritonclient call behind them; the silent ones are closed 2 s "
              f"after they came (--client-timeout-s) and the call is answered with ONNX Runtime's numbers after "
              f"{took:.1f} s ({answered})")
        time.sleep(2.5)
        opened = metric(url, OPEN)
        check(opened == 0, f"the silent connections that came after are closed too ({opened:.0f} open)")
        rest_silent = silent_connections(url, 3)
        silent.extend(rest_silent)
        time.sleep(0.5)
        during = metric(url, REST_OPEN)
        for sock in rest_silent:
            sock.close()
        time.sleep(0.5)
        after = metric(url, REST_OPEN)
        check(during == 4 and after == 1,
              f"REST's open connections are counted: three silent ones and the scrape's own ({during:.0f}), then the "
              f"scrape's alone once they close ({after:.0f})")
    finally:
        for sock in silent:
            sock.close()
        process.terminate()
        process.wait(30)

    def few_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    process, url, grpc_url = start_runner(runner, model, work, "connections-files",
                                          ["--engine", "ort", "--name", "sentiment"], preexec_fn=few_files)
    silent = []
    try:
        silent = silent_connections(grpc_url, 300)
        time.sleep(1)
        before = cpu_seconds(process.pid)
        time.sleep(2)
        spent = cpu_seconds(process.pid) - before
        started = time.monotonic()
        try:
            ready = urllib.request.urlopen(f"http://{url}/v2/health/ready", timeout=5).status == 200
            opened = metric(url, OPEN)
        except OSError as e:
            ready, opened = False, str(e)
        took = time.monotonic() - started
        with open(os.path.join(work, "connections-files.log")) as log:
            warned = "limit on open files leaves room for fewer connections" in log.read()
        check(opened == 64 and spent < 0.5 and ready and took < 1 and warned,
              f"a runner allowed 256 open files, under 300 silent gRPC connections, holds {opened} of them (its "
              f"default --max-connections fitted to the limit, and logged), spends {spent:.2f} s of CPU in 2 s, and "
              f"answers REST in {took * 1000:.0f} ms")
        for sock in silent:
            sock.close()
        silent = []
        check(answers(grpc_url, rows, expected) is True,
              "once they have gone, it answers gRPC with ONNX Runtime's numbers")
    finally:
        for sock in silent:
            sock.close()
        process.terminate()
        process.wait(30)


def idle_after_a_call(url):
    """A raw HTTP/2 connection that makes one ModelInfer call of two rows, reads its answer, then stays idle
    answering the server's pings: the seconds until the server said GOAWAY and until it closed the
    connection (None for what did not come within 8 s), and the call's grpc-status."""
    connection = RawGrpc(url)
    connection.send(grpc_message(2), end=True)
    started = time.monotonic()
    goaway = closed = None
    pending = b""
    while time.monotonic() - started < 8 and closed is None:
        try:
            data = connection.sock.recv(1 << 16)
        except (TimeoutError, socket.timeout):
            continue
        except OSError:
            data = b""
        if not data:
            closed = round(time.monotonic() - started, 1)
        frames, pending = whole_frames(pending + data)
        for frame in frames:
            if goaway is None:
                for event in connection.conn.receive_data(frame):
                    if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                        connection.headers.update({k.decode(): v.decode() for k, v in event.headers})
                    if isinstance(event, h2.events.ConnectionTerminated):
                        goaway = round(time.monotonic() - started, 1)
                connection.sock.sendall(connection.conn.data_to_send())
            elif frame[3] == 0x6 and not frame[4] & 0x1:
                # The h2 package takes no frame after GOAWAY, but the server's graceful close sends a PING
                # that a client acknowledges before the connection closes (as gRPC's own clients do).
                connection.sock.sendall(frame[:3] + bytes([0x6, 0x1]) + bytes(4) + frame[9:])
    connection.close()
    return goaway, closed, connection.headers.get("grpc-status")


def whole_frames(data):
    """The whole HTTP/2 frames at the start of `data`, and what is left of a cut one."""
    frames = []
    while len(data) >= 9 and len(data) >= 9 + int.from_bytes(data[:3], "big"):
        end = 9 + int.from_bytes(data[:3], "big")
        frames.append(data[:end])
        data = data[end:]
    return frames, data


def connection_age(work, runner, folder):
    """With --max-connection-age-s 2: a gRPC connection that made a call and then stays idle, answering pings,
    used to keep its place among the open connections for as long as its client liked. Now the runner says
    GOAWAY once the connection is 2 s old and closes it once its calls are over; a tritonclient channel whose
    connection was closed so reconnects for its next call; by default (600 s) the idle connection stays. And a
    stop waits at most 25 s for a client that does not answer its GOAWAY."""
    model = os.path.join(folder, "model.onnx")
    rows = {"features": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)}
    expected = ort_outputs(model, rows)
    for age, name in [(["--max-connection-age-s", "2"], "connection-age"), ([], "connection-age-default")]:
        process, url, grpc_url = start_runner(runner, model, work, name,
                                              ["--engine", "ort", "--name", "sentiment", *age])
        try:
            goaway, closed, status = idle_after_a_call(grpc_url)
            if age:
                check(status == "0" and goaway is not None and 1.5 <= goaway <= 4 and closed is not None
                      and closed < 6 and metric(url, OPEN) == 0,
                      f"with --max-connection-age-s 2, a gRPC connection idle after its call (answered, status "
                      f"{status}) is told GOAWAY at {goaway} s and closed at {closed} s; none open after")
                client = grpcclient.InferenceServerClient(grpc_url)
                first = agrees(grpc_infer(grpc_url, "sentiment", rows, client=client), expected, 1e-5)
                time.sleep(3)
                opened = metric(url, OPEN)
                second = agrees(grpc_infer(grpc_url, "sentiment", rows, client=client), expected, 1e-5)
                client.close()
                check(first and opened == 0 and second,
                      f"a tritonclient channel answered, its connection closed 3 s later ({opened:.0f} open), then "
                      f"answered again over a new one, with ONNX Runtime's numbers")
            else:
                check(status == "0" and goaway is None and closed is None,
                      f"by default the same connection stays open through 8 s idle (GOAWAY {goaway}, closed {closed})")
                # A client that took its answer and then reads nothing more: it never acknowledges the
                # GOAWAY's ping of the runner's stop, which waited for HTTP/2's keepalive (80 s) for it.
                deaf = RawGrpc(grpc_url)
                deaf.send(grpc_message(2), end=True)
                while not deaf.ended:
                    deaf.receive()
                started = time.monotonic()
                process.terminate()
                process.wait(60)
                took = time.monotonic() - started
                deaf.close()
                with open(os.path.join(work, f"{name}.log")) as log:
                    warned = "gRPC connections still open 25 s after the stop" in log.read()
                check(took < 28 and warned,
                      f"a client that never answers the stop's GOAWAY holds the runner's stop {took:.1f} s, and it is "
                      f"logged")
        finally:
            process.terminate()
            process.wait(30)


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

import numpy as np
from tritonclient.utils import InferenceServerException

from serving_client import agrees, check, grpc_infer, metric, ort_outputs, start_runner

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

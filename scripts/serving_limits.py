"""What one request cannot do to a real `kiln-runner serve`: need more memory than the engine may hold, or
an answer larger than the server sends. Without limits ONNX Runtime takes what a request's shapes ask for,
and the kernel kills the process (and every request in it) when that is more than the host has: a 60 MB
request asked a corpus model for 24 GB. With `--max-engine-memory-mib` and `--max-response-mib`, such a
request is refused with the protocol's error naming the flag, over REST and gRPC, and the same process
answers the next request with ONNX Runtime's numbers."""
import os

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from serving_client import agrees, check, grpc_infer, http_infer, ort_outputs, start_runner


FEW = np.array([[0.5, -1.0, 2.0, 0.1], [-2.0, 1.0, 0.3, 0.7], [1.5, 1.5, -0.5, -1.0]], dtype=np.float32)


def refused_then_served(url, grpc_url, model, many, flag, what):
    """`many` refused over REST and gRPC naming `flag`; then three rows answered as ONNX Runtime does."""
    for protocol, infer, address in [("REST", http_infer, url), ("gRPC", grpc_infer, grpc_url)]:
        try:
            infer(address, "sentiment", many)
            refused = "answered"
        except InferenceServerException as e:
            refused = str(e)
        check(flag in refused and "send fewer rows" in refused,
              f"over {protocol}, {what} is refused naming {flag} ({refused[:240]})")
    expected = ort_outputs(model, {"features": FEW})
    check(agrees(http_infer(url, "sentiment", {"features": FEW}), expected, 1e-5)
          and agrees(grpc_infer(grpc_url, "sentiment", {"features": FEW}), expected, 1e-5)
          and httpclient.InferenceServerClient(url).is_server_ready()
          and grpcclient.InferenceServerClient(grpc_url).is_server_ready(),
          f"after refusing {what}, the same process is ready and answers with ONNX Runtime's numbers")


def engine_memory_limit(work, runner, folder):
    """The sentiment classifier (4 features in, 2 logits out a row) under a 4 MiB limit: a million rows
    (16 MB in, 8 MB of logits out, which ONNX Runtime allocates) refused; three rows answered after."""
    model = os.path.join(folder, "model.onnx")
    process, url, grpc_url = start_runner(runner, model, work, "memory-limit",
                                          ["--engine", "ort", "--name", "sentiment", "--max-engine-memory-mib", "4"])
    try:
        refused_then_served(url, grpc_url, model, {"features": np.ones((1_000_000, 4), dtype=np.float32)},
                            "--max-engine-memory-mib", "a request needing more than the engine's memory limit")
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

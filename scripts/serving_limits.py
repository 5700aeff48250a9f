"""What one request cannot do to a real `kiln-runner serve`: need more memory than the engine may hold.
Without a limit ONNX Runtime takes what a request's shapes ask for, and the kernel kills the process (and
every request in it) when that is more than the host has: a 60 MB request asked a corpus model for 24 GB.
With `--max-engine-memory-mib`, the request is refused with the protocol's error naming the flag, over
REST and gRPC, and the same process answers the next request with ONNX Runtime's numbers."""
import os

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from serving_client import agrees, check, grpc_infer, http_infer, ort_outputs, start_runner


def engine_memory_limit(work, runner, folder):
    """The sentiment classifier (4 features in, 2 logits out a row) under a 4 MiB limit: a million rows
    (16 MB in, 8 MB of logits out, which ONNX Runtime allocates) refused; three rows answered after."""
    model = os.path.join(folder, "model.onnx")
    process, url, grpc_url = start_runner(runner, model, work, "memory-limit",
                                          ["--engine", "ort", "--name", "sentiment", "--max-engine-memory-mib", "4"])
    try:
        many = {"features": np.ones((1_000_000, 4), dtype=np.float32)}
        for protocol, infer, address in [("REST", http_infer, url), ("gRPC", grpc_infer, grpc_url)]:
            try:
                infer(address, "sentiment", many)
                refused = "answered"
            except InferenceServerException as e:
                refused = str(e)
            check("--max-engine-memory-mib" in refused and "send fewer rows" in refused,
                  f"over {protocol}, a request needing more than the engine's memory limit is refused naming the "
                  f"flag ({refused[:240]})")
        few = {"features": np.array([[0.5, -1.0, 2.0, 0.1], [-2.0, 1.0, 0.3, 0.7], [1.5, 1.5, -0.5, -1.0]],
                                    dtype=np.float32)}
        expected = ort_outputs(model, few)
        check(process.poll() is None and agrees(http_infer(url, "sentiment", few), expected, 1e-5)
              and agrees(grpc_infer(grpc_url, "sentiment", few), expected, 1e-5),
              "after the refusal the same process answers with ONNX Runtime's numbers (REST and gRPC)")
        status = httpclient.InferenceServerClient(url).is_server_ready() and \
            grpcclient.InferenceServerClient(grpc_url).is_server_ready()
        check(status, "the runner stays ready after the refusal")
    finally:
        process.terminate()
        process.wait(30)

"""ONNX Runtime side of scripts/gpu-bench.sh: the same ONNX files through onnxruntime-gpu's CUDA execution
provider, each run timed with CUDA events on the stream ONNX Runtime computes and copies on (PyTorch's,
handed to it as its compute stream). Two ways: `host_io`, inputs from and outputs to host memory as
kiln-runner's `ort` engine runs (the independent measurement its p50 is checked against), and
`device_io`, inputs and outputs bound on the GPU (what a server keeping tensors on the device sees).
Same session settings as the runner (all graph optimizations, no CUDA graphs).
Usage: gpu_bench_ort.py NAME=MODEL.onnx...  (the files kiln-runner measured; prints JSON)"""
import json
import sys

import numpy as np
import onnxruntime as ort
import torch

models = dict(arg.split("=", 1) for arg in sys.argv[1:])
stream = torch.cuda.current_stream()
provider = ("CUDAExecutionProvider", {
    "device_id": 0,
    "has_user_compute_stream": "1",
    "user_compute_stream": str(stream.cuda_stream),
})


def timed(call, warmup=20, runs=200):
    """p50 in ms of `call`, each run between two CUDA events on ONNX Runtime's stream."""
    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    samples = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(stream)
        call()
        end.record(stream)
        end.synchronize()
        samples.append(start.elapsed_time(end))
    samples.sort()
    return samples[len(samples) // 2]


results = {"onnxruntime": ort.__version__, "providers": ort.get_available_providers(), "models": {}}
for name, path in sorted(models.items()):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=[provider])
    timings = {}
    for batch in (1, 8):
        rng = np.random.default_rng(0)
        feed = {}
        for i in session.get_inputs():
            shape = [d if isinstance(d, int) else batch for d in i.shape]
            feed[i.name] = rng.standard_normal(shape).astype(np.float32)
        binding = session.io_binding()
        on_device = {name: torch.from_numpy(x).cuda() for name, x in feed.items()}
        for name, x in on_device.items():
            binding.bind_input(name, "cuda", 0, np.float32, list(x.shape), x.data_ptr())
        for o in session.get_outputs():
            binding.bind_output(o.name, "cuda", 0)
        timings[str(batch)] = {
            "host_io_p50_ms": timed(lambda: session.run(None, feed)),
            "device_io_p50_ms": timed(lambda: session.run_with_iobinding(binding)),
        }
    results["models"][name] = timings
print(json.dumps(results, indent=1))

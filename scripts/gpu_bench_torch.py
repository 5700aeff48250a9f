"""PyTorch side of scripts/gpu-bench.sh: torchvision models with seeded random weights, exported to ONNX
(the bytes kiln measures) and measured eager on CUDA with CUDA events, batch 1 and 8. Prints JSON."""
import json
import os
import sys

import torch
import torchvision

out = sys.argv[1]
names = ["squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x0_5", "resnet18"]
results = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "models": {}}
for name in names:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    example = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, (example,), os.path.join(folder, "model.onnx"), dynamo=False,
                      input_names=["x"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    model = model.cuda()
    timings = {}
    with torch.inference_mode():
        for batch in (1, 8):
            x = torch.randn(batch, 3, 224, 224, device="cuda")
            for _ in range(20):
                model(x)
            torch.cuda.synchronize()
            samples = []
            for _ in range(200):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model(x)
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end))
            samples.sort()
            timings[str(batch)] = {"p50_ms": samples[len(samples) // 2], "p90_ms": samples[int(len(samples) * 0.9) - 1]}
    results["models"][name] = timings
print(json.dumps(results, indent=1))

"""Table of scripts/gpu-bench.sh: kiln's CUDA runner p50 beside PyTorch eager's, per model and batch size."""
import json
import sys

torch = json.load(open(sys.argv[1]))
print(f"GPU: {torch['device']}; PyTorch {torch['torch']} eager (CUDA events, p50 of 200)")
print()
print("| model | batch | torch eager p50 ms | kiln fp32 p50 ms | kiln/torch | kiln fp16 p50 ms | fp32 max abs err vs CPU | kiln peak MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for path in sys.argv[2:]:
    detail = json.load(open(path))
    name = detail["model"]
    bench = {v["name"]: {b["batch_size"]: b for b in v.get("benchmarks", [])} for v in detail["variants"]}
    failed = [j.get("message") for j in detail["pipeline"] if j["kind"] == "benchmark" and j["state"] == "failed"]
    for batch in (1, 8):
        t = torch["models"].get(name, {}).get(str(batch), {}).get("p50_ms")
        f32 = bench.get("fp32", {}).get(batch)
        f16 = bench.get("fp16", {}).get(batch)
        ratio = f"{f32['p50_ms'] / t:.2f}x" if f32 and t else "-"
        peak = f"{f32['peak_memory_bytes'] / 2**20:.0f}" if f32 and f32.get("peak_memory_bytes") else "-"
        err = f"{f32['max_abs_error']:.1e}" if f32 and f32.get("max_abs_error") is not None else "-"
        print(f"| {name} | {batch} | {t or '-'} | {f32['p50_ms'] if f32 else '-'} | {ratio} | "
              f"{f16['p50_ms'] if f16 else '-'} | {err} | {peak} |")
    for message in failed:
        print(f"| {name} | | benchmark failed: {message} | | | | | |")

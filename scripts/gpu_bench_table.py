"""Table of scripts/gpu-bench.sh: per model and batch size, PyTorch eager, kiln-runner's kiln engine (fp32,
fp16) and, when measured, its ONNX Runtime CUDA engine beside ONNX Runtime timed independently with CUDA
events on the same file. Exits 1 when a runner ONNX Runtime p50 is not within 5 % of the independent one.
Usage: gpu_bench_table.py TORCH.json [--ort-events ORT.json] KILN-SHOW.json..."""
import json
import sys

args = sys.argv[1:]
torch = json.load(open(args.pop(0)))
events = {}
if args and args[0] == "--ort-events":
    args.pop(0)
    events = json.load(open(args.pop(0)))
print(f"GPU: {torch['device']}; PyTorch {torch['torch']} eager (CUDA events, p50 of 200)"
      + (f"; onnxruntime-gpu {events['onnxruntime']} (CUDA events, p50 of 200)" if events else ""))
print()
print("| model | batch | torch eager | kiln fp32 | kiln/torch | kiln fp16 | ORT CUDA (runner) | ORT CUDA (events, host I/O) "
      "| runner/events | within 5 % | ORT CUDA (events, device I/O) | kiln fp32 max abs err vs CPU | kiln peak MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")


def cell(value, digits=3):
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def error(result):
    value = result.get("max_abs_error")
    return f"{value:.1e}" if value is not None else "-"


outside = []
for path in args:
    detail = json.load(open(path))
    name = detail["model"]
    results = {}
    for variant in detail["variants"]:
        for b in variant.get("benchmarks", []):
            results[(variant["name"], b.get("engine", "kiln"), b["batch_size"])] = b
    failed = [j.get("message") for j in detail["pipeline"] if j["kind"] == "benchmark" and j["state"] == "failed"]
    for batch in (1, 8):
        t = torch["models"].get(name, {}).get(str(batch), {}).get("p50_ms")
        f32 = results.get(("fp32", "kiln", batch), {})
        f16 = results.get(("fp16", "kiln", batch), {})
        ort = results.get(("fp32", "onnxruntime", batch), {})
        ev = events.get("models", {}).get(name, {}).get(str(batch), {})
        ratio = ort.get("p50_ms") / ev["host_io_p50_ms"] if ort.get("p50_ms") and ev.get("host_io_p50_ms") else None
        within = "-" if ratio is None else ("yes" if abs(ratio - 1) <= 0.05 else "no")
        if within == "no":
            outside.append(f"{name} batch {batch}")
        peak = f32.get("peak_memory_bytes")
        print(f"| {name} | {batch} | {cell(t)} | {cell(f32.get('p50_ms'))} | "
              f"{cell(f32['p50_ms'] / t, 2) + 'x' if f32.get('p50_ms') and t else '-'} | {cell(f16.get('p50_ms'))} | "
              f"{cell(ort.get('p50_ms'))} | {cell(ev.get('host_io_p50_ms'))} | {cell(ratio, 2)} | {within} | "
              f"{cell(ev.get('device_io_p50_ms'))} | "
              f"{error(f32)} | "
              f"{cell(peak / 2**20, 0) if peak else '-'} |")
    for message in failed:
        print(f"| {name} | | benchmark failed: {message} | | | | | | | | | | |")
if outside:
    print(f"\nrunner ONNX Runtime p50 not within 5 % of CUDA events: {', '.join(outside)}")
    sys.exit(1)

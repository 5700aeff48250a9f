"""Batching a real model whose converter named its batch dimensions apart (tf2onnx's `unk__122` in,
`unk__123` out): `kiln-runner serve` runs two different rows alone and together at load, batches the
model when the batch gives the same rows, and then each of many concurrent requests gets ONNX Runtime's
answer for its own row. A model whose rows change each other is left unbatched."""
import json
import os
import shutil
import threading

import numpy as np

from serving_client import agrees, check, http_infer, ort_outputs, run_together, start_runner


def corpus_model(corpus, key, folder):
    model = next(m for m in json.load(open(os.path.join(corpus, "corpus.json")))["models"] if m["id"] == key)
    os.makedirs(folder, exist_ok=True)
    shutil.copy(os.path.join(corpus, model["model"]), os.path.join(folder, "model.onnx"))
    return os.path.join(folder, "model.onnx")


def each_row_at_once(url, name, model, input_name, rows, tolerance=1e-4):
    """Each row of `rows` sent as its own request, all at once: whether every answer is ONNX Runtime's for
    that row alone, and how many runs the runner made of them."""
    results = [None] * len(rows)
    together = threading.Barrier(len(rows))

    def one(n):
        feeds = {input_name: rows[n:n + 1]}
        together.wait()
        results[n] = agrees(http_infer(url, name, feeds), ort_outputs(model, feeds), tolerance)
    batches = run_together(url, one, len(rows))
    return all(results), batches


def batched_by_probe(work, runner, corpus):
    """magika-standard-v1 (Google's file-type classifier, from the magika package on PyPI): [N, 1536] in,
    [N, 113] out under different names. 16 concurrent one-row requests, each its own bytes."""
    model = corpus_model(corpus, "magika-standard-v1", os.path.join(work, "magika"))
    process, url, _ = start_runner(runner, model, work, "magika",
                                   ["--engine", "ort", "--name", "magika", "--batch-delay-us", "20000"])
    try:
        rows = np.random.default_rng(7).integers(0, 256, size=(16, 1536)).astype(np.float32)
        answered, batches = each_row_at_once(url, "magika", model, "bytes", rows)
        check(answered and batches < 16,
              f"a tf2onnx model with its batch dimensions named apart is batched ({batches:.0f} batches for 16 "
              f"concurrent requests) and each request gets ONNX Runtime's answer for its own row")
    finally:
        process.terminate()
        process.wait(30)
    log = open(os.path.join(work, "magika.log")).read()
    check("batchable=true" in log, "the runner's log says the model is batched")


def left_unbatched(work, runner, model):
    """A model that subtracts the batch's mean from each row ([n, 4] in, [m, 4] out, as a batch norm in
    training mode would): rows run together change each other, so the probe leaves it unbatched, and 8
    concurrent one-row requests each get what ONNX Runtime gives for the row alone (zeros)."""
    process, url, _ = start_runner(runner, model, work, "centered",
                                   ["--engine", "ort", "--name", "centered", "--batch-delay-us", "20000"])
    try:
        rows = np.random.default_rng(5).standard_normal((8, 4)).astype(np.float32)
        answered, batches = each_row_at_once(url, "centered", model, "x", rows, tolerance=1e-6)
        check(answered and batches == 8,
              f"a model whose rows change each other is not batched ({batches:.0f} runs for 8 concurrent "
              f"requests) and each request gets ONNX Runtime's answer for its row alone")
    finally:
        process.terminate()
        process.wait(30)
    log = open(os.path.join(work, "centered.log")).read()
    check("batchable=false" in log and "of two rows run together differs from the rows run alone" in log,
          "the runner's log says why that model is not batched")

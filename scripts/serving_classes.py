"""The classification extension against a real `kiln-runner serve`: tritonclient's `class_count` gives
each row's top classes as ONNX Runtime's scores rank them, as `score:index`, and as `score:index:label`
where the classes have names: an ONNX-ML classifier's own `classlabels_*`, the Hugging Face config.json
that came with the model, or `--labels OUTPUT=FILE`."""
import os
import subprocess

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from serving_client import check, free_port, inputs_of, np_to_datatype, ort_outputs, post_json, start_runner, storage_initializer


def ranked_top(url, grpc_url, model, feeds, name, count):
    """Each protocol's answer for `name` with `class_count`: per row, [(score, index, label or None)]."""
    answers = {
        "REST": httpclient.InferenceServerClient(url).infer(
            model, inputs_of(httpclient, feeds), outputs=[httpclient.InferRequestedOutput(name, class_count=count)]),
        "gRPC": grpcclient.InferenceServerClient(grpc_url).infer(
            model, inputs_of(grpcclient, feeds), outputs=[grpcclient.InferRequestedOutput(name, class_count=count)]),
    }
    ranked = {}
    for protocol, result in answers.items():
        answer = np.asarray(result.as_numpy(name))
        rows = answer.reshape(answer.shape[0] if answer.ndim > 1 else 1, -1)
        ranked[protocol] = (answer.shape, [[parse(v.decode()) for v in row] for row in rows])
    return ranked


def parse(entry):
    score, index, *label = entry.split(":", 2)
    return float(score), int(index), label[0] if label else None


def expected_top(scores, count):
    rows = scores.reshape(scores.shape[0], -1)
    return rows, [[int(i) for i in np.argsort(-row, kind="stable")[:count]] for row in rows]


def classified(url, grpc_url, model, feeds, expected):
    """Each row's top 5 classes (the rest of its values, flattened), "score:index", highest first."""
    name, scores = next(iter(expected.items()))
    rows, want = expected_top(scores, 5)
    for protocol, (shape, ranked) in ranked_top(url, grpc_url, model, feeds, name, 5).items():
        indices = [[i for _, i, _ in row] for row in ranked]
        close = all(np.allclose([s for s, _, _ in got], row[w], rtol=1e-4, atol=1e-4)
                    for got, row, w in zip(ranked, rows, want))
        unnamed = all(label is None for row in ranked for _, _, label in row)
        check(indices == want and close and unnamed and shape == (len(rows), 5),
              f"classification over {protocol}: each row's top 5 as ONNX Runtime ranks them ({indices}, want {want})")
    status, body = post_json(f"http://{url}/v2/models/{model}/infer", {
        "inputs": [{"name": n, "datatype": np_to_datatype(v), "shape": list(v.shape), "data": v.reshape(-1).tolist()}
                   for n, v in feeds.items()],
        "outputs": [{"name": name, "parameters": {"classification": 0}}]})
    check(status == 400 and "positive number of classes" in body["error"], f"REST: classification 0 is 400 ({body})")


def named(url, grpc_url, model, feeds, name, scores, labels, source):
    """The top 2 classes of each row named by `labels`, over REST and gRPC."""
    rows, want = expected_top(scores, 2)
    for protocol, (_, ranked) in ranked_top(url, grpc_url, model, feeds, name, 2).items():
        got = [[(i, label) for _, i, label in row] for row in ranked]
        wanted = [[(i, labels[i]) for i in row] for row in want]
        check(got == wanted, f"classification over {protocol} names the classes {source} ({got}, want {wanted})")


def maps_left_out(url, grpc_url, feeds, expected):
    """skl2onnx's ZipMap output (a sequence of maps) is left out: the metadata lists the tensor outputs, an
    answer has them with ONNX Runtime's values, and asking for the maps is refused saying why."""
    metadata = httpclient.InferenceServerClient(url).get_model_metadata("iris")
    check([o["name"] for o in metadata["outputs"]] == ["label", "probabilities"],
          f"skl2onnx's ZipMap output is left out of the model's metadata ({metadata['outputs']})")
    answer = grpcclient.InferenceServerClient(grpc_url).infer("iris", inputs_of(grpcclient, feeds))
    check([o.name for o in answer.get_response().outputs] == ["label", "probabilities"]
          and list(answer.as_numpy("label").astype(str)) == list(expected["label"])
          and np.allclose(answer.as_numpy("probabilities"), expected["probabilities"], atol=1e-6),
          "a classifier with a ZipMap answers with its label and probability tensors, ONNX Runtime's values")
    for module, client, refusal in [(httpclient, httpclient.InferenceServerClient(url), "400"),
                                    (grpcclient, grpcclient.InferenceServerClient(grpc_url),
                                     "StatusCode.INVALID_ARGUMENT")]:
        try:
            client.infer("iris", inputs_of(module, feeds), outputs=[module.InferRequestedOutput("output_probability")])
            check(False, f"asking for the ZipMap's maps over {module.__name__} is refused")
        except InferenceServerException as e:
            check(str(e.status()) == refusal and "is a sequence or a map" in e.message() and "zipmap" in e.message(),
                  f"asking for the ZipMap's maps is {refusal}, saying why and what to ask for ({e.message()[:160]})")


def labeled(work, runner, classifier_path):
    """An ONNX-ML LinearClassifier served from its folder on ONNX Runtime: its classes named by its own
    `classlabels_strings`, then by `--labels`, which wins; a label file of the wrong length is refused. Its
    ZipMap output, as skl2onnx writes by default, is left out (`maps_left_out`)."""
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)
    expected = ort_outputs(classifier_path, {"X": x})
    scores = expected["probabilities"]
    for extra, labels, source in [
        ([], ["setosa", "versicolor", "virginica"], "by the classifier's own labels"),
        (["--labels", f"probabilities={write_labels(work, 'latin', ['I. setosa', 'I. versicolor', 'I. virginica'])}"],
         ["I. setosa", "I. versicolor", "I. virginica"], "from --labels, over the model's own"),
    ]:
        process, url, grpc_url = start_runner(runner, classifier_path, work, "classifier",
                                              ["--engine", "ort", "--name", "iris", *extra])
        try:
            named(url, grpc_url, "iris", {"X": x}, "probabilities", scores, labels, source)
            if not extra:
                maps_left_out(url, grpc_url, {"X": x}, expected)
        finally:
            process.terminate()
            process.wait(30)
    short = write_labels(work, "short", ["only", "two"])
    refused = subprocess.run([runner, "serve", "--model-dir", classifier_path, "--engine", "ort",
                              "--labels", f"probabilities={short}", "--http-listen", f"127.0.0.1:{free_port()}",
                              "--grpc-listen", f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60)
    check(refused.returncode != 0 and '2 labels for output "probabilities", which holds 3 classes' in refused.stderr,
          f"--labels with a wrong number of labels is refused at start ({refused.stderr.strip()[-200:]})")


def named_by_config(work, cli, runner, folder):
    """A classifier exported with its Hugging Face config.json (Optimum's layout): the columns of its
    `logits` named by the config's `id2label`, served from its folder, from the registry, where the
    config is one of the version's files, and from what KServe's storage initializer laid out for a
    `kiln://...#VARIANT` URI (the variant's files, with the version's config.json beside its model)."""
    x = np.array([[0.5, -1.0, 2.0, 0.1], [-2.0, 1.0, 0.3, 0.7], [1.5, 1.5, -0.5, -1.0]], dtype=np.float32)
    model = os.path.join(folder, "model.onnx")
    scores = ort_outputs(model, {"features": x})["logits"]
    initialized = storage_initializer(cli, work, "kiln://acme/sentiment@production#onnx", "sentiment-initialized")
    check(os.path.isfile(os.path.join(initialized, "config.json")),
          f"the storage initializer puts the version's config.json beside the variant ({os.listdir(initialized)})")
    for reference, source in [(model, "from its folder"), ("acme/sentiment:1", "from the registry"),
                              (initialized, "from a kiln:// variant's storage initializer")]:
        name = "sentiment-" + source.split()[-1]
        process, url, grpc_url = start_runner(runner, reference, work, name,
                                              ["--engine", "ort", "--name", "sentiment"])
        try:
            named(url, grpc_url, "sentiment", {"features": x}, "logits", scores, ["NEGATIVE", "POSITIVE"],
                  f"by the config.json that came with the model, served {source}")
        finally:
            process.terminate()
            process.wait(30)


def write_labels(work, name, labels):
    path = f"{work}/{name}-labels.txt"
    with open(path, "w") as f:
        f.write("\n".join(labels) + "\n")
    return path

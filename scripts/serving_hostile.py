"""Hostile requests against `kiln-runner serve`: valid requests of three models (FP32 rows, strings, INT64
token ids) mutated at random, by a seeded generator, over REST (JSON tensors, the binary-data extension and
raw bytes, some compressed, cut, or said to be compressed and not) and gRPC (typed and raw contents, and
the protobuf message's bytes themselves, one in five compressed). Every answer
must be one the protocol defines for the client's mistake: REST 200 or a 4xx with a JSON body naming the
problem, gRPC OK, INVALID_ARGUMENT or NOT_FOUND with its text (never a 5xx, INTERNAL or UNKNOWN, never a
dropped connection), the text at most about 1 kB whatever the request echoed. Then the same requests from
three threads while two others send valid ones, batched with them: each valid one gets ONNX Runtime's
numbers. Afterwards the process is alive, holds nothing for requests in flight and answers correctly.

Usage (scripts/serving-test.sh runs it with its defaults):
  serving_hostile.py WORK RUNNER [--cases N] [--seed S]"""
import argparse
import copy
import gzip
import http.client
import json
import os
import random
import sys
import threading
import zlib

import grpc
import numpy as np
import onnx
from onnx import TensorProto, helper
from tritonclient.grpc import service_pb2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving_client import agrees, check, failures, grpc_infer, http_infer, metric, ort_outputs, start_runner  # noqa: E402

DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
             "FP64", "BYTES", "BF16"]
ODD_VALUES = [None, True, -1, 0, 1, 2 ** 31, 2 ** 63, 2 ** 64, -2 ** 63 - 1, 1.5, -0.0, 1e308, float("nan"),
              float("-inf"), "NaN", "\u0000NaN", "", "x", "4",
              "\u0000", "\ud7ff\u00e9", [], {}, [[]], [None], {"a": 1}, "a" * 5000]
# What a request of a few kB may be answered: RESOURCE_EXHAUSTED was a 10 kB name echoed in the error's
# trailer, past what gRPC clients accept; INTERNAL a message that did not decode.
GRPC_ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
# The most of an error's text the runner sends (its MAX_ERROR_TEXT, and the note of what it left out).
MAX_ERROR = 1100


def write_models(folder):
    """The drill's models, each in its own folder: FP32 rows (batched), strings (ONNX Runtime only), INT64
    ids through a Gather (a negative or out-of-range id is the engine's own error)."""
    paths = {}

    def save(name, graph, opsets):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
        model.ir_version = 8
        onnx.checker.check_model(model)
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        paths[name] = os.path.join(folder, name, "model.onnx")
        onnx.save(model, paths[name])

    weights = helper.make_tensor("weights", TensorProto.FLOAT, [4, 2], [0.9, -0.4, -1.1, 0.8, 0.3, 0.2, -0.5, 1.2])
    save("rows", helper.make_graph(
        [helper.make_node("MatMul", ["features", "weights"], ["logits"])], "rows",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])], [weights]), [("", 17)])
    save("words", helper.make_graph(
        [helper.make_node("LabelEncoder", ["text"], ["ids"], domain="ai.onnx.ml", keys_strings=["a", "b"],
                          values_int64s=[1, 2], default_int64=-1)], "words",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch"])]), [("", 17), ("ai.onnx.ml", 2)])
    table = helper.make_tensor("table", TensorProto.FLOAT, [8, 3], [i / 7 for i in range(24)])
    save("tokens", helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["embedded"])], "tokens",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("embedded", TensorProto.FLOAT, ["batch", "length", 3])], [table]),
        [("", 17)])
    return paths


VALID = {
    "rows": {"name": "features", "datatype": "FP32", "shape": [2, 4], "data": [0.5, -1, 2, 0.25, 1, 1, 1, 1]},
    "words": {"name": "text", "datatype": "BYTES", "shape": [3], "data": ["a", "b", "zz"]},
    "tokens": {"name": "ids", "datatype": "INT64", "shape": [1, 3], "data": [1, 7, 0]},
}
OUTPUTS = {"rows": "logits", "words": "ids", "tokens": "embedded"}


def mutate_tensor(rng, tensor):
    key = rng.choice(["name", "datatype", "shape", "data", "values", "values", "parameters", "drop", "extra"])
    if key == "values" and isinstance(tensor.get("data"), list):
        # Of the right count and type, so that they pass the signature's checks: what the engine refuses
        # (an id outside the embedding table) or computes (infinities) on its own.
        extremes = ["", "a" * 100, "\u00e9"] if tensor.get("datatype") == "BYTES" else \
            [8, -9, 300, 2 ** 62, -2 ** 63, 0] if tensor.get("datatype") == "INT64" else [3e38, -3e38, 1e-45, 0]
        tensor["data"] = [rng.choice(extremes) for _ in tensor["data"]]
    elif key == "values":
        tensor["data"] = []
    elif key == "drop":
        tensor.pop(rng.choice(list(tensor)), None)
    elif key == "extra":
        tensor[rng.choice(["contents", "id", "data ", "SHAPE"])] = rng.choice(ODD_VALUES)
    elif key == "name":
        tensor["name"] = rng.choice(ODD_VALUES + ["nope", "features", "text", "ids", "é" * 3])
    elif key == "datatype":
        tensor["datatype"] = rng.choice(DATATYPES + ["FP8", "fp32", "INT128", "", 7, None])
    elif key == "shape":
        tensor["shape"] = rng.choice([[], [-1, 4], [2 ** 62, 4], [2 ** 31, 2 ** 31, 2 ** 31], [0, 4], [0],
                                      [1, 4, 1], "2,4", [1.5, 4], [True, 4], None, [[2], 4], [1] * 70,
                                      [2 ** 64], [8], [4, 2], [-2 ** 63]])
    elif key == "data":
        tensor["data"] = rng.choice([[], [[1, 2], [3]], ["a"] * 8, [True] * 8, [None] * 8, [1e39] * 8,
                                     [-1e39] * 8, [2 ** 64] * 8, [-1] * 8, [[[[[[1]]]]]], "abc", 5, {"x": 1},
                                     [0.5] * 7, [0.5] * 9, [[0.5] * 4] * 2, [300] * 8, [{}] * 8, [[]] * 8,
                                     ["\u0000"] * 3, [1] * 100000])
    else:
        tensor["parameters"] = rng.choice([None, 5, [], {"binary_data_size": rng.choice(ODD_VALUES)},
                                           {"x": {"y": 1}}, {str(i): i for i in range(100)}])


def mutate_request(rng, request, output):
    for _ in range(rng.randint(1, 3)):
        where = rng.random()
        if where < 0.55 and isinstance(request.get("inputs"), list) and request["inputs"] \
                and isinstance(request["inputs"][0], dict):
            mutate_tensor(rng, request["inputs"][0])
        elif where < 0.7:
            request["outputs"] = rng.choice([
                [{"name": "nope"}], [{"name": output}] * 3, "x", [{}], [{"name": output, "parameters": {
                    "classification": rng.choice(ODD_VALUES)}}],
                [{"name": output, "parameters": {"binary_data": rng.choice(ODD_VALUES)}}], [None], {}])
        elif where < 0.8:
            request["inputs"] = rng.choice([[], {}, None, "x", [request["inputs"][0]] * 2 if request.get("inputs")
                                            else [], [None], [[]]])
        elif where < 0.9:
            request["parameters"] = rng.choice([None, [], {"binary_data_output": rng.choice(ODD_VALUES)},
                                                {"sequence_id": 2 ** 70}, {"a": [1, 2]}])
        else:
            request[rng.choice(["id", "model_name", "extra"])] = rng.choice(ODD_VALUES)
    return request


def rest_case(rng, model):
    """(path, headers, body) of one hostile REST request."""
    path = f"/v2/models/{model}/infer"
    request = {"inputs": [copy.deepcopy(VALID[model])]}
    kind = rng.random()
    if kind < 0.08:
        path = rng.choice([f"/v2/models/{model}/versions/999/infer", "/v2/models/%00/infer",
                           "/v2/models/../../etc/infer", f"/v2/models/{model}/versions//infer",
                           "/v2/models/" + "m" * 10000 + "/infer", f"/v2/models/{model}/infer?x=%zz"])
    body = json.dumps(mutate_request(rng, request, OUTPUTS[model]) if kind >= 0.08 else request).encode()
    headers = {"Content-Type": "application/json"}
    if 0.7 <= kind < 0.85:
        # The binary-data extension: a JSON header, then the tensor's bytes, sized wrongly or rightly.
        raw = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 7, 8, 32, 33])))
        tensor = {key: value for key, value in VALID[model].items() if key != "data"}
        tensor["parameters"] = {"binary_data_size": rng.choice([len(raw), len(raw) + 1, -1, 2 ** 63, "8", 0])}
        header = json.dumps({"inputs": [tensor]}).encode()
        body = header + raw
        headers["Inference-Header-Content-Length"] = rng.choice(
            [str(len(header)), str(len(header) + 5), str(len(body) + 1), "-1", "abc", "0", str(2 ** 64), ""])
    elif 0.85 <= kind < 0.95:
        at = rng.randrange(len(body))
        body = body[:at] + bytes([rng.getrandbits(8)]) + body[at + 1:] if rng.random() < 0.6 else body[:at]
    elif kind >= 0.95:
        body = rng.choice([b"[" * 100000, b"{\"inputs\":" * 5000, bytes(rng.getrandbits(8) for _ in range(200)),
                           b"\xef\xbb\xbf{}", b"null", b"1e999999", b'{"inputs": [{"shape": [1e999]}]}'])
    if rng.random() < 0.1:
        # Compressed as tritonclient compresses (or said to be, and not, or cut), or of an encoding not read.
        encoding = rng.choice(["gzip", "deflate", "GZIP", "br", "gzip, deflate", ""])
        headers["Content-Encoding"] = encoding
        if encoding.lower() in ("gzip", "deflate") and rng.random() < 0.8:
            packed = gzip.compress(body) if encoding.lower() == "gzip" else zlib.compress(body)
            body = packed if rng.random() < 0.7 else packed[:rng.randrange(len(packed) + 1)]
    return path, headers, body


def rest_answer(url, case):
    """The status and body of one request on its own connection; a dropped connection is (None, error)."""
    path, headers, body = case
    host, port = url.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    except (OSError, http.client.HTTPException) as e:
        return None, repr(e).encode()
    finally:
        connection.close()


def rest_acceptable(status, body):
    if status == 200:
        return True
    if status is None or not 400 <= status < 500:
        return False
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, str) and 0 < len(error.encode()) <= MAX_ERROR


def grpc_tensor(model):
    valid = VALID[model]
    tensor = service_pb2.ModelInferRequest().InferInputTensor(name=valid["name"], datatype=valid["datatype"],
                                                                shape=valid["shape"])
    contents = tensor.contents
    if model == "rows":
        contents.fp32_contents.extend(valid["data"])
    elif model == "words":
        contents.bytes_contents.extend(v.encode() for v in valid["data"])
    else:
        contents.int64_contents.extend(valid["data"])
    return tensor


def grpc_case(rng, model):
    """The serialized bytes of one hostile ModelInferRequest."""
    request = service_pb2.ModelInferRequest(model_name=model)
    tensor = grpc_tensor(model)
    raw = None
    for _ in range(rng.randint(1, 3)):
        what = rng.choice(["shape", "datatype", "name", "contents", "raw", "outputs", "parameters", "model",
                           "version", "twice"])
        if what == "shape":
            del tensor.shape[:]
            tensor.shape.extend(rng.choice([[], [-1, 4], [2 ** 62, 4], [2 ** 31, 2 ** 31, 2 ** 31], [0, 4],
                                            [1] * 70, [2 ** 63 - 1], [-2 ** 63], [8], [3]]))
        elif what == "datatype":
            tensor.datatype = rng.choice(DATATYPES + ["", "FP8", "x" * 1000])
        elif what == "name":
            tensor.name = rng.choice(["", "nope", "\u00e9", "a" * 10000])
        elif what == "contents":
            field = rng.choice(["bool_contents", "int_contents", "int64_contents", "uint_contents",
                                "uint64_contents", "fp32_contents", "fp64_contents", "bytes_contents"])
            values = {"bool_contents": [True] * 8, "bytes_contents": [b"\x00", b"", b"\xff" * 9],
                      "fp32_contents": [float("nan"), 1e38, -0.0]}.get(field, [1, 2, 3, 4, 5, 6, 7, 8])
            getattr(tensor.contents, field).extend(values * rng.choice([1, 2, 1000]))
        elif what == "raw":
            raw = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 3, 24, 32, 33, 4096])))
        elif what == "outputs":
            output = request.outputs.add(name=rng.choice([OUTPUTS[model], "nope", ""]))
            parameter = output.parameters[rng.choice(["classification", "binary_data", "x"])]
            choice = rng.random()
            if choice < 0.4:
                parameter.int64_param = rng.choice([-1, 0, 2 ** 62, 3])
            elif choice < 0.7:
                parameter.string_param = rng.choice(["2", "", "x"])
            else:
                parameter.bool_param = True
        elif what == "parameters":
            parameter = request.parameters[rng.choice(["binary_data_output", "sequence_id", "priority", "x"])]
            parameter.int64_param = rng.choice([-1, 2 ** 62])
        elif what == "model":
            request.model_name = rng.choice(["", "nope", "a" * 10000, "\u00e9"])
        elif what == "version":
            request.model_version = rng.choice(["999", "-1", "1", "x"])
        else:
            request.inputs.add().CopyFrom(tensor)
    request.inputs.add().CopyFrom(tensor)
    if raw is not None:
        request.raw_input_contents.append(raw)
        if rng.random() < 0.5:
            request.inputs[-1].ClearField("contents")
    message = request.SerializeToString()
    if rng.random() < 0.2:
        # The message's bytes themselves: a byte changed, or cut short.
        at = rng.randrange(len(message))
        message = message[:at] + bytes([rng.getrandbits(8)]) + message[at + 1:] if rng.random() < 0.6 \
            else message[:at]
    return message


def drill(url, grpc_url, models, cases, rng):
    """Runs `cases` REST and `cases` gRPC requests; returns the unacceptable answers and counts by outcome."""
    bad, outcomes = [], {}
    channel = grpc.insecure_channel(grpc_url, options=[("grpc.max_send_message_length", 64 << 20)])
    infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                request_serializer=None, response_deserializer=None)
    for n in range(cases):
        model = rng.choice(models)
        case = rest_case(rng, model)
        status, body = rest_answer(url, case)
        outcomes[f"REST {status}"] = outcomes.get(f"REST {status}", 0) + 1
        if not rest_acceptable(status, body):
            bad.append(("REST", model, case[0], case[1], case[2][:300], status, body[:300]))
        message = grpc_case(rng, model)
        # Some compressed by grpcio (`grpc-encoding`), as tritonclient's compression_algorithm sends them.
        compression = rng.choice([None] * 8 + [grpc.Compression.Gzip, grpc.Compression.Deflate])
        try:
            infer(message, timeout=30, compression=compression)
            code, detail = grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            code, detail = e.code(), e.details() or ""
        outcomes[f"gRPC {code.name}"] = outcomes.get(f"gRPC {code.name}", 0) + 1
        if code not in GRPC_ALLOWED or (code != grpc.StatusCode.OK and not 0 < len(detail.encode()) <= MAX_ERROR):
            bad.append(("gRPC", model, message[:300], code, detail))
    channel.close()
    return bad, outcomes


def valid_feeds(model, rng):
    if model == "rows":
        return {"features": np.array([[rng.uniform(-2, 2) for _ in range(4)]], dtype=np.float32)}
    return {"ids": np.array([[rng.randrange(8) for _ in range(3)]], dtype=np.int64)}


def alongside(url, grpc_url, model, path, cases, rng):
    """Hostile requests from three threads while two others send valid ones, batched with them: the
    unacceptable hostile answers, and the valid requests answered with other than ONNX Runtime's numbers."""
    bad, wrong = [], []
    seeds = [rng.random() for _ in range(5)]
    runs, rows = metric(url, "kiln_serve_batch_size_count"), metric(url, "kiln_serve_batch_size_sum")

    def hostile(seed):
        try:
            found, _ = drill(url, grpc_url, [model], cases, random.Random(seed))
            bad.extend(found)
        except Exception as e:  # noqa: BLE001 - a thread that stops early must fail the check, not pass it
            bad.append(("drill stopped", repr(e)[:300]))

    def valid(seed, over_grpc):
        local = random.Random(seed)
        for _ in range(cases):
            feeds = valid_feeds(model, local)
            expected = ort_outputs(path, feeds)
            try:
                answer = grpc_infer(grpc_url, model, feeds) if over_grpc else http_infer(url, model, feeds)
                if not agrees(answer, expected, 1e-5):
                    wrong.append(("numbers", feeds))
            except Exception as e:  # noqa: BLE001 - any failure of a valid request is the finding
                wrong.append((repr(e)[:300], feeds))

    threads = [threading.Thread(target=hostile, args=(seed,)) for seed in seeds[:3]]
    threads += [threading.Thread(target=valid, args=(seed, n == 1)) for n, seed in enumerate(seeds[3:])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = metric(url, "kiln_serve_batch_size_count") - runs
    rows = metric(url, "kiln_serve_batch_size_sum") - rows
    return bad, wrong, rows / max(runs, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("work")
    parser.add_argument("runner")
    parser.add_argument("--cases", type=int, default=1200, help="REST and gRPC requests for each engine")
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    paths = write_models(os.path.join(args.work, "hostile"))
    for engine, models in [("ort", ["rows", "words", "tokens"]), ("kiln", ["rows", "tokens"])]:
        rng = random.Random(f"{args.seed}-{engine}")
        runners = []
        try:
            for model in models:
                runners.append(start_runner(args.runner, paths[model], args.work, f"hostile-{engine}-{model}",
                                            ["--engine", engine, "--name", model, "--max-batch-size", "8"],
                                            server=None))
            bad, outcomes = [], {}
            share = max(1, args.cases // len(models))
            for model, (process, url, grpc_url) in zip(models, runners):
                found, counted = drill(url, grpc_url, [model], share, rng)
                bad += found
                for key, count in counted.items():
                    outcomes[key] = outcomes.get(key, 0) + count
            alive = all(process.poll() is None for process, _, _ in runners)
            held = sum(metric(url, "kiln_serve_in_flight_bytes") for _, url, _ in runners)
            for example in bad[:5]:
                print(f"     unacceptable: {example}")
            check(not bad and alive and held == 0,
                  f"{engine}: {share * len(models)} hostile REST and {share * len(models)} hostile gRPC requests "
                  f"(seed {args.seed}) each answered as the protocol defines, {len(bad)} not; the runners alive, "
                  f"nothing held after ({dict(sorted(outcomes.items()))})")
            for model, (process, url, grpc_url) in zip(models, runners):
                if model == "words":
                    continue
                bad, wrong, per_run = alongside(url, grpc_url, model, paths[model], max(1, share // 3), rng)
                for example in (bad + wrong)[:5]:
                    print(f"     unacceptable: {example}")
                check(not bad and not wrong and process.poll() is None and per_run > 1,
                      f"{engine}: {model}: hostile requests from three threads while two send valid ones, batched "
                      f"together: every valid request answered with ONNX Runtime's numbers ({len(wrong)} not), "
                      f"every hostile one as the protocol defines ({len(bad)} not; {per_run:.2f} rows a run)")
            process, url, grpc_url = runners[0]
            feeds = {"features": np.array([[0.5, -1, 2, 0.25]], dtype=np.float32)}
            expected = ort_outputs(paths["rows"], feeds)
            check(agrees(http_infer(url, "rows", feeds), expected, 1e-5)
                  and agrees(grpc_infer(grpc_url, "rows", feeds), expected, 1e-5),
                  f"{engine}: then a valid request is answered with ONNX Runtime's numbers over REST and gRPC")
        finally:
            for process, _, _ in runners:
                process.terminate()
                process.wait(30)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Models whose signatures are legal ONNX but off the common path, each served from its folder on ONNX
Runtime and on kiln's evaluator and called by tritonclient over REST JSON and gRPC, the answers ONNX
Runtime's (Python): no inputs at all; inputs and outputs of no declared shape; a graph output that is a
graph input too (ONNX Runtime hands it back sharing the input's buffer: served before 2026-12-06 from
freed memory); rank-0 tensors; an input with an initializer as its default, left out of the request; names
with `:`, `/`, a space and a non-ASCII letter, as TensorFlow's converters write them. Called by
serving_test.py."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tritonclient.utils import InferenceServerException

from serving_client import check, grpc_infer, http_infer, ort_outputs, start_runner

FLOAT = TensorProto.FLOAT


def graphs():
    """name: (graph, the request's inputs)."""
    value = helper.make_tensor_value_info
    return {
        "no inputs": (helper.make_graph(
            [helper.make_node("Constant", [], ["y"],
                              value=numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3)))],
            "constant", [], [value("y", FLOAT, [2, 3])]), {}),
        "no declared shapes": (helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])], "shapeless", [value("x", FLOAT, None)],
            [value("y", FLOAT, None)]), {"x": np.array([[-1.0, 2.0, 0.5], [3.0, -4.0, 1e-3]], np.float32)}),
        "an output that is an input": (helper.make_graph(
            [helper.make_node("Neg", ["x"], ["negated"])], "passthrough", [value("x", FLOAT, ["n", 3])],
            [value("x", FLOAT, ["n", 3]), value("negated", FLOAT, ["n", 3])]),
            {"x": np.array([[1.5, -2.0, 3.25], [4.0, 5.0, -6.5]], np.float32)}),
        "rank 0": (helper.make_graph(
            [helper.make_node("Mul", ["x", "x"], ["y"])], "scalar", [value("x", FLOAT, [])], [value("y", FLOAT, [])]),
            {"x": np.array(3.5, np.float32)}),
        "an input with a default": (helper.make_graph(
            [helper.make_node("Add", ["x", "bias"], ["y"])], "defaulted",
            [value("x", FLOAT, ["n", 2]), value("bias", FLOAT, [2])], [value("y", FLOAT, ["n", 2])],
            [numpy_helper.from_array(np.array([10, 20], np.float32), "bias")]),
            {"x": np.array([[1.0, 2.0]], np.float32)}),
        "TensorFlow-style names": (helper.make_graph(
            [helper.make_node("Relu", ["serving_default_input:0"], ["StatefulPartitionedCall/é 1:0"])], "names",
            [value("serving_default_input:0", FLOAT, ["n", 2])],
            [value("StatefulPartitionedCall/é 1:0", FLOAT, ["n", 2])]),
            {"serving_default_input:0": np.array([[-1.0, 2.0]], np.float32)}),
    }


def odd_signatures(work, runner):
    for name, (graph, feeds) in graphs().items():
        folder = os.path.join(work, "signature-" + name.replace(" ", "-"))
        os.makedirs(folder, exist_ok=True)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, os.path.join(folder, "model.onnx"))
        expected = ort_outputs(os.path.join(folder, "model.onnx"), feeds)
        for engine in ("ort", "kiln"):
            process, url, grpc_url = start_runner(runner, folder, work, f"{os.path.basename(folder)}-{engine}",
                                                  ["--engine", engine])
            try:
                wrong = []
                for protocol, call in [("REST", lambda: http_infer(url, "model", feeds, binary=False)),
                                       ("gRPC", lambda: grpc_infer(grpc_url, "model", feeds))]:
                    try:
                        answer = call()
                        wrong += [f"{protocol} {output}: {answer.as_numpy(output)}" for output, want in expected.items()
                                  if not np.array_equal(answer.as_numpy(output), want)]
                    except InferenceServerException as e:
                        wrong.append(f"{protocol}: {e}"[:300])
                check(not wrong, f"a model with {name} on {engine}: ONNX Runtime's outputs over REST and gRPC"
                                 + (f" ({wrong})" if wrong else ""))
            finally:
                process.terminate()
                process.wait(30)

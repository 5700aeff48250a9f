"""Every numeric datatype of the protocol through a real `kiln-runner serve` and back: a model of one
`Identity` per ONNX element type (BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64), on ONNX Runtime and
on kiln's evaluator, called by tritonclient over REST in JSON and in binary data and over gRPC with each
type's extremes, and for the floats NaN, both infinities and -0.0: every value must come back bit for
bit. In JSON, NaN and the infinities go as tritonclient writes them and Triton reads and writes them
(`NaN`, `Infinity`, `-Infinity`, which strict JSON lacks). Called by serving_test.py."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper
from tritonclient.utils import InferenceServerException

from serving_client import check, grpc_infer, http_infer, start_runner

TYPES = {"bool": (TensorProto.BOOL, np.bool_), "uint8": (TensorProto.UINT8, np.uint8),
         "uint16": (TensorProto.UINT16, np.uint16), "uint32": (TensorProto.UINT32, np.uint32),
         "uint64": (TensorProto.UINT64, np.uint64), "int8": (TensorProto.INT8, np.int8),
         "int16": (TensorProto.INT16, np.int16), "int32": (TensorProto.INT32, np.int32),
         "int64": (TensorProto.INT64, np.int64), "float16": (TensorProto.FLOAT16, np.float16),
         "float": (TensorProto.FLOAT, np.float32), "double": (TensorProto.DOUBLE, np.float64)}


def echo_model(folder):
    os.makedirs(folder, exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("Identity", [f"in_{name}"], [f"out_{name}"]) for name in TYPES],
        "echo",
        [helper.make_tensor_value_info(f"in_{name}", onnx_type, ["N", 4]) for name, (onnx_type, _) in TYPES.items()],
        [helper.make_tensor_value_info(f"out_{name}", onnx_type, ["N", 4]) for name, (onnx_type, _) in TYPES.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(folder, "model.onnx"))


def extremes(np_type):
    if np_type == np.bool_:
        return np.array([[True, False, True, True], [False, False, True, False]])
    if np.issubdtype(np_type, np.integer):
        i = np.iinfo(np_type)
        return np.array([[i.min, i.max, 0, 1], [i.max - 1, i.min + 1, 7, 42]], dtype=np_type)
    f = np.finfo(np_type)
    return np.array([[f.min, f.max, f.tiny, -1 / 3], [np.nan, np.inf, -np.inf, -0.0]], dtype=np_type)


def same(got, want):
    """Bit for bit where it matters: the values, NaN where NaN, the sign of zero."""
    if got is None or got.dtype != want.dtype or got.shape != want.shape:
        return False
    if not np.issubdtype(want.dtype, np.floating):
        return np.array_equal(got, want)
    return np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(want))


def every_datatype(work, runner):
    folder = os.path.join(work, "echo")
    echo_model(folder)
    feeds = {f"in_{name}": extremes(np_type) for name, (_, np_type) in TYPES.items()}
    for engine in ("ort", "kiln"):
        process, url, grpc_url = start_runner(runner, folder, work, f"echo-{engine}", ["--engine", engine])
        try:
            for protocol, call in [("REST JSON", lambda: http_infer(url, "model", feeds, binary=False)),
                                   ("REST binary data", lambda: http_infer(url, "model", feeds, binary=True)),
                                   ("gRPC", lambda: grpc_infer(grpc_url, "model", feeds))]:
                try:
                    answer = call()
                    wrong = [name for name in TYPES if not same(answer.as_numpy(f"out_{name}"), feeds[f"in_{name}"])]
                except InferenceServerException as e:
                    wrong = [f"refused: {e}"[:300]]
                check(not wrong, f"every numeric datatype's extremes (NaN, infinities and -0.0 among the floats) "
                                 f"round-trip over {protocol} on {engine}" + (f" (not: {wrong})" if wrong else ""))
        finally:
            process.terminate()
            process.wait(30)

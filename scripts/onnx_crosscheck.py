"""Outside checks of what kiln writes, with ONNX's own Python package (run by scripts/onnx-crosscheck.sh).

1. Models kiln converted pass onnx.checker (full check, with shape inference), and ONNX's reference
   evaluator computes the same outputs kiln's evaluator did (relative L2 below 1e-5); the BERT's and the
   GPT-2's fused variants compute the same in ONNX Runtime.
2. Converted decoders (a bf16 Llama with external data, a GPT-2) decode 16 greedy tokens in ONNX Runtime,
   feeding each step's present keys and values back as the past, and get the tokens kiln's evaluator got.
   Its weight-only variants (int4 MatMulNBits, int4 asymmetric, int4 and int8 blocked DequantizeLinear)
   pass the checker and compute in ONNX Runtime what they compute in kiln's evaluator.
3. kiln's protobuf types drop nothing: a model using fields added up to IR 11 (metadata on graphs, nodes
   and values, local functions, training info, sparse initializers, quantization annotations) decodes and
   encodes to the very same bytes.
"""
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from safetensors.numpy import load_file

exported, roundtrip = sys.argv[1], sys.argv[2]
failures = 0
for name in ["bert", "gpt2", "llama"]:
    model = onnx.load(f"{exported}/{name}.onnx")
    onnx.checker.check_model(model, full_check=True)
    io = load_file(f"{exported}/{name}.io.safetensors")
    feeds = {k: v for k, v in io.items() if k != "output"}
    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    rel = float(np.linalg.norm(expected - io["output"]) / np.linalg.norm(expected))
    ok = rel < 1e-5
    failures += not ok
    print(f"{name}: onnx.checker ok; onnx.reference vs kiln relative L2 {rel:.2e} {'ok' if ok else 'FAILED'}")

# The fused variants (ONNX Runtime's contrib Attention, Gelu and FastGelu, which ONNX's checker and
# reference evaluator do not know) compute in ONNX Runtime what kiln's evaluator computed from the
# converted models: the BERT's on inputs whose second row is padded, the GPT-2's (its tanh GELU fused, its
# causal attention left) on a past of 7 positions and 7 new tokens.
for name, wanted in [("bert", ["com.microsoft.Attention", "com.microsoft.Gelu"]), ("gpt2", ["com.microsoft.FastGelu"])]:
    fused = onnx.load(f"{exported}/{name}-fused.onnx")
    io = load_file(f"{exported}/{name}.io.safetensors")
    if name == "bert":
        assert (io["attention_mask"] == 0).any(), "the inputs are padded"
    session = ort.InferenceSession(f"{exported}/{name}-fused.onnx", providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v for k, v in io.items() if k != "output"})[0]
    rel = float(np.linalg.norm(got - io["output"]) / np.linalg.norm(io["output"]))
    fused_ops = sorted({f"{n.domain or 'ai.onnx'}.{n.op_type}" for n in fused.graph.node if n.domain == "com.microsoft"})
    ok = rel < 1e-5 and fused_ops == wanted
    failures += not ok
    print(f"{name} fused ({', '.join(fused_ops)}): ONNX Runtime {ort.__version__} vs kiln relative L2 {rel:.2e} "
          f"{'ok' if ok else 'FAILED'}")


def ort_decode(session, prompt, steps):
    """Greedy decoding with the cache, as ONNX Runtime GenAI feeds a model of this layout."""
    b = prompt.shape[0]
    past = {
        i.name: np.zeros((b, i.shape[1], 0, i.shape[3]), np.float32)
        for i in session.get_inputs()
        if i.name.startswith("past_key_values.")
    }
    names = [o.name for o in session.get_outputs()]
    ids, total, tokens = prompt, 0, []
    for _ in range(steps):
        n = ids.shape[1]
        feeds = {
            "input_ids": ids,
            "attention_mask": np.ones((b, total + n), np.int64),
            "position_ids": np.tile(np.arange(total, total + n, dtype=np.int64), (b, 1)),
            **past,
        }
        out = dict(zip(names, session.run(None, feeds)))
        ids = out["logits"][:, -1].argmax(-1).astype(np.int64)[:, None]
        tokens.append(ids)
        past = {
            "past_key_values." + k[len("present."):]: v for k, v in out.items() if k.startswith("present.")
        }
        total += n
    return np.concatenate(tokens, 1)


for name in ["llama", "gpt2"]:
    folder = f"{exported}/decoding-{name}"
    session = ort.InferenceSession(f"{folder}/out/model.onnx", providers=["CPUExecutionProvider"])
    io = load_file(f"{folder}/tokens.safetensors")
    got = ort_decode(session, io["prompt"], io["tokens"].shape[1])
    same = np.array_equal(got, io["tokens"])
    failures += not same
    print(f"{name} with its cache: ONNX Runtime {ort.__version__} decodes {got.shape[1]} tokens "
          f"{'as kiln did' if same else 'OTHERWISE: ' + str(got.tolist()) + ' vs ' + str(io['tokens'].tolist())}")

for name in ["int4", "int4-b32-asym", "int4-qdq", "int8-b32"]:
    folder = f"{exported}/decoding-llama/{name}"
    model = onnx.load(f"{folder}/model.onnx")
    onnx.checker.check_model(f"{folder}/model.onnx", full_check=True)
    io = load_file(f"{folder}/io.safetensors")
    feeds = {k: v for k, v in io.items() if not k.startswith("output.")}
    expected = io["output.logits"]
    rel = {}
    # Basic optimizations keep the graph's arithmetic; all of them let ONNX Runtime fuse a blocked int4
    # DequantizeLinear and its MatMul into its own MatMulNBits kernel, which computes with int8
    # activations: reported, not judged.
    for label, level in [("basic", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
                         ("all", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)]:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        session = ort.InferenceSession(f"{folder}/model.onnx", options, providers=["CPUExecutionProvider"])
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))["logits"]
        rel[label] = float(np.linalg.norm(got - expected) / np.linalg.norm(expected))
    ok = rel["basic"] < 1e-4
    failures += not ok
    ops = sorted({n.op_type for n in model.graph.node if n.op_type in ("MatMulNBits", "DequantizeLinear")})
    print(f"llama {name} ({', '.join(ops)}, opset {model.opset_import[0].version}): onnx.checker ok; "
          f"ONNX Runtime vs kiln relative L2 {rel['basic']:.2e} {'ok' if ok else 'FAILED'} "
          f"(with all of ONNX Runtime's fusions: {rel['all']:.2e})")

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
x.metadata_props.append(onnx.StringStringEntryProto(key="unit", value="volts"))
node = helper.make_node("Twice", ["x"], ["y"], domain="kiln.test", name="twice")
node.metadata_props.append(onnx.StringStringEntryProto(key="origin", value="test"))
sparse = helper.make_sparse_tensor(
    numpy_helper.from_array(np.array([1.5], dtype=np.float32), "s"),
    numpy_helper.from_array(np.array([2], dtype=np.int64)),
    [4],
)
graph = helper.make_graph([node], "g", [x], [y], sparse_initializer=[sparse])
graph.metadata_props.append(onnx.StringStringEntryProto(key="graph-note", value="kept"))
graph.quantization_annotation.append(onnx.TensorAnnotation(tensor_name="x"))
twice = helper.make_function(
    "kiln.test", "Twice", ["a"], ["b"],
    [helper.make_node("Add", ["a", "a"], ["b"])],
    [helper.make_opsetid("", 21)],
)
model = helper.make_model(
    graph,
    opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("kiln.test", 1)],
    functions=[twice],
    producer_name="crosscheck",
)
model.ir_version = 11
model.metadata_props.append(onnx.StringStringEntryProto(key="license", value="apache-2.0"))
model.training_info.append(onnx.TrainingInfoProto())
onnx.save(model, f"{exported}/fields.onnx")
subprocess.run([roundtrip, f"{exported}/fields.onnx", f"{exported}/fields.roundtrip.onnx"], check=True)
same = open(f"{exported}/fields.onnx", "rb").read() == open(f"{exported}/fields.roundtrip.onnx", "rb").read()
failures += not same
print(f"round trip of a model with IR 11 fields: {'identical bytes' if same else 'BYTES DIFFER'}")
sys.exit(1 if failures else 0)

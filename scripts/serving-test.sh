#!/usr/bin/env bash
# `kiln-runner serve` against tritonclient (PyPI), the Open Inference Protocol client of Triton and KServe,
# over REST and gRPC (scripts/serving_test.py says what is checked). A throwaway server on the embedded
# default; two versions of a BERT checkpoint kiln converts, aliased `production`; a real ONNX model of the
# corpus (scripts/fetch-onnx-corpus.sh); a model with string tensors; two classifiers; a model that must
# not be batched. Then seeded hostile requests (scripts/serving_hostile.py), and every model of the corpus
# served on both engines (scripts/serving_corpus.py). Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/serving-venv.sh)
export KILN_ONNX_CORPUS="${KILN_ONNX_CORPUS:-$PWD/target/onnx-corpus}"
if [ "$(cat "$KILN_ONNX_CORPUS/fetched-with.sha256" 2>/dev/null)" != "$(sha256sum scripts/onnx_corpus.py | cut -d' ' -f1)" ]; then
  scripts/fetch-onnx-corpus.sh
fi
KILN_ONNXRUNTIME_LIB="$(scripts/fetch-onnxruntime.sh)"
export KILN_ONNXRUNTIME_LIB
cargo build --quiet --workspace --bin kiln-server --bin kiln --bin kiln-runner
cargo build --quiet --workspace --example sample_checkpoint
source scripts/throwaway-server.sh
# Manifests valid for 12 s (re-signed every ~8 s): followers meet re-signed manifests throughout, and the
# expiry check does not wait long.
# Webhooks may go to 127.0.0.1: the runners told of alias moves listen there.
start_throwaway_server target/debug/kiln-server KILN_EMBEDDED_RUNNER=false KILN_MANIFEST_VALIDITY_SECS=12 \
  KILN_WEBHOOK_ALLOW_PRIVATE_TARGETS=true
real=onnx-light-squeezenet
for version in 1 2; do
  target/debug/examples/sample_checkpoint bert "$work/bert-$version" >/dev/null
  # Version 1 also fused (its attention in ONNX Runtime's Attention), served on both engines.
  variants=fp32; [ "$version" = 1 ] && variants=fp32,fused
  target/debug/kiln push "$work/bert-$version" "acme/bert:$version" --variants "$variants" >/dev/null
done
mkdir "$work/$real"
"$KILN_ONNX_CORPUS/venv/bin/python" - "$KILN_ONNX_CORPUS" "$real" "$work/$real" <<'PY'
import json, shutil, sys, os
corpus, key, folder = sys.argv[1:4]
model = next(m for m in json.load(open(os.path.join(corpus, "corpus.json")))["models"] if m["id"] == key)
shutil.copy(os.path.join(corpus, model["model"]), os.path.join(folder, "model.onnx"))
shutil.copy(os.path.join(corpus, model["inputs"]), os.path.join(folder, "sample_inputs.safetensors"))
PY
target/debug/kiln push "$work/$real" "acme/$real:1" >/dev/null
# A model with a string input and a string output (BYTES tensors), written with the onnx package and pushed
# like any ONNX file: kiln's evaluator cannot run it, ONNX Runtime can.
mkdir "$work/words"
"$KILN_ONNX_CORPUS/venv/bin/python" - "$work/words/model.onnx" <<'PY'
import sys, onnx
from onnx import helper, TensorProto
words = ["apple", "banana", "cherry", "héllo wörld"]
graph = helper.make_graph(
    [helper.make_node("LabelEncoder", ["text"], ["ids"], domain="ai.onnx.ml",
                      keys_strings=words, values_int64s=[1, 2, 3, 4], default_int64=-1),
     helper.make_node("LabelEncoder", ["ids"], ["label"], domain="ai.onnx.ml",
                      keys_int64s=[1, 2, 3, 4], values_strings=["pome", "berry", "drupe", "grüße"],
                      default_string="unknown")],
    "strings",
    [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
    [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch"]),
     helper.make_tensor_value_info("label", TensorProto.STRING, ["batch"])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
PY
target/debug/kiln push "$work/words" acme/words:1 >/dev/null
# A classifier as skl2onnx writes one (ai.onnx.ml LinearClassifier: a label and a score per class, the
# classes named in the model, and by default a ZipMap of the scores, a sequence of one map per row, which
# the protocol cannot carry), served from its folder: the classification extension names the classes.
mkdir "$work/iris"
"$KILN_ONNX_CORPUS/venv/bin/python" - "$work/iris/model.onnx" <<'PY'
import sys, onnx
from onnx import helper, TensorProto
coefficients = [0.4, 1.4, -2.2, -1.0, 0.5, -1.6, 0.6, -1.3, -1.5, -1.4, 2.4, 2.3]
graph = helper.make_graph(
    [helper.make_node("LinearClassifier", ["X"], ["label", "scores"], domain="ai.onnx.ml",
                      coefficients=coefficients, intercepts=[0.3, 1.9, -1.2],
                      classlabels_strings=["setosa", "versicolor", "virginica"], post_transform="SOFTMAX"),
     helper.make_node("Identity", ["scores"], ["probabilities"]),
     helper.make_node("ZipMap", ["scores"], ["output_probability"], domain="ai.onnx.ml",
                      classlabels_strings=["setosa", "versicolor", "virginica"])],
    "iris",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4])],
    [helper.make_tensor_value_info("label", TensorProto.STRING, ["N"]),
     helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
     helper.make_value_info("output_probability", helper.make_sequence_type_proto(helper.make_map_type_proto(
         TensorProto.STRING, helper.make_tensor_type_proto(TensorProto.FLOAT, []))))])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
PY
# A classifier as Optimum exports one from `transformers`: `logits` of two classes, with the Hugging Face
# config.json that names them (id2label) beside it; pushed as a folder, the config among its files.
mkdir "$work/sentiment"
"$KILN_ONNX_CORPUS/venv/bin/python" - "$work/sentiment" <<'PY'
import json, os, sys, onnx
from onnx import helper, TensorProto
folder = sys.argv[1]
weights = helper.make_tensor("weights", TensorProto.FLOAT, [4, 2], [0.9, -0.4, -1.1, 0.8, 0.3, 0.2, -0.5, 1.2])
bias = helper.make_tensor("bias", TensorProto.FLOAT, [2], [0.1, -0.1])
graph = helper.make_graph(
    [helper.make_node("MatMul", ["features", "weights"], ["scaled"]),
     helper.make_node("Add", ["scaled", "bias"], ["logits"])],
    "sentiment",
    [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch_size", 4])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", 2])],
    [weights, bias])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(folder, "model.onnx"))
json.dump({"architectures": ["DistilBertForSequenceClassification"], "model_type": "distilbert",
           "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}},
          open(os.path.join(folder, "config.json"), "w"))
PY
target/debug/kiln push "$work/sentiment" acme/sentiment:1 >/dev/null
# A model whose rows change each other (each minus the batch's mean), its first dimensions named apart:
# the runner's batching probe must leave it unbatched.
mkdir "$work/centered"
"$KILN_ONNX_CORPUS/venv/bin/python" - "$work/centered/model.onnx" <<'PY'
import sys, onnx
from onnx import helper, TensorProto
graph = helper.make_graph(
    [helper.make_node("ReduceMean", ["x"], ["mean"], axes=[0], keepdims=1),
     helper.make_node("Sub", ["x", "mean"], ["centered"])],
    "centered",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
    [helper.make_tensor_value_info("centered", TensorProto.FLOAT, ["m", 4])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
PY
for ref in acme/bert:1 acme/bert:2 "acme/$real:1" acme/words:1 acme/sentiment:1; do settle "$ref"; done
target/debug/kiln alias set acme/bert production 1 >/dev/null
target/debug/kiln alias set acme/words production 1 >/dev/null
target/debug/kiln alias set acme/sentiment production 1 >/dev/null
if ! "$venv/bin/python" scripts/serving_test.py "$work" "$PWD/target/debug/kiln" "$PWD/target/debug/kiln-runner" \
    "$KILN_ONNX_CORPUS" "$real"; then
  for log in "$work"/*.log; do echo "--- $log, last 20 lines:"; tail -n 20 "$log" | cut -c1-400; done
  exit 1
fi
# Seeded hostile requests, alone and beside valid ones (scripts/serving_hostile.py; --cases and --seed for a
# longer drill).
if ! "$venv/bin/python" scripts/serving_hostile.py "$work" "$PWD/target/debug/kiln-runner"; then
  for log in "$work"/hostile-*.log; do echo "--- $log, last 20 lines:"; tail -n 20 "$log" | cut -c1-400; done
  exit 1
fi
# Every corpus model served from its folder on ONNX Runtime and on kiln's evaluator (about 75 s; a failed
# check names its model, whose runner's log is in $work/corpus).
"$venv/bin/python" scripts/serving_corpus.py "$work" "$PWD/target/debug/kiln-runner" "$KILN_ONNX_CORPUS"

"""The minimal ONNX Runtime runtime Seldon MLServer serves scripts/bench-serving.sh's models with: one
InferenceSession made as kiln-runner's `ort` engine makes its own (all graph optimizations, BENCH_THREADS
intra-op threads, one inter-op thread, sequential execution), inputs and outputs through MLServer's
NumpyCodec. MLServer imports it from the model's settings folder, where the bench copies it.
predict runs the session on the calling coroutine, as MLServer's own runtimes (sklearn, xgboost) do: with
parallel_workers 0 (one of the configurations the bench runs) it holds the HTTP server's event loop for the
length of a batch."""
import os

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxRuntimeModel(MLModel):
    async def load(self) -> bool:
        path = await get_model_uri(self._settings)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ["BENCH_THREADS"])
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._outputs = [o.name for o in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        results = self._session.run(self._outputs, feeds)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output(name, value) for name, value in zip(self._outputs, results)],
        )

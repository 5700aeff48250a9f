"""The ONNX Runtime CPU session the bench scripts compare kiln with: what kiln-runner's `ort` engine records
in `engine_options` for one thread (all graph optimizations, sequential, one intra-op and inter-op thread)."""
import onnxruntime as ort


def one_thread_session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

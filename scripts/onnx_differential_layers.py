"""scripts/onnx_differential.py's draws for the operators of whole layers and signal processing: the
recurrent layers, group normalization, GELU, Lp pooling, sampling grids, RoiAlign, MaxUnpool, the Fourier
transforms and windows, the quantized products, the cross-entropy loss, TfIdfVectorizer. Each returns
(attributes, inputs); OPSETS names the opset an operator is drawn at where it is not onnx_differential's,
OUTPUTS the outputs of those with more than one."""
import numpy as np
import onnxruntime as ort
from onnx import helper

from onnx_differential_draws import channels_first, elem, floats, rng, values

OPSETS = {"Gelu": 20, "AffineGrid": 20, "GridSample": 20, "GroupNormalization": 21, "DFT": 17, "STFT": 17,
          "Upsample": 9, "TfIdfVectorizer": 9, "LpPool": 11}
def answered_in_double(op, attrs):
    """Answers ONNX Runtime computes in f32 less precisely than the suite's tolerance asks, taken from the
    same model in double precision and rounded back: the Fourier transforms' sums carry rounding noise
    (5.6e-6 where the imaginary part of a real signal's mean is 0); Gelu's tanh form loses digits to
    1 + tanh cancelling (4 % off at x = -4.43647; its erf form ONNX Runtime computes in f32 only, and there
    within the tolerance); the cross-entropy of a near-certain class, a log of 1 + 1.5e-5, keeps few
    digits in f32 (ONNX Runtime's 0.2 % off; kiln's, the log of the sum as PyTorch computes it, 0.13 %);
    GridSample's cubic weights sum neighbours that cancel (-1.8859e-3 in f32 where double and kiln give
    -1.8905e-3)."""
    if op == "Gelu":
        return attrs.get("approximate") == "tanh"
    if op == "GridSample":
        return attrs.get("mode") == "cubic"
    return op in ("DFT", "STFT", "SoftmaxCrossEntropyLoss")
OUTPUTS = {"RNN": ["y", "y_h"], "GRU": ["y", "y_h"], "LSTM": ["y", "y_h", "y_c"],
           "DynamicQuantizeLinear": ["y", "scale", "zero_point"], "SoftmaxCrossEntropyLoss": ["y", "log_prob"]}


def pick(options):
    return options[int(rng.integers(len(options)))]


def recurrent(op):
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]

    def make():
        # ONNX Runtime's CPU provider implements the recurrent layers for float only.
        dtype = np.float32
        seq, batch, size, hidden = (int(rng.integers(1, 4)) for _ in range(4))
        direction = pick(["forward", "reverse", "bidirectional"])
        dirs = 2 if direction == "bidirectional" else 1
        # Batch-first (layout 1) ONNX Runtime's CPU provider does not implement.
        layout = 0
        attrs = {"hidden_size": hidden, "direction": direction, "layout": layout}
        if op == "GRU":
            attrs["linear_before_reset"] = int(rng.integers(0, 2))
        if rng.random() < 0.2:
            attrs["clip"] = 1.5
        weights = lambda dims: values(dtype, dims, small=True) * dtype(0.3)
        x = weights([batch, seq, size] if layout else [seq, batch, size])
        inputs = [x, weights([dirs, gates * hidden, size]), weights([dirs, gates * hidden, hidden])]
        state = [batch, dirs, hidden] if layout else [dirs, batch, hidden]
        optional = [weights([dirs, 2 * gates * hidden]),
                    rng.integers(1, seq + 1, size=batch).astype(np.int32), weights(state)]
        if op == "LSTM":
            optional += [weights(state), weights([dirs, 3 * hidden])]
        kept = int(rng.integers(0, len(optional) + 1))
        inputs += [t if rng.random() < 0.8 else None for t in optional[:kept]]
        return attrs, inputs
    return op, make


def gelu():
    return {"approximate": pick(["none", "tanh"])}, [floats(channels_first(2))]


def group_norm():
    groups = int(rng.integers(1, 3))
    dims = [int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))] + [int(rng.integers(1, 4))
                                                                           for _ in range(int(rng.integers(0, 3)))]
    dtype = pick([np.float32, np.float64])
    c = dims[1]
    return ({"num_groups": groups, "epsilon": 1e-5},
            [values(dtype, dims, small=True), values(dtype, [c], small=True), values(dtype, [c], small=True)])


def lp_pool():
    kernel = [int(rng.integers(1, 4)) for _ in range(2)]
    spatial = [int(rng.integers(k, k + 3)) for k in kernel]
    attrs = {"kernel_shape": kernel, "p": int(rng.integers(1, 4)),
             "strides": [int(rng.integers(1, 3)) for _ in range(2)]}
    if rng.random() < 0.5:
        attrs["pads"] = [int(rng.integers(0, k)) for k in kernel] * 2
    return attrs, [values(np.float32, [1, 2] + spatial, small=True)]


def grid_sample():
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    x = values(np.float32, [n, c, int(rng.integers(1, 5)), int(rng.integers(1, 5))], small=True)
    grid = rng.uniform(-1.3, 1.3, size=[n, int(rng.integers(1, 4)), int(rng.integers(1, 4)), 2]).astype(np.float32)
    attrs = {"mode": pick(["linear", "nearest", "cubic"]), "padding_mode": pick(["zeros", "border", "reflection"]),
             "align_corners": int(rng.integers(0, 2))}
    if attrs["mode"] == "cubic" and attrs["padding_mode"] == "border":
        # Bicubic taps past the border: kiln, like ONNX's reference, clamps each tap; ONNX Runtime 1.32.0
        # answers otherwise (docs/benchmarks.md, the differential check).
        attrs["padding_mode"] = "zeros"
    return attrs, [x, grid]


def affine_grid():
    n = int(rng.integers(1, 3))
    theta = rng.uniform(-1.5, 1.5, size=[n, 2, 3]).astype(np.float32)
    align_corners = int(rng.integers(0, 2))
    # An axis of one position with align_corners is undefined in ONNX (-1 in its reference, 1 in ONNX
    # Runtime, 0 in PyTorch and kiln): drawn from two positions then.
    low = 1 + align_corners
    size = np.array([n, int(rng.integers(1, 3)), int(rng.integers(low, 5)), int(rng.integers(low, 5))], np.int64)
    return {"align_corners": align_corners}, [theta, size]


def roi_align():
    n, c, h, w = 2, int(rng.integers(1, 3)), int(rng.integers(2, 6)), int(rng.integers(2, 6))
    count = int(rng.integers(1, 4))
    corners = rng.uniform(-1, max(h, w) + 1, size=[count, 2, 2])
    rois = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(np.float32)
    attrs = {"mode": pick(["avg", "max"]), "output_height": int(rng.integers(1, 4)),
             "output_width": int(rng.integers(1, 4)), "sampling_ratio": int(rng.integers(0, 3)),
             "spatial_scale": float(pick([1.0, 0.5])),
             "coordinate_transformation_mode": pick(["half_pixel", "output_half_pixel"])}
    return attrs, [values(np.float32, [n, c, h, w], small=True), rois,
                   rng.integers(0, n, size=count).astype(np.int64)]


def max_unpool():
    """A MaxPool's values and indices (from ONNX Runtime) unpooled."""
    kernel = [int(rng.integers(1, 3)) for _ in range(2)]
    strides = [int(rng.integers(1, 3)) for _ in range(2)]
    x = values(np.float32, [1, int(rng.integers(1, 3))] + [int(rng.integers(k, k + 3)) for k in kernel], small=True)
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=kernel, strides=strides)
    graph = helper.make_graph([node], "pool", [helper.make_tensor_value_info("x", elem(np.float32), list(x.shape))],
                              [helper.make_empty_tensor_value_info("y"), helper.make_empty_tensor_value_info("i")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 8
    y, i = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    # Without output_shape: given one larger than the pooling's own, ONNX's node test
    # (test_maxunpool_export_with_output_shape) places each index as a position in the shape the pooling
    # implies, then pads, as kiln does; ONNX Runtime 1.32.0 places it flat in the larger shape and fails it.
    return {"kernel_shape": kernel, "strides": strides}, [y, i]


def upsample():
    mode = pick(["nearest", "linear"])
    # Integers interpolated linearly are truncated: a weight a rounding away from a whole value moves them
    # by one, as f32 or f64 arithmetic lands.
    dtype = pick([np.float32, np.int32]) if mode == "nearest" else np.float32
    x = values(dtype, [1, 1, int(rng.integers(1, 4)), int(rng.integers(1, 4))], small=True)
    # Scales f32 holds inexactly too (1.1, 1.7, 2.2), where ONNX Runtime's f32 arithmetic decides the
    # rounding; none below 1, which Upsample refuses.
    scales = np.array([1, 1, pick([1.0, 2.0, 3.0, 1.5, 1.1, 2.2]), pick([1.0, 2.0, 1.7, 2.9])], np.float32)
    if all(np.floor(np.float32(d) * s) == d for d, s in zip(x.shape, scales)):
        # Every axis keeping its length: ONNX Runtime then returns the input whatever the scales (even
        # cropping with tf_crop_and_resize), where ONNX's coordinates at a scale of 1.1 move; kiln, like
        # ONNX's reference and PyTorch, resamples. Drawn with a height that changes.
        scales[2] = 2.0
    return {"mode": mode}, [x, scales]


def center_crop_pad():
    x = values(pick([np.float32, np.int64]), [int(rng.integers(1, 6)) for _ in range(int(rng.integers(1, 4)))])
    axes = sorted(a for a in range(x.ndim) if rng.random() < 0.6) or [0]
    target = np.array([int(rng.integers(1, 8)) for _ in axes], np.int64)
    return {"axes": axes}, [x, target]


def dft():
    n = int(rng.integers(1, 9))
    complex_in = int(rng.integers(0, 2))
    x = values(np.float32, [int(rng.integers(1, 3)), n, 1 + complex_in], small=True)
    attrs = {"axis": 1, "inverse": int(rng.integers(0, 2)), "onesided": int(rng.integers(0, 2))}
    if attrs["inverse"] or complex_in:
        attrs["onesided"] = 0
    inputs = [x]
    if rng.random() < 0.4:
        inputs.append(np.array(int(rng.integers(1, 2 * n + 1)), np.int64))
    return attrs, inputs


def stft():
    frame = int(rng.integers(2, 6))
    signal = values(np.float32, [1, frame + int(rng.integers(0, 9)), 1], small=True)
    step = np.array(int(rng.integers(1, frame + 1)), np.int64)
    inputs = [signal, step]
    if rng.random() < 0.5:
        inputs += [np.hanning(frame).astype(np.float32)]
    else:
        inputs += [None, np.array(frame, np.int64)]
    return {"onesided": int(rng.integers(0, 2))}, inputs


def window(op):
    def make():
        periodic = int(rng.integers(0, 2))
        # A symmetric window of one value divides 0 by 0: NaN in ONNX Runtime, [1] in kiln as in NumPy and
        # PyTorch (onnx/src/eval/ops/signal.rs); drawn from two values then.
        return ({"periodic": periodic, "output_datatype": elem(pick([np.float32, np.float64]))},
                [np.array(int(rng.integers(2 - periodic, 12)), pick([np.int64, np.int32]))])
    return op, make


def mel_weight_matrix():
    rate = int(pick([8000, 16000]))
    low = float(rng.integers(0, 200))
    scalar = lambda v, t: np.array(v, t)
    return ({"output_datatype": elem(np.float32)},
            [scalar(int(rng.integers(1, 6)), np.int64), scalar(int(pick([8, 16, 32])), np.int64),
             scalar(rate, np.int64), scalar(low, np.float32), scalar(float(rng.integers(1000, rate // 2)), np.float32)])


def dynamic_quantize_linear():
    return {}, [values(np.float32, [int(rng.integers(1, 4)), int(rng.integers(1, 5))], small=True)]


def qlinear_matmul():
    m, k, n = (int(rng.integers(1, 5)) for _ in range(3))
    t = pick([np.uint8, np.int8])
    scale = lambda: np.array(float(pick([0.01, 0.1, 0.5])), np.float32)
    zero = lambda: np.array(int(rng.integers(-3, 4)) + (128 if t is np.uint8 else 0), t)
    return {}, [values(t, [m, k]), scale(), zero(), values(t, [k, n]), scale(), zero(), scale(), zero()]


def conv_integer():
    c, o = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    kernel = [int(rng.integers(1, 3)) for _ in range(2)]
    x = values(np.uint8, [1, c] + [int(rng.integers(k, k + 3)) for k in kernel])
    inputs = [x, values(np.uint8, [o, c] + kernel)]
    if rng.random() < 0.7:
        inputs += [np.array(int(rng.integers(0, 256)), np.uint8), np.array(int(rng.integers(0, 256)), np.uint8)]
    return {"pads": [int(rng.integers(0, k)) for k in kernel] * 2}, inputs


def softmax_cross_entropy_loss():
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    extra = [int(rng.integers(1, 3))] if rng.random() < 0.4 else []
    scores = values(np.float32, [n, c] + extra, small=True)
    labels = rng.integers(0, c, size=[n] + extra).astype(np.int64)
    attrs = {"reduction": pick(["mean", "sum", "none"])}
    if rng.random() < 0.4:
        attrs["ignore_index"] = int(rng.integers(0, c))
    inputs = [scores, labels]
    if rng.random() < 0.5:
        inputs.append(np.abs(values(np.float32, [c], small=True)).astype(np.float32) + np.float32(0.5))
    return attrs, inputs


def tf_idf_vectorizer():
    pool = rng.permutation(8)[:5].astype(np.int64)
    unigrams, bigrams = pool[:3], pool[3:5]
    pool_int64s = np.concatenate([unigrams, bigrams[:2]]).tolist()
    mode = pick(["TF", "IDF", "TFIDF"])
    attrs = {"mode": mode, "min_gram_length": int(rng.integers(1, 3)), "max_gram_length": 2,
             "max_skip_count": int(rng.integers(0, 3)), "ngram_counts": [0, 3], "ngram_indexes": [0, 1, 2, 3],
             "pool_int64s": pool_int64s}
    if mode != "TF" or rng.random() < 0.3:
        attrs["weights"] = [float(w) for w in rng.uniform(0.5, 2.0, size=4)]
    dims = [int(rng.integers(1, 7))] if rng.random() < 0.5 else [int(rng.integers(1, 3)), int(rng.integers(1, 7))]
    return attrs, [rng.integers(0, 8, size=dims).astype(np.int64)]


OPERATORS = [
    recurrent("RNN"), recurrent("GRU"), recurrent("LSTM"), ("Gelu", gelu), ("GroupNormalization", group_norm),
    ("LpPool", lp_pool), ("GridSample", grid_sample), ("AffineGrid", affine_grid), ("RoiAlign", roi_align),
    ("MaxUnpool", max_unpool), ("Upsample", upsample), ("CenterCropPad", center_crop_pad), ("DFT", dft),
    ("STFT", stft), window("HannWindow"), window("HammingWindow"), window("BlackmanWindow"),
    ("MelWeightMatrix", mel_weight_matrix), ("DynamicQuantizeLinear", dynamic_quantize_linear),
    ("QLinearMatMul", qlinear_matmul), ("ConvInteger", conv_integer),
    ("SoftmaxCrossEntropyLoss", softmax_cross_entropy_loss), ("TfIdfVectorizer", tf_idf_vectorizer),
]

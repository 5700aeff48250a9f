"""scripts/onnx-differential.sh's generator: random one-operator models whose expected outputs are ONNX
Runtime's, written as ONNX's backend node tests are (CASE/model.onnx, CASE/test_data_set_0/input_N.pb
and output_N.pb), for kiln's node-suite harness to run through kiln's evaluator.

Each operator below draws its inputs' types (the integers and floats ONNX Runtime's CPU provider
implements for it), shapes (broadcasting, empty and one-element axes included) and values (near the
type's limits, NaN and the infinities, negative zero) and its attributes from a seeded generator. A
draw ONNX Runtime refuses (a type it lacks, an attribute it does not take) is not a case: only what ONNX
Runtime answers is kept. Usage: onnx_differential.py OUT SEED CASES_PER_OPERATOR
"""
import os
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

import onnx_differential_layers as layers
from onnx_differential_draws import (FLOATS, INTS, SIGNED, X86_64, booleans, broadcast_partner, channels_first,
                                     elem, floats, reseed, rng, shape, values)

out, seed, per_op = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
reseed(seed)
ort.set_default_logger_severity(4)
# Values at a type's limits overflow on purpose (a float16 of 1e30 is inf).
np.seterr(all="ignore")
warnings.simplefilter("ignore", RuntimeWarning)

def binary(op, types, small=False):
    def make():
        dtype = types[int(rng.integers(len(types)))]
        a = shape()
        b = broadcast_partner(a) if rng.random() < 0.7 else list(a)
        if rng.random() < 0.5:
            a, b = b, a
        x, y = values(dtype, a, small), values(dtype, b, small)
        if op in ("Div", "Mod") and np.issubdtype(dtype, np.integer):
            # Integer division by zero (and the minimum by -1) kills ONNX Runtime 1.20 with SIGFPE.
            y[(y == 0) | (y == -1 if np.issubdtype(dtype, np.signedinteger) else y == 0)] = 2
        return {}, [x, y]
    return op, make


def unary(op, types, attrs=lambda: {}):
    def make():
        dtype = types[int(rng.integers(len(types)))]
        return attrs(), [values(dtype, shape())]
    return op, make


def variadic(op, types):
    def make():
        dtype = types[int(rng.integers(len(types)))]
        dims = shape()
        return {}, [values(dtype, dims)] + [values(dtype, broadcast_partner(dims))
                                            for _ in range(int(rng.integers(0, 3)))]
    return op, make


def cast():
    to_types = INTS + FLOATS + [np.bool_]
    source = INTS + FLOATS + [np.bool_]
    src = source[int(rng.integers(len(source)))]
    to = to_types[int(rng.integers(len(to_types)))]
    dims = shape()
    # A float that no integer of the target holds (NaN, the infinities, 1e30) is undefined in ONNX:
    # kiln answers as ONNX Runtime on x86-64 does, and draws them only there; not to uint32 from a float
    # or double, where ONNX Runtime's answer depends on the value's position in the tensor (its
    # vectorized loop and its scalar one differ: onnx/src/eval/narrow_integers.rs).
    undefined = np.issubdtype(src, np.floating) and np.issubdtype(to, np.integer) and (
        not X86_64 or (to is np.uint32 and src in (np.float32, np.float64)))
    x = values(np.int8, dims).astype(np.bool_) if src is np.bool_ else values(src, dims, small=undefined)
    return {"to": elem(to)}, [x]


def reduce(op, types):
    def make():
        dtype = types[int(rng.integers(len(types)))]
        dims = shape(int(rng.integers(1, 4)))
        attrs = {"keepdims": int(rng.integers(0, 2))}
        axes = [a for a in range(len(dims)) if rng.random() < 0.5]
        # Integer sums kept from overflowing: ONNX Runtime 1.20 wraps them, 1.32 sums in double and
        # saturates, and kiln wraps (docs/benchmarks.md, the differential check). No NaN for ReduceMin
        # and ReduceMax (ONNX Runtime's answer then depends on which vector lane met it) nor for
        # ReduceLogSumExp (beside an infinity, its maximum skips the NaN: inf, not NaN).
        integer = np.issubdtype(dtype, np.integer)
        small = integer or op in ("ReduceProd", "ReduceMin", "ReduceMax", "ReduceLogSumExp")
        x = values(dtype, dims, small=small)
        if integer and op == "ReduceProd":
            x = (x % 3).astype(dtype)
        inputs = [x]
        if axes or rng.random() < 0.5:
            inputs.append(np.array(axes, dtype=np.int64))
        return attrs, inputs
    return op, make


def cum_sum():
    dtype = [np.int32, np.int64, np.float32, np.float64][int(rng.integers(4))]
    dims = shape(int(rng.integers(1, 4)), empty=False)
    attrs = {"exclusive": int(rng.integers(0, 2)), "reverse": int(rng.integers(0, 2))}
    return attrs, [values(dtype, dims), np.array(int(rng.integers(-len(dims), len(dims))), dtype=np.int64)]


def arg(op):
    def make():
        dtype = [np.int32, np.int64, np.float32, np.float64, np.uint8, np.int8][int(rng.integers(6))]
        dims = shape(int(rng.integers(1, 4)), empty=False)
        attrs = {"axis": int(rng.integers(-len(dims), len(dims))), "keepdims": int(rng.integers(0, 2)),
                 "select_last_index": int(rng.integers(0, 2))}
        return attrs, [values(dtype, dims, small=True)]
    return op, make


def clip():
    dtype = [np.int32, np.int64, np.float32, np.int8, np.uint8][int(rng.integers(5))]
    low, high = sorted(values(dtype, [2], small=True).tolist())
    return {}, [values(dtype, shape()), np.array(low, dtype=dtype), np.array(high, dtype=dtype)]


def where():
    dtype = (INTS + FLOATS)[int(rng.integers(len(INTS) + len(FLOATS)))]
    dims = shape()
    cond = values(np.int8, broadcast_partner(dims)).astype(np.bool_)
    return {}, [cond, values(dtype, dims), values(dtype, broadcast_partner(dims))]


def matmul():
    dtype = [np.int32, np.int64, np.uint32, np.float32, np.float64][int(rng.integers(5))]
    m, k, n = (int(rng.integers(1, 5)) for _ in range(3))
    batch = shape(int(rng.integers(0, 2)), empty=False)
    return {}, [values(dtype, batch + [m, k], small=True), values(dtype, [k, n], small=True)]


def pool(op):
    def make():
        spatial = [int(rng.integers(1, 6)) for _ in range(2)]
        kernel = [int(rng.integers(1, 4)) for _ in range(2)]
        attrs = {"kernel_shape": kernel, "strides": [int(rng.integers(1, 3)) for _ in range(2)],
                 "ceil_mode": int(rng.integers(0, 2))}
        if not attrs["ceil_mode"]:
            # An axis shorter than the kernel is sized by ONNX's formula (floor) in kiln and ONNX Runtime
            # 1.20, by C's truncating division in 1.32 (docs/benchmarks.md): not drawn.
            spatial = [max(s, k) for s, k in zip(spatial, kernel)]
        if rng.random() < 0.5:
            attrs["pads"] = [int(rng.integers(0, k)) for k in kernel] * 2
        if op == "AveragePool":
            attrs["count_include_pad"] = int(rng.integers(0, 2))
        elif rng.random() < 0.3:
            # storage_order orders only the Indices output: a MaxPool drawn with it has that output (case()).
            attrs["storage_order"] = int(rng.integers(0, 2))
        dtype = [np.float32, np.float64, np.int8, np.uint8][int(rng.integers(4 if op == "MaxPool" else 2))]
        return attrs, [values(dtype, [1, 2] + spatial, small=True)]
    return op, make


def gather(op):
    def make():
        dtype = (INTS + FLOATS)[int(rng.integers(len(INTS) + len(FLOATS)))]
        dims = shape(int(rng.integers(1, 4)), empty=False)
        axis = int(rng.integers(-len(dims), len(dims)))
        size = dims[axis]
        if op == "Gather":
            index_shape = shape(int(rng.integers(0, 3)))
        else:
            index_shape = list(dims)
            index_shape[axis] = int(rng.integers(1, 4))
        indices = rng.integers(-size, size, size=index_shape, dtype=np.int64)
        return {"axis": axis}, [values(dtype, dims), indices]
    return op, make


def scatter_elements():
    dtype = [np.int32, np.int64, np.float32, np.float64, np.int8][int(rng.integers(5))]
    dims = shape(int(rng.integers(1, 3)), empty=False)
    axis = int(rng.integers(0, len(dims)))
    index_shape = list(dims)
    index_shape[axis] = 1
    indices = rng.integers(0, dims[axis], size=index_shape, dtype=np.int64)
    reduction = ["none", "add", "mul", "max", "min"][int(rng.integers(5))]
    return ({"axis": axis, "reduction": reduction},
            [values(dtype, dims), indices, values(dtype, index_shape)])


def bit_shift():
    dtype = [np.uint8, np.uint16, np.uint32, np.uint64][int(rng.integers(4))]
    dims = shape()
    amount = rng.integers(0, 8 * np.dtype(dtype).itemsize, size=broadcast_partner(dims)).astype(dtype)
    return {"direction": ["LEFT", "RIGHT"][int(rng.integers(2))]}, [values(dtype, dims), amount]


def top_k():
    dtype = [np.int32, np.int64, np.float32, np.float64][int(rng.integers(4))]
    dims = shape(int(rng.integers(1, 3)), empty=False)
    axis = int(rng.integers(-len(dims), len(dims)))
    k = int(rng.integers(0, dims[axis] + 1))
    attrs = {"axis": axis, "largest": int(rng.integers(0, 2)), "sorted": 1}
    # Distinct values: ties may come back in either order; int64 ones past 2^53 sometimes, where a
    # double no longer tells them apart.
    offset = 2**62 if dtype is np.int64 and rng.random() < 0.5 else 0
    x = (rng.permutation(int(np.prod(dims))) + offset).astype(dtype).reshape(dims)
    return attrs, [x, np.array([k], dtype=np.int64)]


def nd_tuples(dims):
    """Distinct index tuples into the leading axes of `dims`: [count, depth]."""
    depth = int(rng.integers(1, len(dims) + 1))
    every = np.array(np.meshgrid(*[np.arange(d) for d in dims[:depth]], indexing="ij")).reshape(depth, -1).T
    count = int(rng.integers(1, len(every) + 1))
    return every[rng.permutation(len(every))[:count]].astype(np.int64), depth


def gather_nd():
    dtype = (INTS + FLOATS)[int(rng.integers(len(INTS) + len(FLOATS)))]
    dims = shape(int(rng.integers(1, 4)), empty=False)
    tuples, _ = nd_tuples(dims)
    return {}, [values(dtype, dims), tuples]


def scatter_nd():
    dtype = [np.int32, np.int64, np.float32, np.float64][int(rng.integers(4))]
    dims = shape(int(rng.integers(1, 4)), empty=False)
    tuples, depth = nd_tuples(dims)
    reduction = ["none", "add", "mul", "max", "min"][int(rng.integers(5))]
    updates = values(dtype, [len(tuples)] + dims[depth:])
    return {"reduction": reduction}, [values(dtype, dims), tuples, updates]


def axis_attr(op, through_rank=False):
    def make():
        # No NaN: ONNX Runtime's softmaxes answer garbage beside one (a log-probability of 39).
        x = floats(shape(int(rng.integers(1, 4)), empty=False), small=op != "Flatten")
        return {"axis": int(rng.integers(-x.ndim, x.ndim + int(through_rank)))}, [x]
    return op, make


def activation(op, attrs=lambda: {}):
    return op, lambda: (attrs(), [floats(shape())])


def transpose():
    x = values((INTS + FLOATS)[int(rng.integers(10))], shape(int(rng.integers(1, 4))))
    return {"perm": [int(p) for p in rng.permutation(x.ndim)]}, [x]


def slice_():
    x = values((INTS + FLOATS)[int(rng.integers(10))], shape(int(rng.integers(1, 4))))
    axes = [a for a in range(x.ndim) if rng.random() < 0.7] or [0]
    starts, ends, steps = [], [], []
    for a in axes:
        d = x.shape[a]
        step = int(rng.choice([1, 2, -1, -2, 3]))
        starts.append(int(rng.integers(-d - 2, d + 3)))
        ends.append(int(rng.choice([rng.integers(-d - 2, d + 3), 2**62, -(2**62)])))
        steps.append(step)
    ints64 = lambda v: np.array(v, dtype=np.int64)
    return {}, [x, ints64(starts), ints64(ends), ints64(axes), ints64(steps)]


def concat():
    dtype = (INTS + FLOATS)[int(rng.integers(10))]
    dims = shape(int(rng.integers(1, 4)))
    axis = int(rng.integers(-len(dims), len(dims)))
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        d = list(dims)
        d[axis] = int(rng.integers(0, 4))
        parts.append(values(dtype, d))
    return {"axis": axis}, parts


def expand():
    x = values((INTS + FLOATS)[int(rng.integers(10))], shape(int(rng.integers(0, 3))))
    target = [1] * int(rng.integers(0, 2)) + [d if rng.random() < 0.5 else (int(rng.integers(1, 4)) if d == 1 else d)
                                               for d in x.shape]
    return {}, [x, np.array(target, dtype=np.int64)]


def tile():
    x = values((INTS + FLOATS)[int(rng.integers(10))], shape(int(rng.integers(1, 4))))
    return {}, [x, rng.integers(0, 4, size=x.ndim).astype(np.int64)]


def pad():
    x = floats(shape(int(rng.integers(1, 4)), empty=False))
    mode = ["constant", "reflect", "edge", "wrap"][int(rng.integers(4))]
    pads = []
    for _ in range(2):
        for d in x.shape:
            limit = d - 1 if mode == "reflect" else (d if mode == "wrap" else 3)
            pads.append(int(rng.integers(-min(d, 2) if mode == "constant" else 0, max(limit, 0) + 1)))
    inputs = [x, np.array(pads, dtype=np.int64)]
    if mode == "constant" and rng.random() < 0.5:
        inputs.append(np.array(rng.normal(), dtype=x.dtype))
    return {"mode": mode}, inputs


def trilu():
    x = values((INTS + FLOATS)[int(rng.integers(10))], shape(int(rng.integers(2, 4))))
    return {"upper": int(rng.integers(0, 2))}, [x, np.array(int(rng.integers(-3, 4)), dtype=np.int64)]


def range_():
    dtype = [np.int32, np.int64, np.float32, np.float64][int(rng.integers(4))]
    start, limit = (int(v) for v in rng.integers(-20, 20, size=2))
    delta = int(rng.choice([-3, -1, 1, 2, 5]))
    return {}, [np.array(v, dtype=dtype) for v in (start, limit, delta)]


def one_hot():
    depth = int(rng.integers(1, 6))
    indices = rng.integers(-depth, depth, size=shape(int(rng.integers(1, 3)))).astype(np.int64)
    vals = values([np.float32, np.int64, np.int32][int(rng.integers(3))], [2], small=True)
    return {"axis": int(rng.integers(-1 - indices.ndim, indices.ndim + 1))}, [indices, np.array(depth, np.int64), vals]


def non_zero():
    x = values([np.float32, np.int64, np.int8, np.uint8][int(rng.integers(4))], shape(), small=True)
    return {}, [x]


def gemm():
    m, k, n = (int(rng.integers(1, 5)) for _ in range(3))
    trans_a, trans_b = int(rng.integers(0, 2)), int(rng.integers(0, 2))
    dtype = [np.float32, np.float64][int(rng.integers(2))]
    a = values(dtype, [k, m] if trans_a else [m, k], small=True)
    b = values(dtype, [n, k] if trans_b else [k, n], small=True)
    inputs = [a, b]
    if rng.random() < 0.7:
        inputs.append(values(dtype, broadcast_partner([m, n]), small=True))
    attrs = {"transA": trans_a, "transB": trans_b, "alpha": float(rng.choice([1.0, 0.5, -2.0])),
             "beta": float(rng.choice([1.0, 0.0, 3.0]))}
    return attrs, inputs


def conv():
    groups = int(rng.choice([1, 2]))
    channels = groups * int(rng.integers(1, 3))
    out_channels = groups * int(rng.integers(1, 3))
    kernel = [int(rng.integers(1, 4)) for _ in range(2)]
    spatial = [int(rng.integers(k, k + 4)) for k in kernel]
    attrs = {"group": groups, "strides": [int(rng.integers(1, 3)) for _ in range(2)],
             "dilations": [1, 1], "pads": [int(rng.integers(0, k)) for k in kernel] * 2}
    inputs = [values(np.float32, [1, channels] + spatial, small=True),
              values(np.float32, [out_channels, channels // groups] + kernel, small=True)]
    if rng.random() < 0.5:
        inputs.append(values(np.float32, [out_channels], small=True))
    return attrs, inputs


def resize():
    x = values(np.float32, [1, 1] + [int(rng.integers(1, 6)) for _ in range(2)], small=True)
    mode = ["nearest", "linear", "cubic"][int(rng.integers(3))]
    transform = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "half_pixel_symmetric"][
        int(rng.integers(5))]
    attrs = {"mode": mode, "coordinate_transformation_mode": transform}
    if mode == "nearest":
        attrs["nearest_mode"] = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"][int(rng.integers(4))]
    if rng.random() < 0.5:
        sizes = np.array([1, 1] + [int(rng.integers(1, 9)) for _ in range(2)], dtype=np.int64)
        return attrs, [x, None, None, sizes]
    scales = np.array([1, 1] + [float(rng.choice([0.5, 0.75, 1.5, 2.0, 3.0])) for _ in range(2)], np.float32)
    return attrs, [x, None, scales]


def layer_norm():
    x = floats(shape(int(rng.integers(2, 4)), empty=False), small=True)
    axis = int(rng.integers(-x.ndim, x.ndim))
    normalized = list(x.shape[axis:])
    return ({"axis": axis, "epsilon": 1e-5},
            [x, values(x.dtype.type, normalized, small=True), values(x.dtype.type, normalized, small=True)])


def einsum():
    equation, shapes = [("ij,jk->ik", [[2, 3], [3, 4]]), ("bij,bjk->bik", [[2, 2, 3], [2, 3, 2]]),
                        ("ii->i", [[3, 3]]), ("ij->ji", [[2, 3]]), ("i,i->", [[4], [4]]),
                        ("ij,j->i", [[3, 2], [2]]), ("...ij->...ji", [[2, 2, 3]])][int(rng.integers(7))]
    dtype = [np.float32, np.float64, np.int32, np.int64][int(rng.integers(4))]
    return {"equation": equation}, [values(dtype, s, small=True) for s in shapes]


def depth_space(op):
    def make():
        block = int(rng.integers(1, 3))
        if op == "DepthToSpace":
            dims = [1, block * block * int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 4))]
            attrs = {"blocksize": block, "mode": ["DCR", "CRD"][int(rng.integers(2))]}
        else:
            dims = [1, int(rng.integers(1, 3)), block * int(rng.integers(1, 3)), block * int(rng.integers(1, 3))]
            attrs = {"blocksize": block}
        return attrs, [values((INTS + FLOATS)[int(rng.integers(10))], dims)]
    return op, make


def mod_fmod():
    dtype = [np.float32, np.float64, np.int32, np.int64][int(rng.integers(4))]
    dims = shape()
    x, y = values(dtype, dims, small=True), values(dtype, broadcast_partner(dims), small=True)
    y[y == 0] = 3
    return {"fmod": 1 if dtype in (np.float32, np.float64) else int(rng.integers(0, 2))}, [x, y]


def quantize():
    x = floats(shape(int(rng.integers(1, 3)), empty=False), small=not X86_64)
    x = x.astype(np.float32)
    out = [np.uint8, np.int8][int(rng.integers(2))]
    scale = np.array(float(rng.choice([0.01, 0.1, 1.0, 3.7])), np.float32)
    zero = np.array(int(rng.integers(np.iinfo(out).min, np.iinfo(out).max + 1)), out)
    return {}, [x, scale, zero]


def dequantize():
    dtype = [np.uint8, np.int8, np.int32][int(rng.integers(3))]
    x = values(dtype, shape(int(rng.integers(1, 3)), empty=False))
    scale = np.array(float(rng.choice([0.01, 0.1, 1.0, 3.7])), np.float32)
    inputs = [x, scale]
    if dtype is not np.int32 or rng.random() < 0.5:
        inputs.append(np.array(int(rng.integers(-5, 6)) if dtype is not np.uint8 else int(rng.integers(0, 200)), dtype))
    return {}, inputs


def matmul_integer():
    m, k, n = (int(rng.integers(1, 5)) for _ in range(3))
    ta, tb = [np.uint8, np.int8][int(rng.integers(2))], [np.uint8, np.int8][int(rng.integers(2))]
    inputs = [values(ta, [m, k]), values(tb, [k, n])]
    if rng.random() < 0.7:
        inputs += [values(ta, []), values(tb, [])]
    return {}, inputs


def logical(op):
    def make():
        dims = shape()
        inputs = [booleans(dims)] if op == "Not" else [booleans(dims), booleans(broadcast_partner(dims))]
        return {}, inputs
    return op, make


def is_inf():
    return ({"detect_negative": int(rng.integers(0, 2)), "detect_positive": int(rng.integers(0, 2))},
            [floats(shape())])


def instance_norm():
    dims = channels_first()
    # At least two values a channel, as for MeanVarianceNormalization below: over one, ONNX Runtime's
    # variance E[x²] - E[x]² is rounding left over (0.2998 where the answer is the bias, 0.3001).
    if np.prod(dims[2:]) == 1:
        dims[2] = 2
    dtype = [np.float32, np.float64][int(rng.integers(2))]
    return {"epsilon": 1e-5}, [values(dtype, dims, small=True), values(dtype, [dims[1]], small=True),
                               values(dtype, [dims[1]], small=True)]


def batch_norm():
    dims = channels_first(2)
    c = dims[1]
    per = lambda: values(np.float32, [c], small=True)
    variance = np.abs(per()) + np.float32(0.1)
    return {"epsilon": 1e-5}, [values(np.float32, dims, small=True), per(), per(), per(), variance]


def global_pool(op):
    return op, lambda: ({}, [floats(channels_first(), small=op == "GlobalMaxPool")])


def lp_norm():
    x = floats(shape(int(rng.integers(1, 4)), empty=False), small=True)
    return {"axis": int(rng.integers(-x.ndim, x.ndim)), "p": int(rng.integers(1, 3))}, [x]


def conv_transpose():
    groups = int(rng.choice([1, 2]))
    channels = groups * int(rng.integers(1, 3))
    out_per_group = int(rng.integers(1, 3))
    kernel = [int(rng.integers(1, 4)) for _ in range(2)]
    strides = [int(rng.integers(1, 3)) for _ in range(2)]
    attrs = {"group": groups, "strides": strides, "pads": [int(rng.integers(0, k)) for k in kernel] * 2}
    if rng.random() < 0.3:
        attrs["output_padding"] = [int(rng.integers(0, s)) for s in strides]
    spatial = [int(rng.integers(1, 5)) for _ in range(2)]
    layout = rng.random()
    if layout < 0.2:
        # An explicit output_shape, from one to stride - 1 past the kernel's reach (zeros at the end; ONNX
        # Runtime refuses more), in place of pads.
        del attrs["pads"]
        reach = [s * (i - 1) + attrs.get("output_padding", [0, 0])[d] + k
                 for d, (s, i, k) in enumerate(zip(strides, spatial, kernel))]
        attrs["output_shape"] = [int(rng.integers(1, r + s)) for r, s in zip(reach, strides)]
    elif layout < 0.3:
        del attrs["pads"]
        attrs["auto_pad"] = str(rng.choice(["SAME_UPPER", "SAME_LOWER"]))
    inputs = [values(np.float32, [1, channels] + spatial, small=True),
              values(np.float32, [channels, out_per_group] + kernel, small=True)]
    if rng.random() < 0.5:
        inputs.append(values(np.float32, [groups * out_per_group], small=True))
    return attrs, inputs


def unique():
    x = values([np.float32, np.int64, np.int32][int(rng.integers(3))], shape(int(rng.integers(1, 3))), small=True)
    attrs = {"sorted": 1}
    if rng.random() < 0.5:
        attrs["axis"] = int(rng.integers(-x.ndim, x.ndim))
        if x.size == 0:
            # ONNX Runtime 1.32.0 aborts the process (std::terminate) on an empty tensor's Unique along an
            # axis (seed 43: [4, 0] along -2): drawn without the axis then.
            del attrs["axis"]
    return attrs, [x]


def compress():
    x = values((INTS + FLOATS)[int(rng.integers(10))], shape(int(rng.integers(1, 3)), empty=False))
    attrs = {}
    length = x.size
    if rng.random() < 0.7:
        attrs["axis"] = int(rng.integers(-x.ndim, x.ndim))
        length = x.shape[attrs["axis"]]
    return attrs, [x, booleans([int(rng.integers(0, length + 1))])]


def reverse_sequence():
    batch, time = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    x = values((INTS + FLOATS)[int(rng.integers(10))], [time, batch, int(rng.integers(1, 3))])
    return {"batch_axis": 1, "time_axis": 0}, [x, rng.integers(0, time + 1, size=batch).astype(np.int64)]


def split():
    x = values((INTS + FLOATS)[int(rng.integers(10))], shape(int(rng.integers(1, 3)), empty=False))
    axis = int(rng.integers(-x.ndim, x.ndim))
    d = x.shape[axis]
    cut = int(rng.integers(0, d + 1))
    return {"axis": axis}, [x, np.array([cut, d - cut], np.int64)]


def eye_like():
    dims = [int(rng.integers(1, 5)), int(rng.integers(1, 5))]
    return {"k": int(rng.integers(-3, 4))}, [values([np.float32, np.int64, np.int32][int(rng.integers(3))], dims)]


def det():
    n = int(rng.integers(1, 4))
    return {}, [values(np.float32, shape(int(rng.integers(0, 2)), empty=False) + [n, n], small=True)]


def mvn():
    # At least two values a channel: over one, ONNX Runtime's variance E[x²] - E[x]² comes out a hair
    # below zero and its square root NaN, where ONNX's function (and kiln) give 0.
    dims = channels_first(4)
    dims[2] = max(dims[2], 2)
    return {}, [values(np.float32, dims, small=True)]


def lrn():
    dims = channels_first(4)
    return {"size": int(rng.choice([1, 3, 5])), "alpha": 1e-3, "beta": 0.75, "bias": 1.0}, [values(np.float32, dims, small=True)]


def cast_like():
    source, target = ((INTS + FLOATS)[int(rng.integers(10))] for _ in range(2))
    return {}, [values(source, shape(), small=np.issubdtype(target, np.integer)), values(target, [1])]


def reshape():
    x = values((INTS + FLOATS)[int(rng.integers(10))], shape(int(rng.integers(1, 4))))
    target = [int(d) for d in rng.permutation(list(x.shape))]
    allowzero = int(rng.integers(0, 2))
    # -1 beside a 0 under allowzero is invalid in ONNX (kiln refuses it; ONNX Runtime answers): not drawn.
    if target and rng.random() < 0.5 and (x.size or allowzero) and not (allowzero and 0 in target):
        target[int(rng.integers(len(target)))] = -1
    elif target and not allowzero and rng.random() < 0.5:
        # 0 copies the input's dimension at that place (without allowzero): the input's own leading
        # dimensions through it, the rest flattened into one.
        at = int(rng.integers(len(target)))
        target = [int(d) for d in x.shape[:at]] + [0, int(np.prod(x.shape[at + 1:]))]
    return {"allowzero": allowzero}, [x, np.array(target, np.int64)]


def squeeze(op):
    def make():
        dims = shape(int(rng.integers(1, 4)))
        dims = [1 if rng.random() < 0.5 else d for d in dims]
        x = values((INTS + FLOATS)[int(rng.integers(10))], dims)
        if op == "Squeeze":
            ones = [a - len(dims) if rng.random() < 0.5 else a for a in range(len(dims)) if dims[a] == 1]
            if rng.random() < 0.3:
                return {}, [x]
            return {}, [x, np.array([a for a in ones if rng.random() < 0.7], np.int64)]
        rank = len(dims) + int(rng.integers(1, 3))
        axes = rng.permutation(rank)[:rank - len(dims)]
        return {}, [x, np.array([a - rank if rng.random() < 0.5 else a for a in axes], np.int64)]
    return op, make


def shape_op():
    x = values(np.float32, shape())
    attrs = {}
    if rng.random() < 0.6:
        attrs["start"] = int(rng.integers(-x.ndim - 2, x.ndim + 2))
    if rng.random() < 0.6:
        attrs["end"] = int(rng.integers(-x.ndim - 2, x.ndim + 2))
    return attrs, [x]


def constant_of_shape():
    dims = np.array(shape(int(rng.integers(0, 3))), np.int64)
    attrs = {}
    if rng.random() < 0.8:
        dtype = (INTS + FLOATS)[int(rng.integers(10))]
        attrs["value"] = numpy_helper.from_array(values(dtype, [1]), "value")
    return attrs, [dims]


def dropout():
    x = floats(shape())
    inputs = [x]
    if rng.random() < 0.5:
        inputs.append(np.array(float(rng.choice([0.0, 0.5])), x.dtype))
        if rng.random() < 0.5:
            inputs.append(np.array(False))
    return {"seed": 3}, inputs


def shrink():
    return {"lambd": float(rng.choice([0.5, 1.0])), "bias": float(rng.choice([0.0, 0.5]))}, [floats(shape())]


OPERATORS = dict([
    binary("Add", INTS + FLOATS), binary("Sub", INTS + FLOATS), binary("Mul", INTS + FLOATS),
    binary("Div", [np.int32, np.int64, np.uint32] + FLOATS, small=True),
    ("Mod", mod_fmod),
    binary("Pow", [np.int32, np.int64, np.float32, np.float64] if X86_64 else FLOATS, small=True),
    binary("Equal", INTS + FLOATS), binary("Less", INTS + FLOATS), binary("Greater", INTS + FLOATS),
    binary("BitwiseAnd", INTS), binary("BitwiseXor", INTS),
    unary("Neg", SIGNED + FLOATS), unary("Abs", INTS + FLOATS), unary("Sign", INTS + FLOATS),
    unary("Relu", [np.int8, np.int32, np.int64] + FLOATS), unary("BitwiseNot", INTS),
    unary("Floor", FLOATS), unary("Ceil", FLOATS), unary("Round", FLOATS), unary("Sqrt", FLOATS),
    unary("Exp", FLOATS), unary("Log", FLOATS), unary("Reciprocal", FLOATS), unary("Erf", FLOATS),
    unary("IsNaN", FLOATS), unary("Softplus", FLOATS),
    variadic("Sum", [np.int32, np.int64, np.uint32] + FLOATS), variadic("Max", INTS + FLOATS),
    variadic("Min", INTS + FLOATS), variadic("Mean", FLOATS),
    ("Cast", cast),
    reduce("ReduceSum", [np.int32, np.int64, np.float32, np.float64]),
    reduce("ReduceProd", [np.int32, np.int64, np.float32]),
    reduce("ReduceMax", [np.int32, np.int64, np.int8, np.uint8, np.float32, np.float64]),
    reduce("ReduceMin", [np.int32, np.int64, np.int8, np.uint8, np.float32, np.float64]),
    reduce("ReduceMean", [np.int32, np.float32, np.float64]),
    reduce("ReduceSumSquare", [np.int32, np.int64, np.float32]),
    reduce("ReduceL1", [np.int32, np.int64, np.float32]),
    ("CumSum", cum_sum), arg("ArgMax"), arg("ArgMin"), ("Clip", clip), ("Where", where),
    ("MatMul", matmul), pool("MaxPool"), pool("AveragePool"), gather("Gather"), gather("GatherElements"),
    ("ScatterElements", scatter_elements), ("BitShift", bit_shift), ("TopK", top_k),
    ("GatherND", gather_nd), ("ScatterND", scatter_nd),
    axis_attr("Softmax"), axis_attr("LogSoftmax"), axis_attr("Hardmax"), axis_attr("Flatten", through_rank=True),
    activation("Sigmoid"), activation("Tanh"), activation("Softsign"), activation("Elu", lambda: {"alpha": 0.7}),
    activation("Selu"), activation("LeakyRelu", lambda: {"alpha": 0.2}), activation("HardSigmoid"),
    activation("HardSwish"), activation("Mish"), activation("ThresholdedRelu", lambda: {"alpha": 0.5}),
    activation("Celu", lambda: {"alpha": 1.5}),
    binary("PRelu", [np.float32, np.float64], small=True),
    reduce("ReduceLogSumExp", [np.float32, np.float64]), reduce("ReduceL2", [np.float32, np.float64]),
    reduce("ReduceLogSum", [np.float32, np.float64]),
    ("Transpose", transpose), ("Slice", slice_), ("Concat", concat), ("Expand", expand), ("Tile", tile),
    ("Pad", pad), ("Trilu", trilu), ("Range", range_), ("OneHot", one_hot), ("NonZero", non_zero),
    ("Gemm", gemm), ("Conv", conv), ("Resize", resize), ("LayerNormalization", layer_norm),
    ("Einsum", einsum), depth_space("DepthToSpace"), depth_space("SpaceToDepth"),
    ("QuantizeLinear", quantize), ("DequantizeLinear", dequantize), ("MatMulInteger", matmul_integer),
    unary("Cos", FLOATS), unary("Sin", FLOATS), unary("Tan", FLOATS), unary("Atan", FLOATS),
    unary("Acos", FLOATS), unary("Asin", FLOATS), unary("Cosh", FLOATS), unary("Sinh", FLOATS),
    unary("Asinh", FLOATS), unary("Acosh", FLOATS), unary("Atanh", FLOATS),
    logical("Not"), logical("And"), logical("Or"), logical("Xor"), ("IsInf", is_inf), ("Shrink", shrink),
    ("LpNormalization", lp_norm), ("InstanceNormalization", instance_norm),
    ("BatchNormalization", batch_norm), global_pool("GlobalAveragePool"), global_pool("GlobalMaxPool"),
    ("ConvTranspose", conv_transpose), ("Unique", unique), ("Compress", compress),
    ("ReverseSequence", reverse_sequence), ("Split", split), ("EyeLike", eye_like), ("Det", det),
    ("MeanVarianceNormalization", mvn), ("LRN", lrn),
    binary("BitwiseOr", INTS), binary("GreaterOrEqual", INTS + FLOATS), binary("LessOrEqual", INTS + FLOATS),
    ("CastLike", cast_like), ("Reshape", reshape), squeeze("Squeeze"), squeeze("Unsqueeze"), ("Shape", shape_op),
    unary("Size", INTS + FLOATS), ("ConstantOfShape", constant_of_shape), unary("Identity", INTS + FLOATS),
    ("Dropout", dropout),
] + layers.OPERATORS)

OPSET = 18


def in_double(model, given):
    """ONNX Runtime's answers to `model` with its float32 inputs and outputs made float64, rounded back."""
    wide = onnx.ModelProto()
    wide.CopyFrom(model)
    for info in wide.graph.input:
        if info.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            info.type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    widen = lambda x: x.astype(np.float64) if x.dtype == np.float32 else x
    session = ort.InferenceSession(wide.SerializeToString(), providers=["CPUExecutionProvider"])
    answers = session.run(None, {n: widen(x) for n, x in given})
    if not any(x.dtype == np.float32 for _, x in given):
        return answers
    return [a.astype(np.float32) if a.dtype == np.float64 else a for a in answers]


SATURATED = []


def exact_matmul_integer(given, answer):
    """MatMulInteger's product in int64, as ONNX defines it, where ONNX Runtime's differs: without VNNI its
    u8·s8 kernel sums pairs of products in int16 (vpmaddubsw), which saturates (seed 11: 255·127 + 8·75 =
    32,985 kept as 32,767, the product 218 short). Counted in the summary line."""
    x = [v.astype(np.int64) for _, v in given]
    # A's zero point is a scalar or one a row ([M]); B's a scalar or one a column ([N]), which broadcasts.
    a = x[0] - (x[2].reshape(-1, 1) if len(x) > 2 and x[2].ndim == 1 else x[2] if len(x) > 2 else 0)
    b = x[1] - (x[3] if len(x) > 3 else 0)
    exact = (a @ b).astype(np.int32)
    if not np.array_equal(exact, answer):
        SATURATED.append(1)
    return exact


def case(op, attrs, inputs):
    """`op`'s model and ONNX Runtime's answers; an input of None is left out (an empty name)."""
    names = [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)]
    given = [(n, x) for n, x in zip(names, inputs) if x is not None]
    outputs = {"TopK": ["y", "indices"], "Split": ["y", "z"], "Unique": ["y", "indices", "inverse", "counts"],
               "Dropout": ["y", "mask"], **layers.OUTPUTS}.get(op, ["y"])
    if op == "MaxPool" and "storage_order" in attrs:
        outputs = ["y", "indices"]
    node = helper.make_node(op, names, outputs, **attrs)
    graph = helper.make_graph(
        [node], op,
        [helper.make_tensor_value_info(n, elem(x.dtype), list(x.shape)) for n, x in given],
        [helper.make_empty_tensor_value_info(o) for o in outputs])
    opset = layers.OPSETS.get(op, OPSET)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 19 else 9
    try:
        if layers.answered_in_double(op, attrs):
            answers = in_double(model, given)
        else:
            session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            answers = session.run(None, dict(given))
    except Exception as e:
        if os.environ.get('DIFF_VERBOSE'): print(op, e)
        return None
    if op == "MatMulInteger":
        answers = [exact_matmul_integer(given, answers[0])]
    # The outputs' types as ONNX Runtime made them: kiln's harness reads the declared types only
    # through the expected tensors, but a complete model declares them.
    for info, answer in zip(graph.output, answers):
        info.CopyFrom(helper.make_tensor_value_info(info.name, elem(answer.dtype), list(answer.shape)))
    return model, answers


def main():
    kept = refused = 0
    for op, make in OPERATORS.items():
        for n in range(per_op):
            attrs, inputs = make()
            made = case(op, attrs, inputs)
            if made is None:
                refused += 1
                continue
            model, answers = made
            folder = os.path.join(out, f"diff_{op}_{n:03d}")
            data = os.path.join(folder, "test_data_set_0")
            os.makedirs(data)
            onnx.save(model, os.path.join(folder, "model.onnx"))
            for i, x in enumerate(x for x in inputs if x is not None):
                with open(os.path.join(data, f"input_{i}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(x).SerializeToString())
            for i, y in enumerate(answers):
                with open(os.path.join(data, f"output_{i}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(y).SerializeToString())
            kept += 1
    print(f"{kept} cases from ONNX Runtime {ort.__version__} ({refused} draws it refused), seed {seed}"
          f"{f'; {len(SATURATED)} MatMulInteger answers exact where its kernel saturated' if SATURATED else ''}")


main()

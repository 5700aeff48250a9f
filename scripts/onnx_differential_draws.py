"""What scripts/onnx_differential.py draws its operators' inputs from: one seeded generator (`reseed`), values
near each type's limits, shapes with empty and one-element axes, broadcast partners."""
import platform

import numpy as np
from onnx import helper

# Seeded by onnx_differential.py before any draw (`reseed`): every module drawing from it shares the stream.
rng = np.random.default_rng(0)


def reseed(seed):
    rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state


# Where ONNX leaves a conversion undefined (a float out of an integer's range; Pow of integers, computed
# in double), ONNX Runtime answers as its CPU converts, and kiln as x86-64 does: such draws are made there.
X86_64 = platform.machine().lower() in ("x86_64", "amd64")
INTS = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64]
FLOATS = [np.float16, np.float32, np.float64]
SIGNED = [np.int8, np.int16, np.int32, np.int64]


def values(dtype, shape, small=False):
    """Values of `dtype`: mostly ordinary ones, some at the type's limits (or NaN, ±inf, -0.0)."""
    count = int(np.prod(shape)) if shape else 1
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        low, high = (max(info.min, -9), min(info.max, 9)) if small else (max(info.min, -100), min(info.max, 100))
        v = rng.integers(low, high + 1, size=count, dtype=np.int64).astype(dtype)
        if not small:
            edges = np.array([info.min, info.max, info.max - 1, info.min + 1, 0, 1], dtype=dtype)
            pick = rng.random(count) < 0.25
            v[pick] = rng.choice(edges, size=int(pick.sum()))
        return v.reshape(shape)
    v = rng.normal(0, 3, size=count)
    if not small:
        edges = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 65504.0, 1e-8, -1e30])
        pick = rng.random(count) < 0.15
        v[pick] = rng.choice(edges, size=int(pick.sum()))
    return v.astype(dtype).reshape(shape)


def shape(rank=None, empty=True):
    rank = int(rng.integers(0, 4)) if rank is None else rank
    dims = [int(rng.integers(1, 5)) for _ in range(rank)]
    if empty and rank and rng.random() < 0.08:
        dims[int(rng.integers(0, rank))] = 0
    return dims


def broadcast_partner(dims):
    """A shape that broadcasts with `dims`: some axes set to 1, some leading ones dropped."""
    other = [d if rng.random() < 0.6 else 1 for d in dims]
    return other[int(rng.integers(0, len(other) + 1)):] if other else other


def elem(dtype):
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def floats(dims, small=False):
    return values([np.float32, np.float64][int(rng.integers(2))], dims, small)


def booleans(dims):
    return values(np.int8, dims).astype(np.bool_)


def channels_first(rank_low=3):
    return [int(rng.integers(1, 3)), int(rng.integers(1, 4))] + [int(rng.integers(1, 5)) for _ in range(
        int(rng.integers(rank_low - 2, 3)))]

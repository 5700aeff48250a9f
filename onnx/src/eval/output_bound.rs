//! The bytes an operator's result will take, worked out from its inputs before it runs, for the operators
//! whose results can be far larger than their inputs: a broadcast of a column against a row, a matrix
//! product's outer dimensions, a gather of many indices, attention's scores, a shape read from a value.
//! candle allocates such a result whole, and an allocation the host refuses aborts the process (a
//! server's every request with it); so under a run's memory limit such a node is refused before it
//! runs, not once its output exists. Other operators make results no larger than their inputs, or
//! bounded by the element caps their own code checks.

use candle_core::Tensor;

use super::node::{Node, int_values, optional};

/// The most values a shape-giving input (Expand's shape, Tile's repeats) is read for here; a longer one
/// is left to its operator, which refuses it.
const MAX_RANK: usize = 64;

/// The bytes `node`'s result will hold (its largest, for an operator with scratch of its own), when it
/// is one of the operators this module knows and its inputs let the size be worked out; `None` leaves
/// the node to its operator (which also refuses inputs that do not fit together).
pub fn output_bytes(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Option<u128> {
    let input = |index| optional(inputs, index);
    match (node.domain(), node.op_type()) {
        ("" | "ai.onnx", op) if COMPARING.contains(&op) => {
            broadcast(inputs.iter().flatten()).map(|(elements, _)| elements)
        }
        ("" | "ai.onnx", op) if BROADCASTING.contains(&op) => broadcast(inputs.iter().flatten())
            .map(|(elements, widest)| elements.saturating_mul(widest)),
        ("" | "ai.onnx", "MatMul") => matmul(input(0)?, input(1)?, [false; 2], width(input(0)?)),
        // The evaluator holds integers as i64 whatever their ONNX type, and QLinearMatMul's product is f64.
        ("" | "ai.onnx", "MatMulInteger") => matmul(input(0)?, input(1)?, [false; 2], 8),
        ("" | "ai.onnx", "QLinearMatMul") => matmul(input(0)?, input(3)?, [false; 2], 8),
        ("" | "ai.onnx", "Gemm") | ("com.microsoft", "FusedMatMul") => {
            let transposed = [node.int("transA", 0) != 0, node.int("transB", 0) != 0];
            matmul(input(0)?, input(1)?, transposed, width(input(0)?))
        }
        ("com.microsoft", "Attention") => attention_scores(node, input(0)?, input(4)),
        ("" | "ai.onnx", "Gather") => gather(node, input(0)?, input(1)?),
        ("" | "ai.onnx", "Expand") => {
            let x = input(0)?;
            let requested = dims_of(input(1)?)?;
            sized(&broadcast_dims(x.dims(), &requested)?, width(x))
        }
        ("" | "ai.onnx", "Tile") => {
            let (x, repeats) = (input(0)?, dims_of(input(1)?)?);
            if repeats.len() != x.rank() {
                return None;
            }
            let dims: Vec<usize> = x
                .dims()
                .iter()
                .zip(&repeats)
                .map(|(&d, &r)| d.saturating_mul(r))
                .collect();
            sized(&dims, width(x))
        }
        ("" | "ai.onnx", "ConstantOfShape") => {
            let width = match node.tensor("value").and_then(|t| t.data_type) {
                None | Some(1) => 4, // FLOAT, the default
                Some(10 | 16) => 2,  // FLOAT16, BFLOAT16
                Some(_) => 8,        // DOUBLE, and the integers held as i64
            };
            sized(&dims_of(input(0)?)?, width)
        }
        // These two compute in f64 on the host.
        ("" | "ai.onnx", "Range") => {
            let [start, limit, delta] = [0, 1, 2].map(|i| input(i).and_then(scalar));
            let count = ((limit? - start?) / delta?).ceil();
            let count = if count.is_nan() { 0.0 } else { count.max(0.0) };
            Some((count.min(u64::MAX as f64) as u128).saturating_mul(8))
        }
        ("" | "ai.onnx", "OneHot") => {
            let depth = scalar(input(1)?)?.clamp(0.0, u64::MAX as f64) as u128;
            sized(input(0)?.dims(), 8).map(|bytes| bytes.saturating_mul(depth))
        }
        ("" | "ai.onnx", "Pad") => pad(node, input(0)?, input(1), input(3)),
        ("" | "ai.onnx", "Conv") | ("com.microsoft", "FusedConv") => {
            conv(node, input(0)?, input(1)?, width(input(0)?))
        }
        ("" | "ai.onnx", "ConvInteger") => conv(node, input(0)?, input(1)?, 8),
        _ => None,
    }
}

/// Gather's result: `data`'s dimensions with the gathered axis replaced by `indices`'.
fn gather(node: &Node<'_>, data: &Tensor, indices: &Tensor) -> Option<u128> {
    let axis = node.int("axis", 0);
    let rank = data.rank() as i64;
    let axis = usize::try_from(if axis < 0 { axis + rank } else { axis })
        .ok()
        .filter(|&a| a < data.rank())?;
    let dims: Vec<usize> = data.dims()[..axis]
        .iter()
        .chain(indices.dims())
        .chain(&data.dims()[axis + 1..])
        .copied()
        .collect();
    sized(&dims, width(data))
}

/// A convolution's result, batch × output channels × ONNX's size of each spatial axis, of `width` bytes
/// each: the output channels are the weight's, so a model's first convolution multiplies what a client
/// sends by their number over the input's.
fn conv(node: &Node<'_>, x: &Tensor, w: &Tensor, width: u128) -> Option<u128> {
    let (xd, wd) = (x.dims(), w.dims());
    if xd.len() < 3 || wd.len() != xd.len() {
        return None;
    }
    let spatial = xd.len() - 2;
    let given = |name: &str, axis: usize, default: i64| {
        node.ints(name)
            .and_then(|values| values.get(axis).copied())
            .unwrap_or(default)
            .max(0) as u128
    };
    let same = node
        .string("auto_pad")
        .is_some_and(|p| p.starts_with("SAME"));
    let mut dims = vec![xd[0], wd[0]];
    for axis in 0..spatial {
        let size = xd[axis + 2] as u128;
        let stride = given("strides", axis, 1).max(1);
        let out = if same {
            size.div_ceil(stride)
        } else {
            let padded = size + given("pads", axis, 0) + given("pads", axis + spatial, 0);
            let reach = given("dilations", axis, 1) * (wd[axis + 2] as u128).saturating_sub(1) + 1;
            padded
                .checked_sub(reach)
                .map_or(0, |room| room / stride + 1)
        };
        dims.push(usize::try_from(out).unwrap_or(usize::MAX));
    }
    sized(&dims, width)
}

/// Pad's result over every axis (opset 18's `axes` input is left to the operator).
fn pad(node: &Node<'_>, x: &Tensor, pads: Option<&Tensor>, axes: Option<&Tensor>) -> Option<u128> {
    if axes.is_some() {
        return None;
    }
    let pads = if node.opset >= 11 {
        small_values(pads?)?
    } else {
        node.ints("pads")?
    };
    let rank = x.rank();
    if pads.len() != 2 * rank {
        return None;
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let padded = (x.dims()[i] as i128) + i128::from(pads[i]) + i128::from(pads[i + rank]);
            usize::try_from(padded.max(0)).unwrap_or(usize::MAX)
        })
        .collect();
    sized(&dims, width(x))
}

/// The operators whose result is their inputs broadcast together, NumPy's way, as booleans (a byte each).
const COMPARING: &[&str] = &[
    "Equal",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "And",
    "Or",
    "Xor",
];

/// The operators whose result is their inputs broadcast together, as wide as the widest input.
const BROADCASTING: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "Where",
    "PRelu",
    "BitShift",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
];

/// The inputs broadcast together: the result's element count, and the widest input's element width.
fn broadcast<'t>(tensors: impl Iterator<Item = &'t Tensor>) -> Option<(u128, u128)> {
    let mut dims = Vec::new();
    let mut widest = 0;
    for tensor in tensors {
        dims = broadcast_dims(&dims, tensor.dims())?;
        widest = widest.max(width(tensor));
    }
    Some((elements(&dims), widest))
}

/// `a` and `b` broadcast together, or `None` where they do not fit (the operator says why).
fn broadcast_dims(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at =
        |dims: &[usize], axis: usize| (axis + dims.len()).checked_sub(rank).map_or(1, |i| dims[i]);
    (0..rank)
        .map(|axis| match (at(a, axis), at(b, axis)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// A matrix product's result: the batch dimensions broadcast, then rows × columns (a 1-D operand
/// contributes none), of `width` bytes each; `transposed` says which operand is given transposed.
fn matmul(a: &Tensor, b: &Tensor, transposed: [bool; 2], width: u128) -> Option<u128> {
    let (ad, bd) = (a.dims(), b.dims());
    if ad.is_empty() || bd.is_empty() {
        return None;
    }
    let matrix = |dims: &[usize], transposed: bool, rows: bool| match dims.len() {
        1 => 1,
        n if rows != transposed => dims[n - 2],
        n => dims[n - 1],
    };
    let rows = matrix(ad, transposed[0], true);
    let columns = matrix(bd, transposed[1], false);
    let batch = broadcast_dims(
        &ad[..ad.len().saturating_sub(2)],
        &bd[..bd.len().saturating_sub(2)],
    )?;
    Some(
        elements(&batch)
            .saturating_mul(elements(&[rows, columns]))
            .saturating_mul(width),
    )
}

/// ONNX Runtime's contrib Attention: its scores, batch × heads × sequence × (past + sequence), are the
/// largest tensor it makes.
fn attention_scores(node: &Node<'_>, x: &Tensor, past: Option<&Tensor>) -> Option<u128> {
    let &[batch, sequence, _] = x.dims() else {
        return None;
    };
    let heads = usize::try_from(node.int("num_heads", 0)).ok()?;
    let total = sequence.saturating_add(past.and_then(|p| p.dims().get(3).copied()).unwrap_or(0));
    sized(&[batch, heads, sequence, total], width(x))
}

/// A 1-D integer input's values, when it holds at most [`MAX_RANK`] of them.
fn small_values(tensor: &Tensor) -> Option<Vec<i64>> {
    (tensor.elem_count() <= MAX_RANK)
        .then(|| int_values(tensor).ok())
        .flatten()
}

/// A shape given as values (Expand's, ConstantOfShape's, Tile's repeats), negative ones as 0.
fn dims_of(tensor: &Tensor) -> Option<Vec<usize>> {
    let values = small_values(tensor)?;
    Some(
        values
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(0))
            .collect(),
    )
}

/// A scalar input's value (Range's bounds, OneHot's depth).
fn scalar(tensor: &Tensor) -> Option<f64> {
    match tensor
        .to_dtype(candle_core::DType::F64)
        .ok()?
        .flatten_all()
        .ok()?
        .to_vec1::<f64>()
        .ok()?[..]
    {
        [value] => Some(value),
        _ => None,
    }
}

/// The bytes of a tensor of `dims` with elements of `width` bytes.
fn sized(dims: &[usize], width: u128) -> Option<u128> {
    Some(elements(dims).saturating_mul(width))
}

/// The element count of `dims`, saturating (a hostile shape's product can pass even u128).
fn elements(dims: &[usize]) -> u128 {
    dims.iter()
        .fold(1u128, |count, &d| count.saturating_mul(d as u128))
}

fn width(tensor: &Tensor) -> u128 {
    tensor.dtype().size_in_bytes() as u128
}

#[cfg(test)]
mod tests;

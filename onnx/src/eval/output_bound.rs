//! What an operator will allocate, worked out from its inputs before it runs, for the operators whose
//! results can be far larger than their inputs: a broadcast of a column against a row, a matrix
//! product's outer dimensions, a gather of many indices, attention's scores, a shape read from a value.
//! candle allocates such a result whole, and an allocation the host refuses aborts the process (a
//! server's every request with it); so under a run's memory limit such a node is refused before it
//! runs, not once its output exists. The scratch an operator allocates beside its result is counted too
//! where it grows with the result (an operand broadcast to the product's batch, a product computed in
//! f32 for a half-precision result, values computed as f64 on the host). Other operators make results
//! no larger than their inputs, or bounded by the element caps their own code checks.

mod products;

use candle_core::{DType, Shape, Tensor};

use self::products::{attention, conv, gemm, integer_matmul, matmul};
use super::node::{Node, int_values, optional};
use super::ops::is_half_on_cpu;

/// The most values a shape-giving input (Expand's shape, Tile's repeats, Pad's pads) is read for here:
/// a longer one is left to its operator, which reads it whole.
const MAX_SHAPE_VALUES: usize = 4096;

/// Bytes an operator keeps per element of its result while it computes it as f64 or i64 on the host:
/// both operands widened and broadcast, copied out of their tensors, and the values computed.
const HOST_BYTES_PER_ELEMENT: u128 = 32;

/// What a node will allocate: its result, and the scratch its operator allocates beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub result: u128,
    pub scratch: u128,
}

impl Bound {
    fn of(result: u128) -> Self {
        Self { result, scratch: 0 }
    }

    fn with_scratch(self, scratch: u128) -> Self {
        Self {
            scratch: self.scratch.saturating_add(scratch),
            ..self
        }
    }

    /// The result and its scratch together, the most the node holds at once.
    pub fn total(self) -> u128 {
        self.result.saturating_add(self.scratch)
    }
}

/// What `node` will allocate, when it is one of the operators this module knows and its inputs let the
/// size be worked out; `None` leaves the node to its operator (which also refuses inputs that do not fit
/// together).
pub fn bound(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Option<Bound> {
    let empty = of_nothing(inputs);
    match of_operator(node, inputs) {
        // An operator's own bound is its result's; an empty input beside it still costs what its other
        // dimensions can make the operator allocate or walk: candle walks an empty broadcast's outer
        // dimensions one by one (PRelu of a `[30207, 4614, 258, 0]` input: 36 billion steps for an
        // empty result, minutes, found by fuzzing).
        Some(known) => Some(match empty {
            Some(empty) if empty.total() > known.total() => {
                known.with_scratch(empty.total() - known.total())
            }
            _ => known,
        }),
        None => empty,
    }
}

/// An operator given an empty input (a zero among its dimensions) can make a result as large as that
/// input's other dimensions: a reduction or a pooling over the empty axis (GlobalAveragePool of a
/// `[512, 65428, 0]` input made 268 MB from no bytes, found by fuzzing). Counted as f64, as wide as any
/// type the evaluator holds; only an empty input whose other dimensions multiply past the run's room is
/// refused by it.
fn of_nothing(inputs: &[Option<Tensor>]) -> Option<Bound> {
    inputs
        .iter()
        .flatten()
        .filter(|t| t.elem_count() == 0)
        .map(|t| {
            t.dims()
                .iter()
                .filter(|&&d| d != 0)
                .fold(1u128, |n, &d| n.saturating_mul(d as u128))
        })
        .max()
        .map(|count| Bound::of(count.saturating_mul(8)))
}

/// The bound of the operators this module knows.
fn of_operator(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Option<Bound> {
    let input = |index| optional(inputs, index);
    let op = match node.domain() {
        "" | "ai.onnx" => node.op_type(),
        "com.microsoft" => return contrib(node, inputs),
        _ => return None,
    };
    match op {
        _ if COMPARING.contains(&op) => Some(Bound::of(broadcast(inputs)?)),
        _ if BROADCASTING.contains(&op) => elementwise(op, inputs),
        "MatMul" => matmul(input(0)?, input(1)?, [false; 2]),
        // MatMulInteger's int32 values are held as i64; QLinearMatMul's are its output zero point's
        // type (uint8 when it has none, int8 held as i64).
        "MatMulInteger" => integer_matmul(input(0)?, input(1)?, 8),
        "QLinearMatMul" => {
            let result_width = input(7).map_or(1, width);
            integer_matmul(input(0)?, input(3)?, result_width)
        }
        "Gemm" => gemm(node, input(0)?, input(1)?, input(2)),
        "Gather" => gather(node, input(0)?, input(1)?),
        "Expand" => {
            let x = input(0)?;
            let requested = dims_of(input(1)?)?;
            sized(&broadcast_dims(x.dims(), &requested)?, width(x)).map(Bound::of)
        }
        "Tile" => {
            let (x, repeats) = (input(0)?, dims_of(input(1)?)?);
            if repeats.len() != x.rank() {
                return None;
            }
            let dims = super::ops::tiled(x.dims(), &repeats);
            // One axis at a time, each step a tensor up to the result's size selected by an index of
            // 4 bytes a position along the axis (at most one a result element).
            let result = sized(&dims, width(x))?;
            Some(
                Bound::of(result)
                    .with_scratch(result.saturating_add(elements(&dims).saturating_mul(4))),
            )
        }
        "ConstantOfShape" => {
            let dtype = match node.tensor("value").and_then(|t| t.data_type) {
                None => DType::F32,
                Some(data_type) => super::tensor_io::dtype_of(data_type)?,
            };
            sized(&dims_of(input(0)?)?, dtype.size_in_bytes() as u128).map(Bound::of)
        }
        // Range's and OneHot's values are computed as f64 on the host, then cast.
        "Range" => {
            let [start, limit, delta] = [0, 1, 2].map(|i| input(i).and_then(scalar));
            let count = ((limit? - start?) / delta?).ceil();
            let count = if count.is_nan() {
                0.0
            } else {
                count.clamp(0.0, u64::MAX as f64)
            } as u128;
            Some(
                Bound::of(count.saturating_mul(width(input(0)?)))
                    .with_scratch(count.saturating_mul(8)),
            )
        }
        "OneHot" => {
            let depth = scalar(input(1)?)?.clamp(0.0, u64::MAX as f64) as u128;
            let count = elements(input(0)?.dims()).saturating_mul(depth);
            Some(
                Bound::of(count.saturating_mul(width(input(2)?)))
                    .with_scratch(count.saturating_mul(8)),
            )
        }
        "Pad" => pad(node, input(0)?, input(1), input(3)),
        "CenterCropPad" => center_crop_pad(node, input(0)?, input(1)?),
        "Resize" | "Upsample" => resize(node, inputs),
        "Conv" => conv(node, input(0)?, input(1)?, width(input(0)?)),
        // ConvInteger's int32 values are held as i64, computed in f64.
        "ConvInteger" => conv(node, input(0)?, input(1)?, 8).map(|b| b.with_scratch(b.result)),
        _ => None,
    }
}

/// ONNX Runtime's contrib operators of this kind.
fn contrib(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Option<Bound> {
    let input = |index| optional(inputs, index);
    match node.op_type() {
        "FusedMatMul" => {
            let transposed = [node.int("transA", 0) != 0, node.int("transB", 0) != 0];
            let (a, b) = (input(0)?, input(1)?);
            // A transposed operand is copied before the product; alpha scales a copy of it.
            let copies: u128 = [(a, transposed[0]), (b, transposed[1])]
                .iter()
                .filter(|(_, t)| *t)
                .map(|(x, _)| bytes(x))
                .sum();
            let product = matmul(a, b, transposed)?;
            let scaled = if node.float("alpha", 1.0) == 1.0 {
                0
            } else {
                product.result
            };
            Some(product.with_scratch(copies + scaled))
        }
        "FusedConv" => conv(node, input(0)?, input(1)?, width(input(0)?)),
        "Attention" => attention(node, input(0)?, input(4)),
        _ => None,
    }
}

/// The operators whose result is their inputs broadcast together, as booleans (a byte each).
#[rustfmt::skip]
const COMPARING: &[&str] = &["Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor"];

/// The operators whose result is their inputs broadcast together, in the first input's type.
#[rustfmt::skip]
const BROADCASTING: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Where", "PRelu", "BitShift",
    "BitwiseAnd", "BitwiseOr", "BitwiseXor",
];

/// A broadcasting operator's result (Where's in its values' type), with the f64 or i64 scratch of the
/// ones computed on the host (integer arithmetic, Mod, the bitwise ones) and the running value of a fold over more than two inputs.
fn elementwise(op: &str, inputs: &[Option<Tensor>]) -> Option<Bound> {
    // Only the operands the operator reads: a binary operator given a third input ignores it, and that
    // input's shape must not hide the bound (BitwiseOr of `[514]`, `[1530, 1]` and an unread `[0]`
    // allocated 18.9 MB under a 2 MB run limit, found by fuzzing).
    let read = match op {
        "Sum" | "Max" | "Min" | "Mean" => inputs.len(),
        "Where" => 3,
        _ => 2,
    };
    let inputs = &inputs[..read.min(inputs.len())];
    let first = inputs.iter().flatten().next()?;
    let typed = if op == "Where" {
        optional(inputs, 1)?
    } else {
        first
    };
    let count = broadcast(inputs)?;
    let result = Bound::of(count.saturating_mul(width(typed)));
    let on_host = match op {
        "Mod" | "BitShift" | "BitwiseAnd" | "BitwiseOr" | "BitwiseXor" => true,
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Sum" | "PRelu" => !first.dtype().is_float(),
        _ => false,
    };
    let folded = matches!(op, "Sum" | "Max" | "Min" | "Mean")
        && inputs.iter().flatten().count() > 2
        || op == "Mean";
    // Max and Min of floats put each operand's NaN back into the result: a mask and a copy per operand,
    // beside the running value when they fold more than two.
    let nan_kept = matches!(op, "Max" | "Min") && first.dtype().is_float();
    let bound = match (on_host, folded || nan_kept) {
        (true, _) => result.with_scratch(count.saturating_mul(HOST_BYTES_PER_ELEMENT)),
        (false, true) => result.with_scratch(result.result.saturating_mul(if nan_kept && folded {
            3
        } else {
            2
        })),
        (false, false) => result,
    };
    // Half-precision Sum and Mean are computed in f32: every input widened, the running sum and its
    // next in f32.
    if matches!(op, "Sum" | "Mean") && is_half_on_cpu(first) {
        let inputs: u128 = inputs
            .iter()
            .flatten()
            .map(|t| t.elem_count() as u128)
            .sum();
        let widened = inputs.saturating_add(count.saturating_mul(2));
        return Some(bound.with_scratch(widened.saturating_mul(4)));
    }
    Some(bound)
}

/// The element count of the inputs broadcast together.
fn broadcast(inputs: &[Option<Tensor>]) -> Option<u128> {
    let mut dims = Vec::new();
    for tensor in inputs.iter().flatten() {
        dims = broadcast_dims(&dims, tensor.dims())?;
    }
    Some(elements(&dims))
}

/// `a` and `b` broadcast together as candle broadcasts them for the operators, or `None` where they do
/// not fit (the operator says why).
fn broadcast_dims(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let shape = Shape::from(a).broadcast_shape_binary_op(&Shape::from(b), "a bound");
    shape.ok().map(|s| s.dims().to_vec())
}

/// Gather's result: `data`'s dimensions with the gathered axis replaced by `indices`'.
fn gather(node: &Node<'_>, data: &Tensor, indices: &Tensor) -> Option<Bound> {
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
    sized(&dims, width(data)).map(Bound::of)
}

/// Pad's result over every axis (opset 18's `axes` input is left to the operator): each axis cropped
/// by its negative pads, then grown by its positive ones; constant padding is made as f64 first.
fn pad(node: &Node<'_>, x: &Tensor, pads: Option<&Tensor>, axes: Option<&Tensor>) -> Option<Bound> {
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
            let (begin, end) = (i128::from(pads[i]), i128::from(pads[i + rank]));
            let kept = (x.dims()[i] as i128 + begin.min(0) + end.min(0)).max(0);
            usize::try_from(kept + begin.max(0) + end.max(0)).unwrap_or(usize::MAX)
        })
        .collect();
    let result = Bound::of(sized(&dims, width(x))?);
    let constant = node.string("mode").is_none_or(|mode| mode == "constant");
    Some(if constant {
        result.with_scratch(elements(&dims).saturating_mul(8))
    } else {
        result
    })
}

/// CenterCropPad's result: the input with its axes at the sizes asked for. candle pads one axis at a
/// time, each step a new tensor (and the zeros beside it) up to the result's size.
fn center_crop_pad(node: &Node<'_>, x: &Tensor, shape: &Tensor) -> Option<Bound> {
    let target = dims_of(shape)?;
    let rank = x.rank();
    let axes: Vec<usize> = match node.ints("axes") {
        Some(axes) => axes
            .iter()
            .map(|&a| super::node::axis(a, rank).ok())
            .collect::<Option<_>>()?,
        None => (0..rank).collect(),
    };
    if axes.len() != target.len() {
        return None;
    }
    let mut dims = x.dims().to_vec();
    for (&a, &want) in axes.iter().zip(&target) {
        dims[a] = want;
    }
    let result = sized(&dims, width(x))?;
    Some(Bound::of(result).with_scratch(result.saturating_mul(2)))
}

/// Resize's (and Upsample's) result, at its sizes or at its scales' floor (the `stretch` policy only;
/// another is left to the operator). Each axis is resampled in turn as f64 on the host, so two arrays of
/// the largest intermediate (every axis at its larger size) are held at once.
fn resize(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Option<Bound> {
    let x = optional(inputs, 0)?;
    let given = |index: usize| optional(inputs, index).filter(|t| t.elem_count() > 0);
    let (scales, sizes) = if node.opset < 11 || node.op_type() == "Upsample" {
        let scales = match optional(inputs, 1) {
            Some(t) => small_floats(t)?,
            None => node.floats("scales")?.into_iter().map(f64::from).collect(),
        };
        (scales, None)
    } else {
        let sizes = given(3).map(small_values).map(Option::unwrap_or_default);
        (given(2).and_then(small_floats).unwrap_or_default(), sizes)
    };
    if node
        .string("keep_aspect_ratio_policy")
        .is_some_and(|policy| policy != "stretch")
    {
        return None;
    }
    let rank = x.rank() as i64;
    let axes: Vec<usize> = match node.ints("axes") {
        Some(axes) => axes
            .iter()
            .map(|&a| {
                usize::try_from(if a < 0 { a + rank } else { a })
                    .ok()
                    .filter(|&a| a < x.rank())
            })
            .collect::<Option<_>>()?,
        None => (0..x.rank()).collect(),
    };
    let (mut out, mut largest) = (x.dims().to_vec(), x.dims().to_vec());
    for (i, &axis) in axes.iter().enumerate() {
        let size = match &sizes {
            Some(sizes) => usize::try_from(*sizes.get(i)?).ok()?,
            None => super::ops::scaled_length(x.dims()[axis], *scales.get(i)?),
        };
        out[axis] = size;
        largest[axis] = largest[axis].max(size);
    }
    let result = Bound::of(sized(&out, width(x))?);
    Some(result.with_scratch(elements(&largest).saturating_mul(16)))
}

/// A 1-D float input's values (Resize's scales), when it holds at most [`MAX_SHAPE_VALUES`] of them.
fn small_floats(tensor: &Tensor) -> Option<Vec<f64>> {
    if tensor.elem_count() > MAX_SHAPE_VALUES {
        return None;
    }
    tensor
        .to_dtype(DType::F64)
        .ok()?
        .flatten_all()
        .ok()?
        .to_vec1::<f64>()
        .ok()
}

/// A 1-D integer input's values, when it holds at most [`MAX_SHAPE_VALUES`] of them.
fn small_values(tensor: &Tensor) -> Option<Vec<i64>> {
    (tensor.elem_count() <= MAX_SHAPE_VALUES)
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
    if tensor.elem_count() != 1 {
        return None;
    }
    small_floats(tensor)?.first().copied()
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

fn bytes(tensor: &Tensor) -> u128 {
    (tensor.elem_count() as u128).saturating_mul(width(tensor))
}

#[cfg(test)]
mod tests;

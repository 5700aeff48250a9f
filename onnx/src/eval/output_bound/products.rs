//! Bounds of the operators that multiply: matrix products, Gemm, convolutions, contrib Attention.

use candle_core::Tensor;

use super::{Bound, broadcast_dims, bytes, elements, sized, width};
use crate::eval::node::Node;
use crate::eval::ops::is_half_on_cpu;

/// A matrix product's shape: its result's element count, and the elements of the operands candle copies
/// out to the product's batch before multiplying (an operand whose batch dimensions broadcast; a 2-D
/// right operand is multiplied in place).
struct Shape {
    count: u128,
    copied: u128,
    /// Both operands' elements at the product's batch: what an integer product on the host copies.
    spread: u128,
}

/// The product's shape with the batch dimensions broadcast (a 1-D operand contributes no rows or
/// columns); `transposed` says which operand is given transposed.
fn shape(a: &Tensor, b: &Tensor, transposed: [bool; 2]) -> Option<Shape> {
    let (ad, bd) = (a.dims(), b.dims());
    if ad.is_empty() || bd.is_empty() {
        return None;
    }
    let matrix = |dims: &[usize], transposed: bool, rows: bool| match dims.len() {
        1 => (1, dims[0]),
        n if rows != transposed => (dims[n - 2], dims[n - 1]),
        n => (dims[n - 1], dims[n - 2]),
    };
    // (rows, depth) of A and (columns, depth) of B.
    let (rows, a_depth) = matrix(ad, transposed[0], true);
    let (columns, b_depth) = matrix(bd, transposed[1], false);
    let (a_batch, b_batch) = (
        &ad[..ad.len().saturating_sub(2)],
        &bd[..bd.len().saturating_sub(2)],
    );
    let batch = broadcast_dims(a_batch, b_batch)?;
    let a_copied = a_batch != batch.as_slice() && !batch.is_empty();
    let b_copied = b_batch != batch.as_slice() && (bd.len() > 2 || a_copied);
    let copies = [(a_copied, rows, a_depth), (b_copied, columns, b_depth)];
    let copied = copies
        .iter()
        .filter(|(copied, ..)| *copied)
        .map(|&(_, side, depth)| elements(&batch).saturating_mul(elements(&[side, depth])))
        .sum();
    let spread = elements(&batch)
        .saturating_mul(elements(&[rows, a_depth]).saturating_add(elements(&[columns, b_depth])));
    Some(Shape {
        count: elements(&batch).saturating_mul(elements(&[rows, columns])),
        copied,
        spread,
    })
}

/// A product in A's type: a half-precision one on the CPU is computed in f32 (both operands widened,
/// the f32 result narrowed).
pub(super) fn matmul(a: &Tensor, b: &Tensor, transposed: [bool; 2]) -> Option<Bound> {
    let product = shape(a, b, transposed)?;
    let result = Bound::of(product.count.saturating_mul(width(a)));
    if a.dtype() == candle_core::DType::I64 {
        // Integers are multiplied on the host, each operand copied out to the product's batch.
        return Some(result.with_scratch(product.spread.saturating_mul(8)));
    }
    if is_half_on_cpu(a) && is_half_on_cpu(b) {
        let widened = (a.elem_count() + b.elem_count()) as u128 + product.copied + product.count;
        return Some(result.with_scratch(widened.saturating_mul(4)));
    }
    Some(result.with_scratch(product.copied.saturating_mul(width(a))))
}

/// MatMulInteger (int32 values held as i64) and QLinearMatMul (its output zero point's type), both
/// computed from f64 (or f32) copies of their operands.
pub(super) fn integer_matmul(a: &Tensor, b: &Tensor, result_width: u128) -> Option<Bound> {
    let product = shape(a, b, [false; 2])?;
    let operands = (a.elem_count() + b.elem_count()) as u128;
    let scratch = (operands + product.copied + 2 * product.count).saturating_mul(8);
    Some(Bound::of(product.count.saturating_mul(result_width)).with_scratch(scratch))
}

/// Gemm: A'·B' (M × N), broadcast with C; the product is a tensor of its own before alpha and C are
/// applied, and C is scaled in a copy.
pub(super) fn gemm(node: &Node<'_>, a: &Tensor, b: &Tensor, c: Option<&Tensor>) -> Option<Bound> {
    if a.rank() != 2 || b.rank() != 2 {
        return None;
    }
    let transposed = [node.int("transA", 0) != 0, node.int("transB", 0) != 0];
    let product = matmul(a, b, transposed)?;
    let Some(c) = c else {
        let scaled = if node.float("alpha", 1.0) == 1.0 {
            0
        } else {
            product.result
        };
        return Some(product.with_scratch(scaled));
    };
    let rows = if transposed[0] {
        a.dims()[1]
    } else {
        a.dims()[0]
    };
    let columns = if transposed[1] {
        b.dims()[0]
    } else {
        b.dims()[1]
    };
    let dims = broadcast_dims(&[rows, columns], c.dims())?;
    let result = sized(&dims, width(a))?;
    Some(Bound::of(result).with_scratch(product.total().saturating_add(bytes(c))))
}

/// A convolution's result, batch × output channels × ONNX's size of each spatial axis, of `width` bytes
/// each: the output channels are the weight's, so a model's first convolution multiplies what a client
/// sends by their number over the input's. A half-precision one on the CPU is computed in f32 (the input
/// widened, the f32 result narrowed).
pub(super) fn conv(node: &Node<'_>, x: &Tensor, w: &Tensor, width: u128) -> Option<Bound> {
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
    let auto_pad = node.string("auto_pad").unwrap_or_default();
    let mut dims = vec![xd[0], wd[0]];
    for axis in 0..spatial {
        let size = xd[axis + 2] as u128;
        let stride = given("strides", axis, 1).max(1);
        let out = if matches!(auto_pad.as_str(), "SAME_UPPER" | "SAME_LOWER") {
            size.div_ceil(stride)
        } else {
            let pads = [axis, axis + spatial].map(|i| given("pads", i, 0));
            let padded = if auto_pad == "VALID" {
                size
            } else {
                size + pads[0] + pads[1]
            };
            let reach = given("dilations", axis, 1) * (wd[axis + 2] as u128).saturating_sub(1) + 1;
            padded
                .checked_sub(reach)
                .map_or(0, |room| room / stride + 1)
        };
        dims.push(usize::try_from(out).unwrap_or(usize::MAX));
    }
    let result = Bound::of(sized(&dims, width)?);
    if is_half_on_cpu(x) {
        let widened = (x.elem_count() as u128).saturating_add(elements(&dims));
        return Some(result.with_scratch(widened.saturating_mul(4)));
    }
    Some(result)
}

/// ONNX Runtime's contrib Attention: its result and present state are no larger than its input times
/// its weights (counted once made); its scores and their softmax, batch × heads × sequence × (past +
/// sequence) each, are the scratch that grows with the square of the sequence a client sends.
pub(super) fn attention(node: &Node<'_>, x: &Tensor, past: Option<&Tensor>) -> Option<Bound> {
    let &[batch, sequence, _] = x.dims() else {
        return None;
    };
    let heads = usize::try_from(node.int("num_heads", 0)).ok()?;
    let total = sequence.saturating_add(past.and_then(|p| p.dims().get(3).copied()).unwrap_or(0));
    let scores = sized(&[batch, heads, sequence, total], width(x))?;
    Some(Bound::of(0).with_scratch(scores.saturating_mul(2)))
}

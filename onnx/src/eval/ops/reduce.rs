//! Reductions over axes (ReduceMean is in `normalization`, beside the norms built on it), ArgMax/ArgMin,
//! CumSum.

use candle_core::{DType, Tensor};

use super::super::narrow_integers::Narrow;
use super::super::node::{Node, axis, int_values, one_value, optional, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// The axes to reduce: an attribute before the op's opset moved them to an input (18 for most, 13 for
/// ReduceSum); none means all, unless `noop_with_empty_axes`.
pub fn reduction_axes(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    input_from: i64,
) -> Result<Option<Vec<usize>>, ModelError> {
    let x = required(inputs, 0)?;
    let axes = if node.opset >= input_from {
        optional(inputs, 1).map(int_values).transpose()?
    } else {
        node.ints("axes")
    };
    Ok(match axes {
        Some(axes) if !axes.is_empty() => {
            let mut dims: Vec<usize> = axes
                .iter()
                .map(|&a| axis(a, x.rank()))
                .collect::<Result<_, _>>()?;
            dims.sort_unstable();
            dims.dedup();
            Some(dims)
        }
        _ if node.int("noop_with_empty_axes", 0) != 0 => None,
        _ => Some((0..x.rank()).collect()),
    })
}

fn finish(node: &Node<'_>, out: Tensor, dims: &[usize]) -> Result<Tensor, ModelError> {
    let mut out = out;
    if node.int("keepdims", 1) == 0 {
        for &d in dims.iter().rev() {
            out = out.squeeze(d)?;
        }
    }
    Ok(out)
}

/// Shared by every Reduce*: `pre` maps values before summing, `post` after.
fn reduce(node: &Node<'_>, inputs: &[Option<Tensor>], input_from: i64, kind: Kind) -> Out {
    let x = required(inputs, 0)?;
    let Some(dims) = reduction_axes(node, inputs, input_from)? else {
        return Ok(vec![x.clone()]);
    };
    if x.elem_count() == 0 {
        // Reducing nothing: the identity of the reduction, in the reduced shape.
        let mut shape = x.dims().to_vec();
        for &d in &dims {
            shape[d] = 1;
        }
        // An integer's extremes are its own type's, not i64's it is held in (an empty int8 ReduceMin is
        // 127, as in ONNX Runtime).
        let (lowest, highest) = match node.input_type(0).and_then(Narrow::of) {
            Some(narrow) => (narrow.min() as f64, narrow.max() as f64),
            None => (f64::NEG_INFINITY, f64::INFINITY),
        };
        let identity = match kind {
            Kind::Prod => 1.0,
            Kind::Max => lowest,
            Kind::Min => highest,
            Kind::LogSum | Kind::LogSumExp => f64::NEG_INFINITY,
            _ => 0.0,
        };
        let out = Tensor::full(identity, shape, x.device())?.to_dtype(x.dtype())?;
        return Ok(vec![finish(node, out, &dims)?]);
    }
    // candle's sqr and the float functions panic on integers: i64 sums stay i64, summed and squared
    // wrapping on overflow as ONNX Runtime's are (candle's panics on it in a debug build).
    let integer_term: Option<fn(i64) -> i64> = match kind {
        _ if x.dtype() != DType::I64 => None,
        Kind::Sum => Some(|v| v),
        Kind::SumSquare => Some(|v| v.wrapping_mul(v)),
        Kind::L1 => Some(i64::wrapping_abs),
        _ => None,
    };
    if let Some(term) = integer_term {
        return Ok(vec![finish(node, integer_sum(x, &dims, term)?, &dims)?]);
    }
    let wide = if x.dtype() == DType::I64 {
        x.clone()
    } else {
        x.to_dtype(DType::F64)?
    };
    let out = match kind {
        Kind::Sum => wide.sum_keepdim(dims.as_slice())?,
        Kind::SumSquare => wide.mul(&wide)?.sum_keepdim(dims.as_slice())?,
        Kind::L1 => wide.abs()?.sum_keepdim(dims.as_slice())?,
        Kind::L2 => {
            let w = wide.to_dtype(DType::F64)?;
            w.mul(&w)?.sum_keepdim(dims.as_slice())?.sqrt()?
        }
        Kind::LogSum => wide
            .to_dtype(DType::F64)?
            .sum_keepdim(dims.as_slice())?
            .log()?,
        Kind::LogSumExp => {
            let w = wide.to_dtype(DType::F64)?;
            let mut m = w.clone();
            for &d in &dims {
                m = m.max_keepdim(d)?;
            }
            // Shift by the maximum for stability; an all -inf slice keeps a shift of 0.
            let shift: Vec<f64> = m
                .flatten_all()?
                .to_vec1::<f64>()?
                .into_iter()
                .map(|v| if v.is_finite() { v } else { 0.0 })
                .collect();
            let shift = Tensor::from_vec(shift, m.shape(), m.device())?;
            w.broadcast_sub(&shift)?
                .exp()?
                .sum_keepdim(dims.as_slice())?
                .log()?
                .broadcast_add(&shift)?
        }
        Kind::Prod => {
            let mut acc = wide.to_dtype(DType::F64)?;
            for &d in &dims {
                let parts = acc.chunk(acc.dim(d)?, d)?;
                let mut product = parts[0].clone();
                for p in &parts[1..] {
                    product = product.mul(p)?;
                }
                acc = product;
            }
            acc
        }
        Kind::Max => {
            let mut acc = wide;
            for &d in &dims {
                acc = acc.max_keepdim(d)?;
            }
            acc
        }
        Kind::Min => {
            let mut acc = wide;
            for &d in &dims {
                acc = acc.min_keepdim(d)?;
            }
            acc
        }
    };
    Ok(vec![finish(node, out.to_dtype(x.dtype())?, &dims)?])
}

/// Sums of `term(v)` over `dims` of an i64 tensor, reduced axes kept as ones, wrapping on overflow.
fn integer_sum(x: &Tensor, dims: &[usize], term: fn(i64) -> i64) -> Result<Tensor, ModelError> {
    let values = x.flatten_all()?.to_vec1::<i64>()?;
    let in_dims = x.dims();
    let mut out_dims = in_dims.to_vec();
    for &d in dims {
        out_dims[d] = 1;
    }
    let (in_strides, out_strides) = (
        super::host::strides(in_dims),
        super::host::strides(&out_dims),
    );
    let mut out = vec![0i64; out_dims.iter().product()];
    for (flat, &v) in values.iter().enumerate() {
        let at: usize = (0..in_dims.len())
            .filter(|axis| !dims.contains(axis))
            .map(|axis| (flat / in_strides[axis]) % in_dims[axis] * out_strides[axis])
            .sum();
        out[at] = out[at].wrapping_add(term(v));
    }
    Ok(Tensor::from_vec(out, out_dims, x.device())?)
}

#[derive(Clone, Copy)]
enum Kind {
    Sum,
    SumSquare,
    L1,
    L2,
    LogSum,
    LogSumExp,
    Prod,
    Max,
    Min,
}

pub fn reduce_sum(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    reduce(node, inputs, 13, Kind::Sum)
}

pub fn reduce_sum_square(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    reduce(node, inputs, 18, Kind::SumSquare)
}

pub fn reduce_l1(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    reduce(node, inputs, 18, Kind::L1)
}

pub fn reduce_l2(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    reduce(node, inputs, 18, Kind::L2)
}

pub fn reduce_log_sum(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    reduce(node, inputs, 18, Kind::LogSum)
}

pub fn reduce_log_sum_exp(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    reduce(node, inputs, 18, Kind::LogSumExp)
}

pub fn reduce_prod(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    reduce(node, inputs, 18, Kind::Prod)
}

pub fn reduce_max(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    reduce(node, inputs, 18, Kind::Max)
}

pub fn reduce_min(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    reduce(node, inputs, 18, Kind::Min)
}

/// ArgMax/ArgMin with `select_last_index` for ties; int64 indices.
fn arg(node: &Node<'_>, inputs: &[Option<Tensor>], largest: bool) -> Out {
    let x = required(inputs, 0)?;
    let dim = axis(node.int("axis", 0), x.rank())?;
    let last = node.int("select_last_index", 0) != 0;
    let moved = x.transpose(dim, x.rank() - 1)?.contiguous()?;
    let len = x.dims()[dim];
    let rows = moved
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let picks: Vec<i64> = rows
        .chunks(len.max(1))
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                let better = if largest {
                    v > row[best]
                } else {
                    v < row[best]
                };
                if better || (last && v == row[best]) {
                    best = i;
                }
            }
            best as i64
        })
        .collect();
    let mut shape = moved.dims().to_vec();
    *shape.last_mut().expect("rank ≥ 1") = 1;
    let out = Tensor::from_vec(picks, shape, x.device())?
        .transpose(dim, x.rank() - 1)?
        .contiguous()?;
    Ok(vec![if node.int("keepdims", 1) == 0 {
        out.squeeze(dim)?
    } else {
        out
    }])
}

pub fn arg_max(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    arg(node, inputs, true)
}

pub fn arg_min(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    arg(node, inputs, false)
}

/// CumSum along an axis given as an input, optionally exclusive and/or reversed. Integers are summed as
/// i64, wrapping as ONNX Runtime's do (through f64 they were rounded past 2^53); floats in f64.
pub fn cum_sum(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let dim = axis(
        one_value(required(inputs, 1)?, "CumSum's axis")? as i64,
        x.rank(),
    )?;
    let order = RunningSum {
        reverse: node.int("reverse", 0) != 0,
        exclusive: node.int("exclusive", 0) != 0,
    };
    // A running sum along the axis, linear in the input: candle's cumsum multiplies by an n × n
    // triangular matrix, so one axis of 65,535 (a client's token count) asked for 4 GB of mask and
    // 34 GB of f64 (found by fuzzing the evaluator under a memory limit).
    let dims = x.dims().to_vec();
    if x.dtype() == DType::I64 {
        let values = x.flatten_all()?.to_vec1::<i64>()?;
        let out = order.along(&values, &dims, dim, i64::wrapping_add);
        return Ok(vec![Tensor::from_vec(out, dims, x.device())?]);
    }
    let values = super::host::values(x)?;
    let out = order.along(&values, &dims, dim, |a, b| a + b);
    super::host::build(out, &dims, x.dtype(), x).map(|t| vec![t])
}

/// Which way CumSum runs, and whether each position leaves itself out.
struct RunningSum {
    reverse: bool,
    exclusive: bool,
}

impl RunningSum {
    fn along<T: Copy + Default>(
        &self,
        values: &[T],
        dims: &[usize],
        dim: usize,
        add: impl Fn(T, T) -> T,
    ) -> Vec<T> {
        let len = dims[dim];
        let inner: usize = dims[dim + 1..].iter().product();
        let outer: usize = dims[..dim].iter().product();
        let mut out = vec![T::default(); values.len()];
        for o in 0..outer {
            for i in 0..inner {
                let mut sum = T::default();
                for step in 0..len {
                    let k = if self.reverse { len - 1 - step } else { step };
                    let at = (o * len + k) * inner + i;
                    if self.exclusive {
                        out[at] = sum;
                        sum = add(sum, values[at]);
                    } else {
                        sum = add(sum, values[at]);
                        out[at] = sum;
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, int, ints, run};

    /// Summed through f64 (before), 2^60 + 1 was 2^60, and the last sum did not wrap.
    #[test]
    fn cum_sum_of_integers_is_exact_and_wraps() {
        let x = i64s(&[1 << 60, 1, i64::MAX - (1 << 60)]);
        let out = run("CumSum", 14, vec![], &[x, i64s(&[0])]);
        assert_eq!(
            out[0].to_vec1::<i64>().unwrap(),
            [1 << 60, (1 << 60) + 1, i64::MIN]
        );
    }

    #[test]
    fn reduce_sum_takes_axes_as_input_from_opset_13() {
        let x = f32s(&[1., 2., 3., 4.], &[2, 2]);
        let out = run("ReduceSum", 13, vec![int("keepdims", 0)], &[x, i64s(&[1])]);
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![3., 7.]);
    }

    #[test]
    fn reduce_max_uses_the_attribute_before_opset_18() {
        let x = f32s(&[1., 5., 3., 4.], &[2, 2]);
        let out = run(
            "ReduceMax",
            13,
            vec![ints("axes", &[0]), int("keepdims", 0)],
            &[x],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![3., 5.]);
    }

    #[test]
    fn argmax_picks_the_first_or_last_of_ties() {
        let x = f32s(&[1., 3., 3.], &[3]);
        let out = run(
            "ArgMax",
            13,
            vec![int("keepdims", 0)],
            std::slice::from_ref(&x),
        );
        assert_eq!(out[0].to_vec0::<i64>().unwrap(), 1);
        let out = run(
            "ArgMax",
            13,
            vec![int("keepdims", 0), int("select_last_index", 1)],
            &[x],
        );
        assert_eq!(out[0].to_vec0::<i64>().unwrap(), 2);
    }

    #[test]
    fn cumsum_exclusive_reverse() {
        let out = run(
            "CumSum",
            14,
            vec![int("exclusive", 1), int("reverse", 1)],
            &[f32s(&[1., 2., 3.], &[3]), i64s(&[0])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![5., 3., 0.]);
    }

    /// Integer sums and sums of squares wrap on overflow, over several axes (candle's panicked in a debug
    /// build: found by a review of the evaluator fuzzer's fixes).
    #[test]
    fn integer_sums_wrap_over_any_axes() {
        let big = i64s(&[-2_147_483_648, -2_147_483_648]);
        let out = run(
            "ReduceSumSquare",
            18,
            vec![int("keepdims", 0)],
            &[big, None],
        );
        assert_eq!(out[0].to_vec0::<i64>().unwrap(), i64::MIN);
        let x = candle_core::Tensor::new(
            &[[[1i64, 2], [3, 4]], [[5, 6], [7, 8]]],
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let out = run("ReduceSum", 13, vec![], &[Some(x), i64s(&[0, 2])]);
        assert_eq!(out[0].dims(), [1, 2, 1]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<i64>().unwrap(),
            [14, 22]
        );
    }

    /// A middle axis with rows on either side, and an axis of 65,535 (candle's cumsum made a 65,535²
    /// mask for it, 4 GB, and the process aborted).
    #[test]
    fn cumsum_runs_along_any_axis_in_linear_memory() {
        let x = f32s(
            &[1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.],
            &[2, 3, 2],
        );
        let out = run("CumSum", 14, vec![], &[x, i64s(&[1])]);
        let expected = [1., 2., 4., 6., 9., 12., 7., 8., 16., 18., 27., 30.];
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            expected
        );
        let long = candle_core::Tensor::ones(
            (1, 65_535),
            candle_core::DType::I64,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let out = run("CumSum", 14, vec![], &[Some(long), i64s(&[1])]);
        let sums = out[0].flatten_all().unwrap().to_vec1::<i64>().unwrap();
        assert_eq!((sums[0], sums[65_534]), (1, 65_535));
    }
}

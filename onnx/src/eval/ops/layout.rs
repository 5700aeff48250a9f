//! Operators that move data: Transpose, Concat, Slice, Gather.

use candle_core::{DType, Tensor};

use super::super::node::{Node, axis, int_values, one_value, optional, required};
use super::host::{element_count, iteration_count};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// Without `perm`, ONNX reverses the dims.
pub fn transpose(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let perm: Vec<usize> = match node.ints("perm") {
        Some(perm) => perm
            .iter()
            .map(|&p| axis(p, x.rank()))
            .collect::<Result<_, _>>()?,
        None => (0..x.rank()).rev().collect(),
    };
    Ok(vec![x.permute(perm)?.contiguous()?])
}

pub fn concat(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let parts: Vec<&Tensor> = inputs.iter().flatten().collect();
    let first = parts
        .first()
        .ok_or_else(|| ModelError::Evaluation("Concat of nothing".to_owned()))?;
    let dim = axis(node.int("axis", 0), first.rank())?;
    Ok(vec![Tensor::cat(&parts, dim)?])
}

/// Slice with ONNX's clamping rules; bounds are attributes before opset 10 and inputs from 10 on.
pub fn slice(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let (starts, ends, axes, steps) = if node.opset >= 10 {
        (
            int_values(required(inputs, 1)?)?,
            int_values(required(inputs, 2)?)?,
            optional(inputs, 3).map(int_values).transpose()?,
            optional(inputs, 4).map(int_values).transpose()?,
        )
    } else {
        (
            node.ints("starts").unwrap_or_default(),
            node.ints("ends").unwrap_or_default(),
            node.ints("axes"),
            None,
        )
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if [ends.len(), axes.len(), steps.len()] != [starts.len(); 3] {
        return Err(ModelError::Evaluation(format!(
            "Slice: {} starts, {} ends, {} axes and {} steps",
            starts.len(),
            ends.len(),
            axes.len(),
            steps.len()
        )));
    }
    let mut out = x.clone();
    for i in 0..starts.len() {
        let dim = axis(axes[i], x.rank())?;
        let len = x.dims()[dim] as i64;
        let step = steps[i];
        if step == 0 {
            return Err(ModelError::Evaluation("Slice step 0".to_owned()));
        }
        let resolve = |v: i64| if v < 0 { v + len } else { v };
        let indices: Vec<i64> = if step > 0 {
            let (s, e) = (
                resolve(starts[i]).clamp(0, len),
                resolve(ends[i]).clamp(0, len),
            );
            (s..e).step_by(step as usize).collect()
        } else if len == 0 {
            Vec::new()
        } else {
            // Backwards, a start is clamped into the axis (ONNX; -2 on an axis of 1 is its one value)
            // and an end may be one before it.
            let (s, e) = (
                resolve(starts[i]).clamp(0, len - 1),
                resolve(ends[i]).clamp(-1, len - 1),
            );
            let mut v = Vec::new();
            let mut at = s;
            while at > e {
                v.push(at);
                at += step;
            }
            v
        };
        out = if indices.is_empty() || out.elem_count() == 0 {
            // An empty result made anew: a view of an empty tensor can start past its storage, and
            // candle's selection from it panicked (found by the differential check).
            let mut dims = out.dims().to_vec();
            dims[dim] = indices.len();
            Tensor::zeros(dims, out.dtype(), out.device())?
        } else if step == 1 {
            let start = indices.first().copied().unwrap_or(0) as usize;
            out.narrow(dim, start, indices.len())?
        } else {
            let index = Tensor::from_vec(
                indices.iter().map(|&v| v as u32).collect::<Vec<_>>(),
                indices.len(),
                x.device(),
            )?;
            // candle selects from contiguous tensors only: an axis sliced before this one is a view.
            out.contiguous()?.index_select(&index, dim)?
        };
    }
    Ok(vec![out.contiguous()?])
}

/// Gather along `axis` with indices of any rank; negative indices count from the end.
pub fn gather(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let data = required(inputs, 0)?;
    let indices = required(inputs, 1)?;
    let dim = axis(node.int("axis", 0), data.rank())?;
    let len = data.dims()[dim] as i64;
    let flat: Vec<u32> = indices
        .to_dtype(DType::I64)?
        .flatten_all()?
        .to_vec1::<i64>()?
        .into_iter()
        .map(|i| {
            let resolved = if i < 0 { i + len } else { i };
            if (0..len).contains(&resolved) {
                Ok(resolved as u32)
            } else {
                Err(ModelError::Evaluation(format!(
                    "Gather index {i} is out of range for {len}"
                )))
            }
        })
        .collect::<Result<_, _>>()?;
    let count = flat.len();
    let selected = data.index_select(&Tensor::from_vec(flat, count, data.device())?, dim)?;
    let mut shape: Vec<usize> = data.dims()[..dim].to_vec();
    shape.extend_from_slice(indices.dims());
    shape.extend_from_slice(&data.dims()[dim + 1..]);
    // An empty result may still have long dimensions (empty indices of a long one beside data's): their
    // product can pass what a shape holds, and candle's reshape multiplies them out. A result with values
    // was allocated whole already.
    if shape.contains(&0) {
        iteration_count(&shape, "Gather's result")?;
    }
    Ok(vec![selected.reshape(shape)?])
}

/// Split into the node's outputs: by the `split` sizes (an input from opset 13, an attribute before), by
/// `num_outputs` (opset 18), or equally.
pub fn split(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let dim = axis(node.int("axis", 0), x.rank())?;
    let len = x.dims()[dim];
    let parts = node.output_count().max(1);
    let sizes: Vec<usize> = match if node.opset >= 13 {
        optional(inputs, 1).map(int_values).transpose()?
    } else {
        node.ints("split")
    } {
        Some(sizes) => {
            let sizes: Vec<usize> = sizes
                .iter()
                .map(|&s| usize::try_from(s).unwrap_or(0))
                .collect();
            if sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s)) != Some(len) {
                return Err(ModelError::Evaluation(format!(
                    "Split: sizes {sizes:?} do not add up to the axis of {len}"
                )));
            }
            sizes
        }
        None => {
            let n = node.int("num_outputs", parts as i64).max(1);
            // More outputs than values (or declared outputs) is no split a model can mean.
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= len.max(parts))
                .ok_or_else(|| {
                    ModelError::Evaluation(format!("Split: {n} outputs for an axis of {len}"))
                })?;
            let chunk = len.div_ceil(n);
            (0..n)
                .map(|i| chunk.min(len.saturating_sub(i * chunk)))
                .collect()
        }
    };
    let mut start = 0;
    let mut out = Vec::with_capacity(sizes.len());
    for size in sizes {
        out.push(x.narrow(dim, start, size)?.contiguous()?);
        start += size;
    }
    Ok(out)
}

/// Pad with a constant, the edge value, or a reflection; pads as an input from opset 11.
pub fn pad(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let rank = x.rank();
    let pads = if node.opset >= 11 {
        int_values(required(inputs, 1)?)?
    } else {
        node.ints("pads").unwrap_or_default()
    };
    let value = if node.opset >= 11 {
        optional(inputs, 2)
            .map(|t| -> Result<f64, ModelError> {
                Ok(t.to_dtype(DType::F64)?
                    .flatten_all()?
                    .to_vec1::<f64>()?
                    .first()
                    .copied()
                    .unwrap_or(0.0))
            })
            .transpose()?
            .unwrap_or(0.0)
    } else {
        f64::from(node.float("value", 0.0))
    };
    let axes: Vec<usize> = match optional(inputs, 3) {
        Some(a) => int_values(a)?
            .iter()
            .map(|&a| axis(a, rank))
            .collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    let n = axes.len();
    check_pads(x, &axes, &pads)?;
    let mode = node.string("mode").unwrap_or_else(|| "constant".to_owned());
    let mut out = x.clone();
    for (i, &dim) in axes.iter().enumerate() {
        let (begin, end) = (pads[i], pads[i + n]);
        if begin < 0 || end < 0 {
            let start = begin.saturating_neg().max(0) as usize;
            let keep = (out.dim(dim)? as i64)
                .saturating_add(begin.min(0))
                .saturating_add(end.min(0))
                .max(0) as usize;
            out = out.narrow(dim, start.min(out.dim(dim)?), keep)?;
        }
        let (begin, end) = (begin.max(0) as usize, end.max(0) as usize);
        if begin == 0 && end == 0 {
            continue;
        }
        let len = out.dim(dim)?;
        if len == 0 && matches!(mode.as_str(), "edge" | "reflect" | "wrap") {
            return Err(ModelError::Evaluation(format!(
                "Pad: {mode} padding of an empty axis {dim}"
            )));
        }
        out = match mode.as_str() {
            "edge" => out.pad_with_same(dim, begin, end)?,
            "reflect" => {
                let index: Vec<u32> = (0..begin)
                    .rev()
                    .map(|i| (i + 1).min(len - 1) as u32)
                    .chain(0..len as u32)
                    .chain((0..end).map(|i| (len as i64 - 2 - i as i64).max(0) as u32))
                    .collect();
                let count = index.len();
                out.index_select(&Tensor::from_vec(index, count, out.device())?, dim)?
            }
            "wrap" => {
                let index: Vec<u32> = (0..begin)
                    .map(|i| ((len - begin % len + i) % len) as u32)
                    .chain(0..len as u32)
                    .chain((0..end).map(|i| (i % len) as u32))
                    .collect();
                let count = index.len();
                out.index_select(&Tensor::from_vec(index, count, out.device())?, dim)?
            }
            _ => {
                let mut shape = out.dims().to_vec();
                let mut parts = Vec::new();
                if begin > 0 {
                    shape[dim] = begin;
                    parts.push(
                        Tensor::full(value, shape.clone(), out.device())?.to_dtype(out.dtype())?,
                    );
                }
                parts.push(out.clone());
                if end > 0 {
                    shape[dim] = end;
                    parts.push(
                        Tensor::full(value, shape.clone(), out.device())?.to_dtype(out.dtype())?,
                    );
                }
                Tensor::cat(&parts, dim)?
            }
        };
    }
    Ok(vec![out])
}

/// Pads must give a begin and an end for each axis, and the padded result must fit the element budget.
fn check_pads(x: &Tensor, axes: &[usize], pads: &[i64]) -> Result<(), ModelError> {
    let n = axes.len();
    if pads.len() != 2 * n {
        return Err(ModelError::Evaluation(format!(
            "Pad: {} pads for {n} axes",
            pads.len()
        )));
    }
    let mut dims: Vec<i64> = x.dims().iter().map(|&d| d as i64).collect();
    for (i, &dim) in axes.iter().enumerate() {
        // Crops apply before pads, so the positive pads alone bound the largest intermediate.
        dims[dim] = dims[dim]
            .saturating_add(pads[i].max(0))
            .saturating_add(pads[i + n].max(0));
    }
    let dims: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
    element_count(&dims, "Pad's output")?;
    Ok(())
}

/// Reverses the first `sequence_lens[b]` steps along `time_axis` of each batch entry `b`.
pub fn reverse_sequence(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let lens = int_values(required(inputs, 1)?)?;
    let rank = x.rank();
    let (batch, time) = (
        axis(node.int("batch_axis", 1), rank)?,
        axis(node.int("time_axis", 0), rank)?,
    );
    let dims = x.dims();
    if batch == time || lens.len() != dims[batch] {
        return Err(ModelError::Evaluation(format!(
            "ReverseSequence needs distinct axes and one length per batch entry, not {} for {dims:?}",
            lens.len()
        )));
    }
    if lens.iter().any(|&l| l < 0 || l as usize > dims[time]) {
        return Err(ModelError::Evaluation(format!(
            "ReverseSequence lengths {lens:?} exceed the {} steps",
            dims[time]
        )));
    }
    let stride = |d: usize| dims[d + 1..].iter().product::<usize>();
    let (batch_stride, time_stride) = (stride(batch), stride(time));
    let sources: Vec<u32> = (0..x.elem_count())
        .map(|p| {
            let b = (p / batch_stride) % dims[batch];
            let t = (p / time_stride) % dims[time];
            let len = lens[b] as usize;
            let source = if t < len {
                p + (len - 1 - t) * time_stride - t * time_stride
            } else {
                p
            };
            source as u32
        })
        .collect();
    let sources = Tensor::from_vec(sources, x.elem_count(), x.device())?;
    Ok(vec![
        x.flatten_all()?.index_select(&sources, 0)?.reshape(dims)?,
    ])
}

/// The upper (default) or lower triangle of the last two dims, shifted by `k`.
pub fn trilu(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    if x.rank() < 2 {
        return Err(ModelError::Evaluation(format!(
            "Trilu needs a matrix or a batch of them, not {:?}",
            x.dims()
        )));
    }
    let k = optional(inputs, 1)
        .map(|k| one_value(k, "Trilu's k"))
        .transpose()?
        .map_or(0, |k| k as i64);
    let upper = node.int("upper", 1) != 0;
    let (rows, cols) = (x.dim(x.rank() - 2)?, x.dim(x.rank() - 1)?);
    let mask: Vec<u8> = (0..rows * cols)
        .map(|i| {
            let (r, c) = ((i / cols) as i64, (i % cols) as i64);
            u8::from(if upper { c - r >= k } else { c - r <= k })
        })
        .collect();
    let mask = Tensor::from_vec(mask, (rows, cols), x.device())?.broadcast_as(x.shape())?;
    Ok(vec![mask.where_cond(x, &x.zeros_like()?)?])
}

/// GatherElements: `indices` has the data's rank; negative indices count from the end.
pub fn gather_elements(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let data = required(inputs, 0)?;
    let indices = required(inputs, 1)?;
    let dim = axis(node.int("axis", 0), data.rank())?;
    let len = data.dims()[dim] as i64;
    if indices.rank() != data.rank() {
        return Err(ModelError::Evaluation(format!(
            "GatherElements: indices {:?} and data {:?} differ in rank",
            indices.dims(),
            data.dims()
        )));
    }
    let fixed: Vec<u32> = int_values(indices)?
        .into_iter()
        .map(|i| {
            let resolved = if i < 0 { i + len } else { i };
            u32::try_from(resolved)
                .ok()
                .filter(|&r| i64::from(r) < len)
                .ok_or_else(|| {
                    ModelError::Evaluation(format!(
                        "GatherElements index {i} is out of range for {len}"
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    let index = Tensor::from_vec(fixed, indices.shape(), data.device())?;
    Ok(vec![data.contiguous()?.gather(&index.contiguous()?, dim)?])
}

/// DepthToSpace (DCR or CRD) on NCHW.
pub fn depth_to_space(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let (n, c, h, w) = x.dims4()?;
    let b = block_size(node, c, 1)?;
    let y = if node.string("mode").as_deref() == Some("CRD") {
        x.reshape((n, c / (b * b), b, b, h, w))?
            .permute((0, 1, 4, 2, 5, 3))?
    } else {
        x.reshape((n, b, b, c / (b * b), h, w))?
            .permute((0, 3, 4, 1, 5, 2))?
    };
    Ok(vec![y.contiguous()?.reshape((
        n,
        c / (b * b),
        h * b,
        w * b,
    ))?])
}

/// `blocksize`, checked so that b^(power + 1) divides `dim`: the channels by b² for DepthToSpace, the
/// height by b for SpaceToDepth (the reshapes would fail or, for b = 0, divide by zero).
fn block_size(node: &Node<'_>, dim: usize, power: u32) -> Result<usize, ModelError> {
    let b = node.int("blocksize", 1);
    usize::try_from(b)
        .ok()
        .filter(|b| (1..=1 << 16).contains(b))
        .filter(|&b| dim.is_multiple_of(b.pow(power + 1)))
        .ok_or_else(|| {
            ModelError::Evaluation(format!(
                "{}: blocksize {b} does not divide the input's dim {dim}",
                node.op_type()
            ))
        })
}

pub fn space_to_depth(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let (n, c, h, w) = x.dims4()?;
    let b = block_size(node, h, 0)?;
    if !w.is_multiple_of(b) {
        return Err(ModelError::Evaluation(format!(
            "SpaceToDepth: blocksize {b} does not divide the width {w}"
        )));
    }
    let y = x
        .reshape((n, c, h / b, b, w / b, b))?
        .permute((0, 3, 5, 1, 2, 4))?;
    Ok(vec![y.contiguous()?.reshape((
        n,
        c * b * b,
        h / b,
        w / b,
    ))?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, ints, run};

    #[test]
    fn hostile_shapes_and_indices_are_errors() {
        use super::super::testing::{error, int};
        let vector = f32s(&[1., 2.], &[2]);
        assert!(error("Trilu", 14, vec![], &[vector]).contains("matrix"));
        let x = f32s(&[0.; 12], &[1, 3, 2, 2]);
        let e = error(
            "DepthToSpace",
            13,
            vec![int("blocksize", 2)],
            std::slice::from_ref(&x),
        );
        assert!(e.contains("blocksize 2"), "{e}");
        let e = error("DepthToSpace", 13, vec![int("blocksize", 0)], &[x]);
        assert!(e.contains("blocksize 0"), "{e}");
        let data = f32s(&[1., 2., 3.], &[3]);
        let e = error("GatherElements", 13, vec![], &[data, i64s(&[-4])]);
        assert!(e.contains("out of range"), "{e}");
        // Empty indices of a long dimension beside data's: a result shape whose product overflows (the
        // evaluator's fuzzer found candle's reshape panicking on it).
        let data = f32s(&[], &[8, 0]);
        let indices = Some(
            candle_core::Tensor::zeros(
                (1usize << 62, 0),
                candle_core::DType::I64,
                &candle_core::Device::Cpu,
            )
            .unwrap(),
        );
        let e = error("Gather", 13, vec![int("axis", 1)], &[data, indices]);
        assert!(e.contains("Gather's result"), "{e}");
    }

    #[test]
    fn transpose_without_perm_reverses_the_dims() {
        let out = run("Transpose", 13, vec![], &[f32s(&[0.; 6], &[1, 2, 3])]);
        assert_eq!(out[0].dims(), &[3, 2, 1]);
    }

    #[test]
    fn transpose_follows_perm() {
        let x = f32s(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
        let out = run("Transpose", 13, vec![ints("perm", &[1, 0])], &[x]);
        assert_eq!(
            out[0].to_vec2::<f32>().unwrap(),
            vec![vec![1., 4.], vec![2., 5.], vec![3., 6.]]
        );
    }

    #[test]
    fn slice_clamps_and_steps_backwards() {
        let x = f32s(&[0., 1., 2., 3., 4.], &[5]);
        let out = run(
            "Slice",
            13,
            vec![],
            &[x.clone(), i64s(&[1]), i64s(&[i64::MAX])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![1., 2., 3., 4.]);
        let out = run(
            "Slice",
            13,
            vec![],
            &[x, i64s(&[-1]), i64s(&[i64::MIN]), i64s(&[0]), i64s(&[-2])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![4., 2., 0.]);
    }

    #[test]
    fn gather_embeds_rows_for_a_matrix_of_ids() {
        let table = f32s(&[0., 0., 1., 1., 2., 2.], &[3, 2]);
        let ids = Some(candle_core::Tensor::new(&[[2i64, -3]], &candle_core::Device::Cpu).unwrap());
        let out = run("Gather", 13, vec![], &[table, ids]);
        assert_eq!(out[0].dims(), &[1, 2, 2]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![2., 2., 0., 0.]
        );
    }

    #[test]
    fn concat_joins_shape_vectors() {
        let out = run(
            "Concat",
            13,
            vec![super::super::testing::int("axis", 0)],
            &[i64s(&[1, 2]), i64s(&[3])],
        );
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn reverse_sequence_reverses_each_batch_entry_up_to_its_length() {
        // time_axis 0, batch_axis 1: columns are sequences of lengths 2 and 3.
        let x = f32s(&[1., 4., 2., 5., 3., 6.], &[3, 2]);
        let out = run(
            "ReverseSequence",
            10,
            vec![
                super::super::testing::int("batch_axis", 1),
                super::super::testing::int("time_axis", 0),
            ],
            &[x, i64s(&[2, 3])],
        );
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![2., 6., 1., 5., 3., 4.]
        );
    }
}

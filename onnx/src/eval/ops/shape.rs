//! Operators on shapes: Shape, Reshape, Unsqueeze, Squeeze, Expand.

use candle_core::Tensor;

use super::super::node::{Node, axis, int_values, optional, required};
use super::host::element_count;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn shape_error(message: String) -> ModelError {
    ModelError::Evaluation(message)
}

/// The input's shape as int64, optionally sliced by `start`/`end` (opset 15).
pub fn shape(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let dims: Vec<i64> = x.dims().iter().map(|&d| d as i64).collect();
    let rank = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
    let (start, end) = (clamp(node.int("start", 0)), clamp(node.int("end", rank)));
    let slice = if start < end {
        dims[start..end].to_vec()
    } else {
        Vec::new()
    };
    let len = slice.len();
    Ok(vec![Tensor::from_vec(slice, len, x.device())?])
}

/// Reshape with ONNX's 0 (copy the input's dim, unless `allowzero`) and -1 (infer).
pub fn reshape(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let requested = int_values(required(inputs, 1)?)?;
    let allow_zero = node.int("allowzero", 0) != 0;
    let mut dims = Vec::with_capacity(requested.len());
    let mut infer = None;
    for (i, &d) in requested.iter().enumerate() {
        match d {
            0 if !allow_zero => dims.push(*x.dims().get(i).ok_or_else(|| {
                shape_error(format!("Reshape: dim {i} copies a dim the input lacks"))
            })?),
            -1 if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            d if d >= 0 => dims.push(d as usize),
            d => return Err(shape_error(format!("Reshape: invalid dim {d}"))),
        }
    }
    // Dims come from the model: multiply with a check, so a hostile shape is an error, not an overflow.
    let elements = |dims: &[usize]| dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if let Some(i) = infer {
        let known = elements(&dims).unwrap_or(0);
        if known == 0 || x.elem_count() % known != 0 {
            return Err(shape_error(format!(
                "Reshape: cannot infer a dim of {:?} into {requested:?}",
                x.dims()
            )));
        }
        dims[i] = x.elem_count() / known;
    }
    if elements(&dims) != Some(x.elem_count()) {
        return Err(shape_error(format!(
            "Reshape: {:?} cannot become {requested:?}",
            x.dims()
        )));
    }
    Ok(vec![x.reshape(dims)?])
}

fn axes_of(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Option<Vec<i64>>, ModelError> {
    if node.opset >= 13 {
        optional(inputs, 1).map(int_values).transpose()
    } else {
        Ok(node.ints("axes"))
    }
}

pub fn unsqueeze(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let axes =
        axes_of(node, inputs)?.ok_or_else(|| shape_error("Unsqueeze needs axes".to_owned()))?;
    let rank = x.rank() + axes.len();
    let mut resolved: Vec<usize> = axes
        .iter()
        .map(|&a| axis(a, rank))
        .collect::<Result<_, _>>()?;
    resolved.sort_unstable();
    let mut out = x.clone();
    for a in resolved {
        out = out.unsqueeze(a)?;
    }
    Ok(vec![out])
}

pub fn squeeze(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    // An empty axes input squeezes every axis of one, as no axes do (ONNX Runtime reads it so).
    let mut resolved: Vec<usize> = match axes_of(node, inputs)?.filter(|a| !a.is_empty()) {
        Some(axes) => axes
            .iter()
            .map(|&a| axis(a, x.rank()))
            .collect::<Result<_, _>>()?,
        None => (0..x.rank()).filter(|&d| x.dims()[d] == 1).collect(),
    };
    resolved.sort_unstable();
    resolved.dedup();
    let mut out = x.clone();
    for a in resolved.into_iter().rev() {
        // candle leaves an axis longer than one as it is; ONNX calls squeezing it an error.
        if x.dims()[a] != 1 {
            return Err(ModelError::Evaluation(format!(
                "Squeeze: axis {a} has length {}, not 1",
                x.dims()[a]
            )));
        }
        out = out.squeeze(a)?;
    }
    Ok(vec![out])
}

/// Broadcasts the input to a shape, both ways (the result may be larger than the requested shape).
pub fn expand(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let requested: Vec<usize> = int_values(required(inputs, 1)?)?
        .iter()
        .map(|&d| d.max(0) as usize)
        .collect();
    let target = x
        .shape()
        .broadcast_shape_binary_op(&requested.into(), "Expand")?;
    element_count(target.dims(), "Expand's output")?;
    Ok(vec![x.broadcast_as(target)?.contiguous()?])
}

/// [d0..d(axis-1)] × [d(axis)..] as a matrix.
pub fn flatten(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let a = node.int("axis", 1);
    let a = if a < 0 { a + x.rank() as i64 } else { a } as usize;
    let rows: usize = x.dims()[..a.min(x.rank())].iter().product();
    Ok(vec![x.reshape((rows, x.elem_count() / rows.max(1)))?])
}

pub fn size(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    Ok(vec![Tensor::new(x.elem_count() as i64, x.device())?])
}

/// A tensor of the given shape filled with `value` (fp32 zero by default).
pub fn constant_of_shape(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let dims: Vec<usize> = int_values(required(inputs, 0)?)?
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    element_count(&dims, "ConstantOfShape's output")?;
    let device = candle_core::Device::Cpu;
    let value = match node.tensor("value") {
        Some(t) => super::super::tensor_io::from_proto(t, None, &device)?.flatten_all()?,
        None => Tensor::zeros(1, candle_core::DType::F32, &device)?,
    };
    Ok(vec![value.reshape(())?.broadcast_as(dims)?.contiguous()?])
}

/// Tile's result shape: each dimension times its repeats (saturating; the caller caps the count).
pub(crate) fn tiled(dims: &[usize], repeats: &[usize]) -> Vec<usize> {
    dims.iter()
        .zip(repeats)
        .map(|(&d, &r)| d.saturating_mul(r))
        .collect()
}

pub fn tile(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let repeats: Vec<usize> = int_values(required(inputs, 1)?)?
        .iter()
        .map(|&r| usize::try_from(r).unwrap_or(0))
        .collect();
    if repeats.len() != x.rank() {
        return Err(ModelError::Evaluation(format!(
            "Tile: {} repeats for an input of rank {}",
            repeats.len(),
            x.rank()
        )));
    }
    let dims = tiled(x.dims(), &repeats);
    if element_count(&dims, "Tile's output")? == 0 {
        return Ok(vec![Tensor::zeros(dims, x.dtype(), x.device())?]);
    }
    // One selection per repeated axis, its index as long as the axis it makes: candle's repeat keeps a
    // copy of the tensor per repeat, a million of them for an empty input's million repeats (16.8 MB
    // under a 2 MB run limit, found by fuzzing), or for a one-value input's.
    let mut out = x.contiguous()?;
    for (axis, &times) in repeats.iter().enumerate() {
        if times == 1 {
            continue;
        }
        let length = out.dim(axis)?;
        let index: Vec<u32> = (0..times).flat_map(|_| 0..length as u32).collect();
        let index = Tensor::from_vec(index, length * times, out.device())?;
        out = out.index_select(&index, axis)?;
    }
    Ok(vec![out])
}

/// start, start+delta, ... below limit (above it for a negative delta), in the inputs' type.
pub fn range(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let scalar = |i: usize| -> Result<f64, ModelError> {
        let t = required(inputs, i)?;
        match t
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?[..]
        {
            [value] => Ok(value),
            _ => Err(ModelError::Evaluation(format!(
                "Range: input {i} must be a scalar, not of shape {:?}",
                t.dims()
            ))),
        }
    };
    let (start, limit, delta) = (scalar(0)?, scalar(1)?, scalar(2)?);
    let count = ((limit - start) / delta).ceil().max(0.0);
    // NaN (a zero delta over a zero span) is an empty range; infinity fails the budget.
    let count = if count.is_nan() {
        0
    } else {
        count.min(usize::MAX as f64) as usize
    };
    element_count(&[count], "Range's output")?;
    let values: Vec<f64> = (0..count).map(|i| start + i as f64 * delta).collect();
    let dtype = required(inputs, 0)?.dtype();
    Ok(vec![
        Tensor::from_vec(values, count, required(inputs, 0)?.device())?.to_dtype(dtype)?,
    ])
}

/// Crops or pads (with zeros) each axis around its centre to the requested shape.
pub fn center_crop_pad(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let target = int_values(required(inputs, 1)?)?;
    let axes: Vec<usize> = match node.ints("axes") {
        Some(a) => a
            .iter()
            .map(|&a| axis(a, x.rank()))
            .collect::<Result<_, _>>()?,
        None => (0..x.rank()).collect(),
    };
    // A repeated axis would be resized twice, the first time to a size no check saw.
    let unique = axes.iter().collect::<std::collections::HashSet<_>>().len() == axes.len();
    if target.len() != axes.len() || !unique {
        return Err(ModelError::Evaluation(format!(
            "CenterCropPad: shape has {} values for the axes {axes:?}",
            target.len()
        )));
    }
    let target: Vec<usize> = target
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    let mut dims = x.dims().to_vec();
    for (&a, &want) in axes.iter().zip(&target) {
        dims[a] = want;
    }
    element_count(&dims, "CenterCropPad's output")?;
    // Every crop (a view, nothing allocated) before any pad: an axis padded while another still had its
    // larger size made a tensor larger than the result (`[1, 10^6]` to `[1000, 1]`: 10^9 elements for
    // 1,000, found by fuzzing).
    let mut out = x.clone();
    for (&dim, &want) in axes.iter().zip(&target) {
        let have = out.dim(dim)?;
        if have > want {
            out = out.narrow(dim, (have - want) / 2, want)?;
        }
    }
    // Nothing left to pad around: the result is zeros (candle's concatenation of an empty tensor with
    // others panics, found by fuzzing).
    if out.elem_count() == 0 {
        return Ok(vec![Tensor::zeros(dims, out.dtype(), out.device())?]);
    }
    for (&dim, &want) in axes.iter().zip(&target) {
        let have = out.dim(dim)?;
        if want > have {
            let before = (want - have) / 2;
            out = out.pad_with_zeros(dim, before, want - have - before)?;
        }
    }
    Ok(vec![out.contiguous()?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error, f32s, i64s, int, run};

    /// An empty axes input squeezes every axis of one, as ONNX Runtime 1.32.0 reads it (the differential
    /// check's Squeeze cases: `[1, 2]` with axes `[]` is `[2]`); squeezing an axis longer than one is an
    /// error, where candle left it in place.
    #[test]
    fn squeeze_with_empty_axes_squeezes_every_axis_of_one() {
        let x = || f32s(&[1., 2.], &[1, 2, 1]);
        let out = run("Squeeze", 13, vec![], &[x(), i64s(&[])]);
        assert_eq!(out[0].dims(), &[2]);
        let err = error("Squeeze", 13, vec![], &[x(), i64s(&[1])]);
        assert!(err.contains("length 2"), "{err}");
    }

    /// One axis cropped and another padded come out as either order would make them (crops now come
    /// first, so that no pad is made at the size an axis is still to lose).
    #[test]
    fn center_crop_pad_crops_one_axis_and_pads_another() {
        let x = f32s(&[1., 2., 3.], &[1, 3]);
        let out = run("CenterCropPad", 18, vec![], &[x, i64s(&[3, 1])]);
        assert_eq!(out[0].to_vec2::<f32>().unwrap(), [[0.], [2.], [0.]]);
        // Cropped to nothing along one axis, padded along the other: an empty result (the fuzzer's
        // `[0, 6]` to `[201326856, 0]` panicked in candle's concatenation).
        let x =
            candle_core::Tensor::zeros((0, 6), candle_core::DType::U8, &candle_core::Device::Cpu);
        let out = run("CenterCropPad", 18, vec![], &[x.ok(), i64s(&[5, 0])]);
        assert_eq!(out[0].dims(), [5, 0]);
        // An empty input padded to values: zeros.
        let x = f32s(&[], &[0, 2]);
        let out = run("CenterCropPad", 18, vec![], &[x, i64s(&[2, 2])]);
        assert_eq!(out[0].to_vec2::<f32>().unwrap(), [[0., 0.], [0., 0.]]);
    }

    #[test]
    fn tile_repeats_each_axis_and_an_empty_input_stays_empty() {
        let x = f32s(&[1., 2., 3., 4.], &[2, 2]);
        let out = run("Tile", 13, vec![], &[x, i64s(&[2, 3])]);
        assert_eq!(out[0].dims(), [4, 6]);
        assert_eq!(
            out[0].to_vec2::<f32>().unwrap()[3],
            [3., 4., 3., 4., 3., 4.]
        );
        let empty = f32s(&[], &[3585, 0]);
        let out = run("Tile", 13, vec![], &[empty, i64s(&[1 << 16, 2])]);
        assert_eq!(out[0].dims(), [3585 << 16, 0]);
    }

    #[test]
    fn shape_slices_from_opset_15() {
        let x = f32s(&[0.; 24], &[2, 3, 4]);
        let out = run("Shape", 15, vec![int("start", 1), int("end", 2)], &[x]);
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![3]);
    }

    #[test]
    fn reshape_copies_zero_dims_and_infers_one() {
        let x = f32s(&[0.; 24], &[2, 3, 4]);
        let out = run("Reshape", 14, vec![], &[x, i64s(&[0, 0, 2, -1])]);
        assert_eq!(out[0].dims(), &[2, 3, 2, 2]);
    }

    #[test]
    fn unsqueeze_takes_axes_as_input_from_opset_13() {
        let x = f32s(&[1., 2.], &[2]);
        let out = run("Unsqueeze", 13, vec![], &[x, i64s(&[0, 2])]);
        assert_eq!(out[0].dims(), &[1, 2, 1]);
    }

    #[test]
    fn expand_broadcasts_both_ways() {
        let x = f32s(&[1., 2., 3.], &[3, 1]);
        let out = run("Expand", 13, vec![], &[x, i64s(&[2, 1, 6])]);
        assert_eq!(out[0].dims(), &[2, 3, 6]);
    }
}

//! Normalizations and reductions, computed in fp32 or wider.

use candle_core::{D, DType, Tensor};

use super::super::node::{Node, axis, float_input, int_values, optional, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// `op` over f16 or bf16 inputs on the CPU computed in f32, its first output rounded back, as ONNX
/// Runtime's CPU provider computes these (candle's half-precision reductions are slower and round each
/// partial sum); the other outputs (LayerNormalization's mean and inverse deviation) are in their
/// stash type, f32. `None` for other inputs.
fn half_in_f32(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    op: fn(&Node<'_>, &[Option<Tensor>]) -> Out,
) -> Option<Out> {
    let x = inputs.first()?.as_ref()?;
    if !super::cpu_f32::is_half_on_cpu(x) {
        return None;
    }
    let run = || -> Out {
        let wide = inputs
            .iter()
            .map(|t| t.as_ref().map(super::cpu_f32::widen).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = op(node, &wide)?;
        if let Some(y) = out.first_mut() {
            *y = super::cpu_f32::narrow_to(y, x.dtype())?;
        }
        Ok(out)
    };
    Some(run())
}

/// Softmax over one axis (opset 13+); before opset 13 ONNX flattened from `axis` on (default 1).
pub fn softmax(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    if let Some(out) = half_in_f32(node, inputs, softmax) {
        return out;
    }
    let x = float_input(node, inputs, 0)?;
    if node.opset >= 13 {
        let dim = axis(node.int("axis", -1), x.rank())?;
        return Ok(vec![candle_nn::ops::softmax(x, dim)?]);
    }
    let dim = axis(node.int("axis", 1), x.rank())?;
    let shape = x.dims().to_vec();
    let rows: usize = shape[..dim].iter().product();
    let flat = x.reshape((rows, ()))?;
    Ok(vec![
        candle_nn::ops::softmax(&flat, D::Minus1)?.reshape(shape)?,
    ])
}

/// Normalizes over the dims from `axis` to the last, then scales and shifts.
pub fn layer_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    if let Some(out) = half_in_f32(node, inputs, layer_normalization) {
        return out;
    }
    let x = float_input(node, inputs, 0)?;
    let scale = required(inputs, 1)?;
    let first = axis(node.int("axis", -1), x.rank())?;
    let eps = f64::from(node.float("epsilon", 1e-5));
    let dims: Vec<usize> = (first..x.rank()).collect();
    let mean = x.mean_keepdim(dims.as_slice())?;
    let centered = x.broadcast_sub(&mean)?;
    let variance = centered.sqr()?.mean_keepdim(dims.as_slice())?;
    let inv_std = (variance + eps)?.sqrt()?.recip()?;
    let normalized = centered.broadcast_mul(&inv_std)?;
    let mut out = normalized.broadcast_mul(scale)?;
    if let Some(bias) = optional(inputs, 2) {
        out = out.broadcast_add(bias)?;
    }
    // Mean and InvStdDev are optional outputs (training graphs read them).
    Ok(vec![out, mean, inv_std])
}

/// LogSoftmax, with the same opset rules as Softmax.
pub fn log_softmax(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    if let Some(out) = half_in_f32(node, inputs, log_softmax) {
        return out;
    }
    let x = float_input(node, inputs, 0)?;
    if node.opset >= 13 {
        let dim = axis(node.int("axis", -1), x.rank())?;
        return Ok(vec![candle_nn::ops::log_softmax(x, dim)?]);
    }
    let dim = axis(node.int("axis", 1), x.rank())?;
    let shape = x.dims().to_vec();
    let rows: usize = shape[..dim].iter().product();
    let flat = x.reshape((rows, ()))?;
    Ok(vec![
        candle_nn::ops::log_softmax(&flat, D::Minus1)?.reshape(shape)?,
    ])
}

/// 1 at the first maximum along the axis, 0 elsewhere.
pub fn hardmax(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let shape = x.dims().to_vec();
    let (rows, len) = if node.opset >= 13 {
        let dim = axis(node.int("axis", -1), x.rank())?;
        if dim != x.rank() - 1 {
            let moved = x.transpose(dim, x.rank() - 1)?.contiguous()?;
            let proto = crate::proto::NodeProto::default();
            let inner = hardmax(&Node::new(&proto, node.opset), &[Some(moved)])?;
            return Ok(vec![inner[0].transpose(dim, x.rank() - 1)?.contiguous()?]);
        }
        (x.elem_count() / shape[dim].max(1), shape[dim])
    } else {
        let dim = axis(node.int("axis", 1), x.rank())?;
        let rows: usize = shape[..dim].iter().product();
        (rows, x.elem_count() / rows.max(1))
    };
    let values = x
        .to_dtype(candle_core::DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let mut out = vec![0f64; values.len()];
    for r in 0..rows {
        let row = &values[r * len..(r + 1) * len];
        if let Some(best) = (0..len).reduce(|b, i| if row[i] > row[b] { i } else { b }) {
            out[r * len + best] = 1.0;
        }
    }
    Ok(vec![
        Tensor::from_vec(out, shape, x.device())?.to_dtype(x.dtype())?,
    ])
}

/// Mean over `axes` (an attribute before opset 18, an input from 18 on; none means all).
pub fn reduce_mean(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let axes = if node.opset >= 18 {
        optional(inputs, 1).map(int_values).transpose()?
    } else {
        node.ints("axes")
    };
    let mut dims: Vec<usize> = match axes {
        Some(axes) if !axes.is_empty() => axes
            .iter()
            .map(|&a| axis(a, x.rank()))
            .collect::<Result<_, _>>()?,
        _ if node.int("noop_with_empty_axes", 0) != 0 => return Ok(vec![x.clone()]),
        _ => (0..x.rank()).collect(),
    };
    dims.sort_unstable();
    // Integers are summed in f64 (candle's integer sum panics on overflow in a debug build: found by the
    // evaluator fuzzer), the mean truncated back to their type.
    let mut out = if x.elem_count() == 0 {
        // The mean of nothing is 0 in ONNX Runtime (candle's is 0/0).
        let mut shape = x.dims().to_vec();
        for &d in &dims {
            shape[d] = 1;
        }
        Tensor::zeros(shape, x.dtype(), x.device())?
    } else if x.dtype().is_float() {
        x.mean_keepdim(dims.as_slice())?
    } else {
        x.to_dtype(DType::F64)?
            .mean_keepdim(dims.as_slice())?
            .to_dtype(x.dtype())?
    };
    if node.int("keepdims", 1) == 0 {
        for &d in dims.iter().rev() {
            out = out.squeeze(d)?;
        }
    }
    Ok(vec![out])
}

/// (x - mean) / sqrt(variance) over `axes` (default: batch and spatial, [0, 2, 3]).
/// x divided by its L1 or L2 norm along `axis` (`p`: 1 or 2); a zero norm gives zeros, as in ONNX
/// Runtime. Computed in f64 and cast back.
pub fn lp_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = float_input(node, inputs, 0)?;
    let dim = axis(node.int("axis", -1), x.rank())?;
    let wide = x.to_dtype(DType::F64)?;
    let norm = match node.int("p", 2) {
        1 => wide.abs()?.sum_keepdim(dim)?,
        2 => wide.sqr()?.sum_keepdim(dim)?.sqrt()?,
        p => {
            return Err(ModelError::Evaluation(format!(
                "LpNormalization's p is 1 or 2, not {p}"
            )));
        }
    };
    // Where the norm is 0 the quotient is 0/0: divided by 1 instead, its zeros stay zeros.
    let divisor = norm
        .eq(&norm.zeros_like()?)?
        .where_cond(&norm.ones_like()?, &norm)?;
    Ok(vec![wide.broadcast_div(&divisor)?.to_dtype(x.dtype())?])
}

pub fn mean_variance_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = float_input(node, inputs, 0)?;
    let axes = node.ints("axes").unwrap_or_else(|| vec![0, 2, 3]);
    let dims: Vec<usize> = axes
        .iter()
        .map(|&a| axis(a, x.rank()))
        .collect::<Result<_, _>>()?;
    let mean = x.mean_keepdim(dims.as_slice())?;
    let centered = x.broadcast_sub(&mean)?;
    let variance = centered.sqr()?.mean_keepdim(dims.as_slice())?;
    Ok(vec![centered.broadcast_div(&(variance + 1e-9)?.sqrt()?)?])
}

/// Normalizes each sample's channels in `num_groups` groups, then scales and shifts per channel (opset
/// 21; before it, `scale` and `bias` hold one value per group).
pub fn group_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = float_input(node, inputs, 0)?;
    let groups = usize::try_from(node.int("num_groups", 0)).unwrap_or(0);
    let dims = x.dims().to_vec();
    if dims.len() < 2 || groups == 0 || dims[1] % groups != 0 {
        return Err(ModelError::Evaluation(format!(
            "GroupNormalization of {dims:?} into {groups} groups"
        )));
    }
    let channels = dims[1];
    let eps = f64::from(node.float("epsilon", 1e-5));
    let grouped = x.to_dtype(DType::F32)?.reshape((dims[0], groups, ()))?;
    let mean = grouped.mean_keepdim(2)?;
    let centered = grouped.broadcast_sub(&mean)?;
    let variance = centered.sqr()?.mean_keepdim(2)?;
    let normalized = centered
        .broadcast_div(&(variance + eps)?.sqrt()?)?
        .reshape(dims.as_slice())?;
    let mut shape = vec![1; dims.len()];
    shape[1] = channels;
    let per_channel = |t: &Tensor| -> Result<Tensor, ModelError> {
        let t = t.to_dtype(DType::F32)?.flatten_all()?;
        let t = if t.elem_count() == groups && groups != channels {
            // One value per group stands for each of the group's channels.
            t.reshape((groups, 1))?
                .broadcast_as((groups, channels / groups))?
                .flatten_all()?
        } else {
            t
        };
        Ok(t.reshape(shape.as_slice())?)
    };
    let scale = per_channel(required(inputs, 1)?)?;
    let bias = per_channel(required(inputs, 2)?)?;
    Ok(vec![
        normalized
            .broadcast_mul(&scale)?
            .broadcast_add(&bias)?
            .to_dtype(x.dtype())?,
    ])
}

/// Inference-mode batch norm over dim 1.
pub fn batch_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    if x.rank() < 2 {
        return Err(ModelError::Evaluation(format!(
            "BatchNormalization of a rank-{} input",
            x.rank()
        )));
    }
    let eps = f64::from(node.float("epsilon", 1e-5));
    let mut shape = vec![1; x.rank()];
    shape[1] = x.dim(1)?;
    let p = |i: usize| -> Result<Tensor, ModelError> {
        Ok(required(inputs, i)?
            .to_dtype(x.dtype())?
            .reshape(shape.clone())?)
    };
    // Training normalizes by the batch's own statistics and also returns the updated running ones.
    let training = node.int("training_mode", 0) != 0;
    if !training && x.dtype() == DType::F32 {
        // Inference is one affine map per channel: x·a + b, a = scale/√(var + ε), b = bias - mean·a,
        // made once per session from the model's statistics.
        let sources = [1, 2, 3, 4].map(|i| required(inputs, i)).map(|t| t.ok());
        if let [Some(s), Some(b), Some(m), Some(v)] = sources {
            let affine = node.derive(&[s, b, m, v], || -> Result<_, ModelError> {
                let (scale, bias, mean, var) = (p(1)?, p(2)?, p(3)?, p(4)?);
                let a = (&scale / (&var + eps)?.sqrt()?)?;
                let b = (&bias - (&mean * &a)?)?;
                let values = |t: &Tensor| -> Result<Vec<f32>, ModelError> {
                    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
                };
                Ok((values(&a)?, values(&b)?))
            })?;
            if let Some(y) = super::cpu_f32::per_channel_affine(x, &affine.0, &affine.1) {
                return Ok(vec![y?]);
            }
        }
    }
    let (scale, bias, running_mean, running_var) = (p(1)?, p(2)?, p(3)?, p(4)?);
    let (mean, var) = if training {
        let dims: Vec<usize> = (0..x.rank()).filter(|&d| d != 1).collect();
        let mean = x.mean_keepdim(dims.as_slice())?;
        let var = x
            .broadcast_sub(&mean)?
            .sqr()?
            .mean_keepdim(dims.as_slice())?;
        (mean, var)
    } else {
        (running_mean.clone(), running_var.clone())
    };
    let normalized = x
        .broadcast_sub(&mean)?
        .broadcast_div(&(&var + eps)?.sqrt()?)?;
    let y = normalized.broadcast_mul(&scale)?.broadcast_add(&bias)?;
    if !training {
        return Ok(vec![y]);
    }
    let momentum = f64::from(node.float("momentum", 0.9));
    let update = |running: &Tensor, batch: &Tensor| -> Result<Tensor, ModelError> {
        Ok((running.affine(momentum, 0.0)? + batch.affine(1.0 - momentum, 0.0)?)?.flatten_all()?)
    };
    Ok(vec![
        y,
        update(&running_mean, &mean)?,
        update(&running_var, &var)?,
    ])
}

/// Per-sample, per-channel normalization over the spatial dims.
pub fn instance_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = float_input(node, inputs, 0)?;
    let eps = f64::from(node.float("epsilon", 1e-5));
    let dims: Vec<usize> = (2..x.rank()).collect();
    let mean = x.mean_keepdim(dims.as_slice())?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(dims.as_slice())?;
    let mut shape = vec![1; x.rank()];
    shape[1] = x.dim(1)?;
    let scale = required(inputs, 1)?.reshape(shape.clone())?;
    let bias = required(inputs, 2)?.reshape(shape)?;
    let y = centered.broadcast_div(&(var + eps)?.sqrt()?)?;
    Ok(vec![y.broadcast_mul(&scale)?.broadcast_add(&bias)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, int, ints, run};

    /// An integer mean is summed in f64 and truncated (candle's integer sum overflowed).
    #[test]
    fn an_integer_mean_does_not_overflow() {
        let x = candle_core::Tensor::new(&[i64::MAX, i64::MAX, 7, 8], &candle_core::Device::Cpu)
            .unwrap()
            .reshape((2, 2))
            .unwrap();
        let out = run(
            "ReduceMean",
            13,
            vec![int("keepdims", 0), ints("axes", &[1])],
            &[Some(x)],
        );
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), [i64::MAX, 7]);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let out = run(
            "Softmax",
            13,
            vec![],
            &[f32s(&[1., 2., 3., 1., 1., 1.], &[2, 3])],
        );
        for row in out[0].to_vec2::<f32>().unwrap() {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let x = f32s(&[1., 3.], &[1, 2]);
        let out = run(
            "LayerNormalization",
            17,
            vec![],
            &[x, f32s(&[2., 2.], &[2]), f32s(&[1., 1.], &[2])],
        );
        let v = out[0].to_vec2::<f32>().unwrap();
        assert!((v[0][0] + 1.0).abs() < 1e-3 && (v[0][1] - 3.0).abs() < 1e-3);
    }

    #[test]
    fn reduce_mean_reads_axes_from_the_attribute_before_opset_18() {
        let x = f32s(&[1., 2., 3., 4.], &[2, 2]);
        let out = run(
            "ReduceMean",
            13,
            vec![ints("axes", &[1]), int("keepdims", 0)],
            &[x],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![1.5, 3.5]);
    }

    #[test]
    fn reduce_mean_reads_axes_from_the_input_from_opset_18() {
        let x = f32s(&[1., 2., 3., 4.], &[2, 2]);
        let out = run("ReduceMean", 18, vec![int("keepdims", 0)], &[x, i64s(&[0])]);
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![2., 3.]);
    }

    #[test]
    fn group_norm_normalizes_within_each_group() {
        let x = f32s(&[1., 3., 10., 30.], &[1, 2, 2]);
        let out = run(
            "GroupNormalization",
            21,
            vec![
                int("num_groups", 2),
                super::super::testing::float("epsilon", 0.0),
            ],
            &[x, f32s(&[1., 2.], &[2]), f32s(&[0., 1.], &[2])],
        );
        let v = super::super::testing::flat(&out[0]);
        assert_eq!(v, vec![-1., 1., -1., 3.]);
    }
}

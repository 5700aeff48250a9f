//! MaxUnpool: scatters pooled values back to the flat positions MaxPool's Indices output recorded.

use candle_core::{DType, Tensor};

use super::super::node::{Node, int_values, optional, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn evaluation(message: impl Into<String>) -> ModelError {
    ModelError::Evaluation(message.into())
}

/// The unpooled shape: (in - 1) · stride - pads + kernel per spatial dim.
fn inferred_shape(node: &Node<'_>, x: &Tensor) -> Result<Vec<usize>, ModelError> {
    let kernel = node
        .ints("kernel_shape")
        .ok_or_else(|| evaluation("MaxUnpool needs kernel_shape"))?;
    let n = kernel.len();
    if x.rank() != n + 2 {
        return Err(evaluation(format!(
            "MaxUnpool's kernel_shape has {n} dims for an X of shape {:?}",
            x.dims()
        )));
    }
    let strides = node.ints("strides").unwrap_or_else(|| vec![1; n]);
    let pads = node.ints("pads").unwrap_or_else(|| vec![0; 2 * n]);
    if strides.len() != n || pads.len() != 2 * n {
        return Err(evaluation(
            "MaxUnpool's strides or pads do not match kernel_shape",
        ));
    }
    let mut shape = x.dims()[..2].to_vec();
    for i in 0..n {
        let size = (x.dims()[i + 2] as i64 - 1) * strides[i] - (pads[i] + pads[n + i]) + kernel[i];
        shape.push(
            usize::try_from(size).map_err(|_| evaluation("MaxUnpool's output would be empty"))?,
        );
    }
    Ok(shape)
}

/// Y of the inferred shape (or `output_shape`, zero-filled past it) holds X at its indices, zero elsewhere.
pub fn max_unpool(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let indices = int_values(required(inputs, 1)?)?;
    let shape = inferred_shape(node, x)?;
    let size = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&s| s <= crate::model_check::MAX_ELEMENTS)
        .ok_or_else(|| evaluation("MaxUnpool's output is too large"))? as usize;
    let values = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    if indices.len() != values.len() {
        return Err(evaluation("MaxUnpool's indices do not match X"));
    }
    let mut y = vec![0.0; size];
    for (&i, &v) in indices.iter().zip(&values) {
        let slot = usize::try_from(i)
            .ok()
            .filter(|&i| i < size)
            .ok_or_else(|| evaluation(format!("MaxUnpool index {i} is out of range")))?;
        y[slot] = v;
    }
    let mut y = Tensor::from_vec(y, shape.as_slice(), x.device())?.to_dtype(x.dtype())?;
    if let Some(output_shape) = optional(inputs, 2) {
        let wanted = int_values(output_shape)?;
        if wanted.len() != shape.len() {
            return Err(evaluation("MaxUnpool's output_shape has the wrong rank"));
        }
        for (dim, (&want, &have)) in wanted.iter().zip(&shape).enumerate() {
            let extra = usize::try_from(want - have as i64)
                .map_err(|_| evaluation("MaxUnpool's output_shape is smaller than its input's"))?;
            if extra > 0 {
                y = y.pad_with_zeros(dim, 0, extra)?;
            }
        }
    }
    Ok(vec![y])
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::super::testing::{f32s, flat, ints, run};

    #[test]
    fn values_return_to_their_recorded_positions() {
        let indices = Some(Tensor::new(&[[[[3i64]]]], &Device::Cpu).unwrap());
        let out = run(
            "MaxUnpool",
            11,
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
            &[f32s(&[9.0], &[1, 1, 1, 1]), indices],
        );
        assert_eq!(out[0].dims(), &[1, 1, 2, 2]);
        assert_eq!(flat(&out[0]), vec![0.0, 0.0, 0.0, 9.0]);
    }
}

//! Linear (de)quantization, per tensor or per axis: what int8 weight-only variants are built from.

use candle_core::{DType, Tensor};

use super::super::node::{Node, axis, optional, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// Scale and zero point shaped to broadcast against `x` along `axis` when they are 1-D.
fn per_axis(node: &Node<'_>, x: &Tensor, t: &Tensor) -> Result<Tensor, ModelError> {
    if t.rank() == 1 && t.elem_count() > 1 {
        let dim = axis(node.int("axis", 1), x.rank())?;
        let mut shape = vec![1; x.rank()];
        shape[dim] = t.elem_count();
        return Ok(t.reshape(shape)?);
    }
    Ok(t.clone())
}

/// y = (x - zero_point) · scale
pub fn dequantize_linear(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let scale = per_axis(node, x, required(inputs, 1)?)?;
    let wide = x.to_dtype(DType::F32)?;
    let shifted = match optional(inputs, 2) {
        Some(zp) => wide.broadcast_sub(&per_axis(node, x, zp)?.to_dtype(DType::F32)?)?,
        None => wide,
    };
    Ok(vec![
        shifted
            .broadcast_mul(&scale.to_dtype(DType::F32)?)?
            .to_dtype(scale.dtype())?,
    ])
}

/// y = saturate(round_half_even(x / scale) + zero_point), uint8 unless the zero point says int8.
pub fn quantize_linear(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let scale = per_axis(node, x, required(inputs, 1)?)?.to_dtype(DType::F64)?;
    let zp = optional(inputs, 2);
    let (lo, hi, dtype) = match zp.map(|z| z.dtype()) {
        Some(DType::I64) => (-128.0, 127.0, DType::I64),
        _ => (0.0, 255.0, DType::U8),
    };
    let scaled = x.to_dtype(DType::F64)?.broadcast_div(&scale)?;
    let shape = scaled.shape().clone();
    let zp = match zp {
        Some(z) => per_axis(node, x, z)?
            .to_dtype(DType::F64)?
            .broadcast_as(&shape)?
            .flatten_all()?
            .to_vec1::<f64>()?,
        None => vec![0.0; shape.elem_count()],
    };
    let values: Vec<f64> = scaled
        .flatten_all()?
        .to_vec1::<f64>()?
        .into_iter()
        .zip(zp)
        .map(|(v, z)| (v.round_ties_even() + z).clamp(lo, hi))
        .collect();
    Ok(vec![
        Tensor::from_vec(values, shape, x.device())?.to_dtype(dtype)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, run};

    #[test]
    fn dequantize_per_channel_along_axis_0() {
        let x =
            Some(candle_core::Tensor::new(&[[2u8, 4], [6, 8]], &candle_core::Device::Cpu).unwrap());
        let scale = f32s(&[0.5, 2.0], &[2]);
        let out = run(
            "DequantizeLinear",
            13,
            vec![super::super::testing::int("axis", 0)],
            &[x, scale],
        );
        assert_eq!(
            out[0].to_vec2::<f32>().unwrap(),
            vec![vec![1., 2.], vec![12., 16.]]
        );
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let out = run(
            "QuantizeLinear",
            13,
            vec![],
            &[f32s(&[0.5, 1.5, 300.0, -1.0], &[4]), f32s(&[1.0], &[])],
        );
        assert_eq!(out[0].to_vec1::<u8>().unwrap(), vec![0, 2, 255, 0]);
    }
}

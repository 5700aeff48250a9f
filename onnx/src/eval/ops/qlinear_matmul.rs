//! QLinearMatMul: a matrix product of quantized operands, requantized.
//! y = saturate(round_half_even((a - a_zero)·(b - b_zero) · a_scale·b_scale / y_scale) + y_zero).
//! Scales and zero points are per tensor, or (opset 21) per row of A and per column of B.

use candle_core::{DType, Tensor};

use super::super::node::{Node, optional, required};
use super::host::{build, element_count, values};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn invalid(message: String) -> ModelError {
    ModelError::Evaluation(format!("QLinearMatMul: {message}"))
}

/// A's scale or zero point in `dtype`: one value, or one per row of A (laid out as a column).
fn per_row(t: &Tensor, dtype: DType) -> Result<Tensor, ModelError> {
    let t = t.to_dtype(dtype)?;
    if t.rank() == 1 && t.elem_count() > 1 {
        return Ok(t.unsqueeze(1)?);
    }
    Ok(t)
}

/// The product's dims, refused when over the element budget (a zero inner size makes huge outputs cheap
/// to ask for).
fn product_dims(a: &[usize], b: &[usize]) -> Result<Vec<usize>, ModelError> {
    let (ra, rb) = (a.len(), b.len());
    if ra < 2 || rb < 2 || a[ra - 1] != b[rb - 2] {
        return Err(invalid(format!("cannot multiply {a:?} by {b:?}")));
    }
    let batch = ra.max(rb) - 2;
    // Batch dims right-aligned, a missing one counting as 1.
    let batch_dim = |d: &[usize], i: usize| -> usize {
        let missing = batch + 2 - d.len();
        if i < missing { 1 } else { d[i - missing] }
    };
    let mut dims = Vec::with_capacity(batch + 2);
    for i in 0..batch {
        let (da, db) = (batch_dim(a, i), batch_dim(b, i));
        if da != db && da != 1 && db != 1 {
            return Err(invalid(format!("batch dims of {a:?} and {b:?} differ")));
        }
        dims.push(da.max(db));
    }
    dims.extend([a[ra - 2], b[rb - 1]]);
    element_count(&dims, "the QLinearMatMul output")?;
    Ok(dims)
}

pub fn qlinear_matmul(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let a = required(inputs, 0)?;
    let b = required(inputs, 3)?;
    product_dims(a.dims(), b.dims())?;
    let wide = |t: &Tensor| t.to_dtype(DType::F64);
    let mut a_wide = wide(a)?;
    if let Some(z) = optional(inputs, 2) {
        a_wide = a_wide.broadcast_sub(&per_row(z, DType::F64)?)?;
    }
    let mut b_wide = wide(b)?;
    if let Some(z) = optional(inputs, 5) {
        b_wide = b_wide.broadcast_sub(&wide(z)?)?;
    }
    // The sums are exact in f64; the requantization is in f32, as ONNX Runtime computes it (its
    // multiplier a_scale·b_scale/y_scale and each sum times it rounded to f32): a product whose exact
    // value is a half rounds the way f32 leaves it (10.5000005 to 11 where exact arithmetic gives 10).
    let narrow = |t: &Tensor| t.to_dtype(DType::F32);
    let scale = per_row(required(inputs, 1)?, DType::F32)?
        .broadcast_mul(&narrow(required(inputs, 4)?)?)?
        .broadcast_div(&narrow(required(inputs, 6)?)?)?;
    let product = a_wide
        .broadcast_matmul(&b_wide)?
        .to_dtype(DType::F32)?
        .broadcast_mul(&scale)?;
    let y_zero = optional(inputs, 7);
    // kiln holds int8 as i64; a uint8 zero point (or none) means uint8 output.
    let (low, high, dtype) = match y_zero.map(Tensor::dtype) {
        Some(DType::U8) | None => (0.0, 255.0, DType::U8),
        Some(_) => (-128.0, 127.0, DType::I64),
    };
    let zero = match y_zero {
        Some(z) => {
            let v = values(z)?;
            match v.as_slice() {
                [one] => *one,
                _ => return Err(invalid("y_zero_point must be one value".to_owned())),
            }
        }
        None => 0.0,
    };
    let quantized: Vec<f64> = product
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|v| (f64::from(v.round_ties_even()) + zero).clamp(low, high))
        .collect();
    Ok(vec![build(quantized, product.dims(), dtype, a)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, run};
    use super::*;
    use candle_core::Device;

    fn u8s(v: &[u8], shape: &[usize]) -> Option<Tensor> {
        Some(Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap())
    }

    #[test]
    fn requantizes_with_rounding_and_saturation() {
        // (a - 1)·(b - 0) = [[2·3 + 1·1]] = 7; ·0.5·1/0.5 = 7, + 10 = 17.
        let a = u8s(&[3, 2], &[1, 2]);
        let b = u8s(&[3, 1], &[2, 1]);
        let scale = f32s(&[0.5], &[]);
        let one = f32s(&[1.0], &[]);
        let inputs = [
            a,
            scale.clone(),
            u8s(&[1], &[]),
            b,
            one,
            u8s(&[0], &[]),
            scale,
            u8s(&[10], &[]),
        ];
        let out = run("QLinearMatMul", 10, vec![], &inputs);
        assert_eq!(out[0].to_vec2::<u8>().unwrap(), vec![vec![17]]);
        assert_eq!(out[0].dtype(), DType::U8);
    }

    #[test]
    fn requantizes_in_f32_as_onnx_runtime_does() {
        // diff_QLinearMatMul_003 of the differential check: (a - 128)·(53 - 128) = 5250, 3750, 2250,
        // times 0.1·0.01/0.5 = 10.5, 7.5, 4.5 exactly, but 10.5000005, 7.5000004, 4.5 in f32: ONNX
        // Runtime 1.32.0 answers 141, 138, 134 (exact arithmetic with ties to even: 140).
        let inputs = [
            u8s(&[58, 78, 98], &[3, 1]),
            f32s(&[0.1], &[]),
            u8s(&[128], &[]),
            u8s(&[53], &[1, 1]),
            f32s(&[0.01], &[]),
            u8s(&[128], &[]),
            f32s(&[0.5], &[]),
            u8s(&[130], &[]),
        ];
        let out = run("QLinearMatMul", 10, vec![], &inputs);
        assert_eq!(
            out[0].to_vec2::<u8>().unwrap(),
            vec![vec![141], vec![138], vec![134]]
        );
    }

    #[test]
    fn mismatched_operands_are_errors() {
        assert!(product_dims(&[2, 3], &[2, 3]).is_err());
        assert!(product_dims(&[3], &[3, 1]).is_err());
        assert!(product_dims(&[1 << 20, 0], &[0, 1 << 20]).is_err());
        assert_eq!(product_dims(&[4, 2, 3], &[3, 5]).unwrap(), vec![4, 2, 5]);
    }
}

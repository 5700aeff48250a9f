//! Elementwise operators with NumPy broadcasting.

use candle_core::{DType, Tensor};

use super::super::node::{Node, float_input, required};
use super::{cpu_f32, f32_math};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

pub fn add(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (required(inputs, 0)?, required(inputs, 1)?);
    if !a.dtype().is_float() {
        return Ok(vec![wrapping(a, b, "Add", i64::wrapping_add)?]);
    }
    if let Some(y) = cpu_f32::binary(a, b, |x, y| x + y) {
        return Ok(vec![y?]);
    }
    Ok(vec![a.broadcast_add(b)?])
}

pub fn sub(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (required(inputs, 0)?, required(inputs, 1)?);
    if !a.dtype().is_float() {
        return Ok(vec![wrapping(a, b, "Sub", i64::wrapping_sub)?]);
    }
    if let Some(y) = cpu_f32::binary(a, b, |x, y| x - y) {
        return Ok(vec![y?]);
    }
    Ok(vec![a.broadcast_sub(b)?])
}

pub fn mul(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (required(inputs, 0)?, required(inputs, 1)?);
    if !a.dtype().is_float() {
        return Ok(vec![wrapping(a, b, "Mul", i64::wrapping_mul)?]);
    }
    if let Some(y) = cpu_f32::binary(a, b, |x, y| x * y) {
        return Ok(vec![y?]);
    }
    Ok(vec![a.broadcast_mul(b)?])
}

/// `f` over integer operands broadcast together, wrapping on overflow as ONNX Runtime's integer
/// arithmetic does (candle's wraps in a release build and panics in a debug one); a uint8 result keeps
/// the low byte.
pub(super) fn wrapping(
    a: &Tensor,
    b: &Tensor,
    op: &'static str,
    f: fn(i64, i64) -> i64,
) -> Result<Tensor, ModelError> {
    let shape = a.shape().broadcast_shape_binary_op(b.shape(), op)?;
    let wide = |t: &Tensor| -> Result<Vec<i64>, ModelError> {
        Ok(t.to_dtype(DType::I64)?
            .broadcast_as(&shape)?
            .flatten_all()?
            .to_vec1::<i64>()?)
    };
    let (x, y) = (wide(a)?, wide(b)?);
    let out: Vec<i64> = x.iter().zip(&y).map(|(&x, &y)| f(x, y)).collect();
    if a.dtype() == DType::U8 {
        let bytes: Vec<u8> = out.into_iter().map(|v| v as u8).collect();
        return Ok(Tensor::from_vec(bytes, shape, a.device())?);
    }
    Ok(Tensor::from_vec(out, shape, a.device())?.to_dtype(a.dtype())?)
}

pub fn div(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (required(inputs, 0)?, required(inputs, 1)?);
    if !a.dtype().is_float() {
        // Integer division truncates toward zero, as ONNX (and C) define it; candle's own (u8)
        // panics on a zero divisor, which here gives 0.
        let quotient = |x: i64, y: i64| if y == 0 { 0 } else { x.wrapping_div(y) };
        return Ok(vec![wrapping(a, b, "Div", quotient)?]);
    }
    if let Some(y) = cpu_f32::binary(a, b, |x, y| x / y) {
        return Ok(vec![y?]);
    }
    Ok(vec![a.broadcast_div(b)?])
}

/// `Pow` with a scalar exponent uses `powf`, which is exact for negative bases with integral exponents
/// (x³ in GELU); a tensor exponent goes through exp(b·ln a) and needs positive bases.
pub fn pow(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (base, exponent) = (required(inputs, 0)?, required(inputs, 1)?);
    if !base.dtype().is_float() {
        return Ok(vec![integer_pow(base, exponent)?]);
    }
    if exponent.elem_count() == 1 {
        let e = exponent
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?[0];
        let out = if e == 2.0 { base.sqr()? } else { base.powf(e)? };
        let shape = base
            .shape()
            .broadcast_shape_binary_op(exponent.shape(), "Pow")?;
        return Ok(vec![out.broadcast_as(shape)?.contiguous()?]);
    }
    Ok(vec![base.broadcast_pow(&exponent.to_dtype(base.dtype())?)?])
}

/// The power an integer Pow multiplies out, as ONNX Runtime does for an exponent of a lone 2 or 3 (any
/// other it computes in double).
pub fn multiplied_power(exponent: &Tensor) -> Option<u32> {
    if exponent.elem_count() != 1 {
        return None;
    }
    let e = exponent
        .to_dtype(DType::F64)
        .ok()?
        .flatten_all()
        .ok()?
        .to_vec1::<f64>()
        .ok()?[0];
    [2, 3].into_iter().find(|&p| e == f64::from(p))
}

/// Pow of an integer base keeps the base's type, computed as ONNX Runtime computes it: an exponent of a
/// lone 2 or 3 by multiplying, wrapping (65536² as an int32 is 0; through f64, 3037000500² was rounded);
/// any other in f64 (candle's pow is exp(e·ln b), undefined for integers and negative bases), truncated,
/// and a result no i64 holds (3^40, 0^-3's infinity, NaN) is x86-64's "integer indefinite", i64::MIN,
/// where it was i64::MAX or 0 (int32's are brought into range by `narrow_integers`).
fn integer_pow(base: &Tensor, exponent: &Tensor) -> Result<Tensor, ModelError> {
    let shape = base
        .shape()
        .broadcast_shape_binary_op(exponent.shape(), "Pow")?;
    if base.dtype() == DType::I64
        && let Some(power) = multiplied_power(exponent)
    {
        let out = map_i64(base, |b| {
            let square = b.wrapping_mul(b);
            if power == 3 {
                square.wrapping_mul(b)
            } else {
                square
            }
        })?;
        return Ok(out.broadcast_as(shape)?.contiguous()?);
    }
    let flat = |t: &Tensor| -> Result<Vec<f64>, ModelError> {
        Ok(t.to_dtype(DType::F64)?
            .broadcast_as(shape.clone())?
            .flatten_all()?
            .to_vec1::<f64>()?)
    };
    let (b, e) = (flat(base)?, flat(exponent)?);
    if base.dtype() == DType::I64 {
        let out: Vec<i64> = b
            .iter()
            .zip(&e)
            .map(|(b, e)| super::super::narrow_integers::int64_from_float(b.powf(*e)))
            .collect();
        return Ok(Tensor::from_vec(out, shape, base.device())?);
    }
    let out: Vec<f64> = b.iter().zip(&e).map(|(b, e)| b.powf(*e).trunc()).collect();
    Ok(Tensor::from_vec(out, shape, base.device())?.to_dtype(base.dtype())?)
}

pub fn equal(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![
        required(inputs, 0)?.broadcast_eq(required(inputs, 1)?)?,
    ])
}

pub fn greater(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![
        required(inputs, 0)?.broadcast_gt(required(inputs, 1)?)?,
    ])
}

pub fn less(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![
        required(inputs, 0)?.broadcast_lt(required(inputs, 1)?)?,
    ])
}

pub fn cos(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![float_input(node, inputs, 0)?.cos()?])
}

pub fn sin(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![float_input(node, inputs, 0)?.sin()?])
}

pub fn where_(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (cond, x, y) = (
        required(inputs, 0)?,
        required(inputs, 1)?,
        required(inputs, 2)?,
    );
    let shape = cond
        .shape()
        .broadcast_shape_binary_op(x.shape(), "Where")?
        .broadcast_shape_binary_op(y.shape(), "Where")?;
    let cond = cond.to_dtype(DType::U8)?.broadcast_as(&shape)?;
    Ok(vec![cond.where_cond(
        &x.broadcast_as(&shape)?,
        &y.broadcast_as(&shape)?,
    )?])
}

/// candle has no integer unary kernels: integers go through i64 vectors.
pub(super) fn map_i64(x: &Tensor, f: impl Fn(i64) -> i64) -> Result<Tensor, ModelError> {
    let values: Vec<i64> = x
        .flatten_all()?
        .to_vec1::<i64>()?
        .into_iter()
        .map(f)
        .collect();
    Ok(Tensor::from_vec(values, x.shape(), x.device())?)
}

pub fn neg(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    Ok(vec![if x.dtype() == DType::I64 {
        map_i64(x, |v| v.wrapping_neg())?
    } else {
        float_input(node, inputs, 0)?.neg()?
    }])
}

pub fn sqrt(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![float_input(node, inputs, 0)?.sqrt()?])
}

pub fn exp(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![float_input(node, inputs, 0)?.exp()?])
}

pub fn erf(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = float_input(node, inputs, 0)?;
    if let Some(y) = cpu_f32::map(x, f32_math::erf) {
        return Ok(vec![y?]);
    }
    Ok(vec![x.erf()?])
}

pub fn tanh(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = float_input(node, inputs, 0)?;
    if let Some(y) = cpu_f32::map(x, f32_math::tanh) {
        return Ok(vec![y?]);
    }
    Ok(vec![x.tanh()?])
}

pub fn sigmoid(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = float_input(node, inputs, 0)?;
    if let Some(y) = cpu_f32::map(x, f32_math::sigmoid) {
        return Ok(vec![y?]);
    }
    Ok(vec![candle_nn::ops::sigmoid(x)?])
}

pub fn relu(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    // NaN stays NaN, as in ONNX Runtime (candle's relu makes it 0).
    if let Some(y) = cpu_f32::map(x, |v| if v < 0.0 { 0.0 } else { v }) {
        return Ok(vec![y?]);
    }
    Ok(vec![match x.dtype() {
        DType::I64 => map_i64(x, |v| v.max(0))?,
        dtype if dtype.is_float() => x.ne(x)?.where_cond(x, &x.relu()?)?,
        _ => x.relu()?,
    }])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, run};

    /// Integer arithmetic wraps, as ONNX Runtime's does (candle's panicked on the overflow in a debug
    /// build: found by fuzzing the evaluator).
    #[test]
    fn integer_arithmetic_wraps_on_overflow() {
        let bytes =
            |v: &[u8]| Some(candle_core::Tensor::new(v, &candle_core::Device::Cpu).unwrap());
        let sum = run("Add", 14, vec![], &[bytes(&[200, 1]), bytes(&[100, 2])]);
        assert_eq!(sum[0].to_vec1::<u8>().unwrap(), [44, 3]);
        let difference = run("Sub", 14, vec![], &[bytes(&[3]), bytes(&[5])]);
        assert_eq!(difference[0].to_vec1::<u8>().unwrap(), [254]);
        let product = run("Mul", 14, vec![], &[i64s(&[i64::MAX]), i64s(&[2])]);
        assert_eq!(product[0].to_vec1::<i64>().unwrap(), [-2]);
        let next = run("Add", 14, vec![], &[i64s(&[i64::MAX, 1]), i64s(&[1])]);
        assert_eq!(next[0].to_vec1::<i64>().unwrap(), [i64::MIN, 2]);
    }

    #[test]
    fn add_broadcasts_like_numpy() {
        let out = run(
            "Add",
            17,
            vec![],
            &[f32s(&[1., 2., 3., 4.], &[2, 2]), f32s(&[10., 20.], &[2])],
        );
        assert_eq!(
            out[0].to_vec2::<f32>().unwrap(),
            vec![vec![11., 22.], vec![13., 24.]]
        );
    }

    #[test]
    fn pow_with_a_scalar_exponent_handles_negative_bases() {
        let out = run(
            "Pow",
            17,
            vec![],
            &[f32s(&[-2., 3.], &[2]), f32s(&[3.], &[])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![-8., 27.]);
    }

    #[test]
    fn integer_division_truncates_toward_zero() {
        let out = run("Div", 17, vec![], &[i64s(&[7, -7]), i64s(&[2, 2])]);
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![3, -3]);
    }

    #[test]
    fn where_selects_with_broadcasting() {
        let cond = Some(candle_core::Tensor::new(&[1u8, 0], &candle_core::Device::Cpu).unwrap());
        let out = run(
            "Where",
            17,
            vec![],
            &[cond, f32s(&[1., 2.], &[2]), f32s(&[9.], &[1])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![1., 9.]);
    }

    #[test]
    fn greater_compares_with_broadcasting() {
        let out = run("Greater", 13, vec![], &[i64s(&[0, 1, 2]), i64s(&[1])]);
        assert_eq!(out[0].to_vec1::<u8>().unwrap(), vec![0, 0, 1]);
    }

    #[test]
    fn erf_matches_known_values() {
        let out = run("Erf", 17, vec![], &[f32s(&[0., 1.], &[2])]);
        let v = out[0].to_vec1::<f32>().unwrap();
        assert!(v[0].abs() < 1e-7 && (v[1] - 0.842_700_8).abs() < 1e-6);
    }
}

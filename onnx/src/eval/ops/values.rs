//! Constant, Cast, Identity.

use candle_core::{DType, Device, Tensor};

use super::super::narrow_integers::{Narrow, int64_from_float};
use super::super::node::{Node, required};
use super::super::tensor_io;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

pub fn constant(node: &Node<'_>, _: &[Option<Tensor>]) -> Out {
    let device = Device::Cpu;
    if let Some(t) = node.tensor("value") {
        return Ok(vec![tensor_io::from_proto(t, None, &device)?]);
    }
    if node.has("value_float") {
        return Ok(vec![Tensor::new(node.float("value_float", 0.0), &device)?]);
    }
    if node.has("value_int") {
        return Ok(vec![Tensor::new(node.int("value_int", 0), &device)?]);
    }
    if let Some(values) = node.floats("value_floats") {
        let len = values.len();
        return Ok(vec![Tensor::from_vec(values, len, &device)?]);
    }
    if let Some(values) = node.ints("value_ints") {
        let len = values.len();
        return Ok(vec![Tensor::from_vec(values, len, &device)?]);
    }
    Err(ModelError::Evaluation(
        "Constant without a value kiln supports".to_owned(),
    ))
}

/// Casts; to bool means "not zero".
pub fn cast(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let to = node.int("to", 0) as i32;
    let dtype = tensor_io::dtype_of(to)
        .ok_or_else(|| ModelError::Evaluation(format!("Cast to element type {to}")))?;
    to_element_type(x, to, node.int("saturate", 1) != 0, dtype)
}

/// The conversions candle's `to_dtype` does not make: to bool, onto an 8-bit float grid, into int4.
fn to_element_type(x: &Tensor, to: i32, saturate: bool, dtype: DType) -> Out {
    use crate::proto::tensor_proto::DataType as T;
    if to == T::Bool as i32 {
        return Ok(vec![x.ne(&x.zeros_like()?)?.to_dtype(DType::U8)?]);
    }
    if let Some(format) = super::super::float8::Float8::of(to) {
        let values: Vec<f32> = x
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|v| format.round(v, saturate))
            .collect();
        return Ok(vec![Tensor::from_vec(values, x.shape(), x.device())?]);
    }
    if to == T::Int4 as i32 || to == T::Uint4 as i32 {
        let (lo, hi) = if to == T::Int4 as i32 {
            (-8.0, 7.0)
        } else {
            (0.0, 15.0)
        };
        let values: Vec<i64> = x
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?
            .into_iter()
            .map(|v| v.round_ties_even().clamp(lo, hi) as i64)
            .collect();
        return Ok(vec![Tensor::from_vec(values, x.shape(), x.device())?]);
    }
    if x.dtype().is_float() && to == T::Uint8 as i32 {
        // Through int32, then its low byte, as ONNX Runtime casts on x86-64 (65504.0 is 224, -2.7 is
        // 254; candle's cast saturated them to 255 and 0).
        let values: Vec<u8> = super::host::values(x)?
            .into_iter()
            .map(|v| Narrow::Int32.from_float(v) as u8)
            .collect();
        return Ok(vec![Tensor::from_vec(values, x.shape(), x.device())?]);
    }
    if x.dtype().is_float() && dtype == DType::I64 {
        // Float to integer truncates toward zero (C semantics), never wraps through candle's cast; to a
        // narrower integer, one that does not fit comes out as ONNX Runtime's does on x86-64.
        // To int64, NaN and what no i64 holds are x86-64's "integer indefinite", i64::MIN, as ONNX
        // Runtime casts (Rust's cast made NaN 0 and saturated the rest); to the narrower ones as
        // `Narrow::from_float` says.
        let convert: Box<dyn Fn(f64) -> i64> = match Narrow::of(to) {
            _ if to == T::Int64 as i32 => Box::new(int64_from_float),
            Some(Narrow::Uint32) if matches!(x.dtype(), DType::F16 | DType::BF16) => {
                Box::new(Narrow::uint32_from_half)
            }
            Some(narrow) => Box::new(move |v| narrow.from_float(v)),
            None => return Ok(vec![x.to_dtype(DType::F64)?.to_dtype(DType::I64)?]),
        };
        let values: Vec<i64> = super::host::values(x)?.into_iter().map(convert).collect();
        return Ok(vec![Tensor::from_vec(values, x.shape(), x.device())?]);
    }
    // Between f32 and f16 or bf16 on the CPU: `half`'s slice conversion (F16C where the CPU has it)
    // rounds as candle's element-by-element one does, several times faster.
    if super::cpu_f32::is_half_on_cpu(x) && dtype == DType::F32 {
        return Ok(vec![super::cpu_f32::widen(x)?]);
    }
    if x.dtype() == DType::F32 && matches!(dtype, DType::F16 | DType::BF16) {
        return Ok(vec![super::cpu_f32::narrow_to(x, dtype)?]);
    }
    Ok(vec![x.to_dtype(dtype)?])
}

/// Cast to the element type of the second input.
/// Casts to the type of `like`: its declared element type when the model declares one (the evaluator
/// holds 8-bit floats as f32 and the integers as i64), else the dtype it is held in.
pub fn cast_like(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (x, like) = (required(inputs, 0)?, required(inputs, 1)?);
    if let Some((to, dtype)) = node
        .input_type(1)
        .and_then(|to| Some((to, tensor_io::dtype_of(to)?)))
    {
        return to_element_type(x, to, node.int("saturate", 1) != 0, dtype);
    }
    if like.dtype() == DType::U8 && x.dtype() != DType::U8 {
        return Ok(vec![x.ne(&x.zeros_like()?)?.to_dtype(DType::U8)?]);
    }
    Ok(vec![x.to_dtype(like.dtype())?])
}

pub fn identity(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![required(inputs, 0)?.clone()])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, int, run};

    #[test]
    fn cast_to_bool_marks_non_zero() {
        let out = run("Cast", 13, vec![int("to", 9)], &[f32s(&[0., 2.5], &[2])]);
        assert_eq!(out[0].to_vec1::<u8>().unwrap(), vec![0, 1]);
    }

    #[test]
    fn cast_int_to_float() {
        let out = run(
            "Cast",
            13,
            vec![int("to", 1)],
            &[super::super::testing::i64s(&[3])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![3.]);
    }

    #[test]
    fn cast_like_rounds_onto_the_declared_float8_grid() {
        use crate::proto::tensor_proto::DataType;
        let proto = crate::proto::NodeProto::default();
        let node = crate::eval::node::Node::new(&proto, 21)
            .with_input_types(&[None, Some(DataType::Float8e4m3fn as i32)]);
        // E4M3FN holds 3 mantissa bits: 1.1 lies nearest 1.125; 1000 saturates to 448.
        let out =
            super::cast_like(&node, &[f32s(&[1.1, 1000.0], &[2]), f32s(&[0.0], &[1])]).unwrap();
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![1.125, 448.0]);
    }
}

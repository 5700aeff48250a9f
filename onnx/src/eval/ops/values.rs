//! Constant, Cast, Identity.

use candle_core::{DType, Device, Tensor};

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
    if to == crate::proto::tensor_proto::DataType::Bool as i32 {
        return Ok(vec![x.ne(&x.zeros_like()?)?.to_dtype(DType::U8)?]);
    }
    Ok(vec![x.to_dtype(dtype)?])
}

/// Cast to the element type of the second input.
pub fn cast_like(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (x, like) = (required(inputs, 0)?, required(inputs, 1)?);
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
}

//! Matrix products.

use candle_core::{DType, Tensor};

use super::super::node::{Node, optional, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// NumPy `matmul`: batch dims broadcast; a 1-D operand is a row (left) or column (right) vector.
pub fn matmul(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (required(inputs, 0)?, required(inputs, 1)?);
    let (a_vector, b_vector) = (a.rank() == 1, b.rank() == 1);
    let a = if a_vector { a.unsqueeze(0)? } else { a.clone() };
    let b = if b_vector { b.unsqueeze(1)? } else { b.clone() };
    let mut out = a.broadcast_matmul(&b)?;
    if a_vector {
        out = out.squeeze(out.rank() - 2)?;
    }
    if b_vector {
        out = out.squeeze(out.rank() - 1)?;
    }
    Ok(vec![out])
}

/// (A - a_zero_point)·(B - b_zero_point) on integers, exactly (in f64), as int32 values held in i64.
/// Zero points are scalars or, for B, one per column.
pub fn matmul_integer(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let wide = |t: &Tensor| t.to_dtype(DType::F64);
    let mut a = wide(required(inputs, 0)?)?;
    let mut b = wide(required(inputs, 1)?)?;
    if let Some(z) = optional(inputs, 2) {
        a = a.broadcast_sub(&wide(z)?)?;
    }
    if let Some(z) = optional(inputs, 3) {
        b = b.broadcast_sub(&wide(z)?)?;
    }
    Ok(vec![a.broadcast_matmul(&b)?.to_dtype(DType::I64)?])
}

/// alpha·A'·B' + beta·C with optional transposes.
pub fn gemm(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let mut a = required(inputs, 0)?.clone();
    let mut b = required(inputs, 1)?.clone();
    if node.int("transA", 0) != 0 {
        a = a.t()?;
    }
    if node.int("transB", 0) != 0 {
        b = b.t()?;
    }
    let mut out = a.matmul(&b)?;
    let alpha = node.float("alpha", 1.0);
    if alpha != 1.0 {
        out = out.affine(f64::from(alpha), 0.0)?;
    }
    if let Some(c) = optional(inputs, 2) {
        let beta = node.float("beta", 1.0);
        out = out.broadcast_add(&c.affine(f64::from(beta), 0.0)?)?;
    }
    Ok(vec![out])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, int, run};

    #[test]
    fn matmul_broadcasts_a_weight_over_the_batch() {
        let x = f32s(&[1., 2., 3., 4.], &[2, 1, 2]);
        let w = f32s(&[1., 0., 0., 1.], &[2, 2]);
        let out = run("MatMul", 17, vec![], &[x, w]);
        assert_eq!(out[0].dims(), &[2, 1, 2]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 2., 3., 4.]
        );
    }

    #[test]
    fn matmul_of_a_vector_drops_its_dim() {
        let out = run(
            "MatMul",
            17,
            vec![],
            &[f32s(&[1., 2.], &[2]), f32s(&[1., 2., 3., 4.], &[2, 2])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![7., 10.]);
    }

    #[test]
    fn gemm_transposes_and_adds_the_bias() {
        let a = f32s(&[1., 2.], &[1, 2]);
        let b = f32s(&[1., 2., 3., 4.], &[2, 2]);
        let c = f32s(&[10., 20.], &[2]);
        let out = run("Gemm", 13, vec![int("transB", 1)], &[a, b, c]);
        assert_eq!(out[0].to_vec2::<f32>().unwrap(), vec![vec![15., 31.]]);
    }
}

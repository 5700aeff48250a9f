//! Det: the determinant of each square matrix in the last two dims, by LU decomposition with partial
//! pivoting in f64.

use candle_core::{DType, Tensor};

use super::super::node::{Node, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn determinant(mut m: Vec<f64>, n: usize) -> f64 {
    let mut det = 1.0;
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&a, &b| m[a * n + col].abs().total_cmp(&m[b * n + col].abs()))
            .unwrap_or(col);
        if m[pivot * n + col] == 0.0 {
            return 0.0;
        }
        if pivot != col {
            for k in 0..n {
                m.swap(col * n + k, pivot * n + k);
            }
            det = -det;
        }
        let p = m[col * n + col];
        det *= p;
        for row in col + 1..n {
            let factor = m[row * n + col] / p;
            for k in col..n {
                m[row * n + k] -= factor * m[col * n + k];
            }
        }
    }
    det
}

/// X is [*, M, M]; Y is [*].
pub fn det(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let rank = x.rank();
    if rank < 2 || x.dim(rank - 1)? != x.dim(rank - 2)? {
        return Err(ModelError::Evaluation(format!(
            "Det needs square matrices in the last two dims, not {:?}",
            x.dims()
        )));
    }
    let n = x.dim(rank - 1)?;
    let values = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let dets: Vec<f64> = if n == 0 {
        vec![1.0; x.dims()[..rank - 2].iter().product()]
    } else {
        values
            .chunks_exact(n * n)
            .map(|m| determinant(m.to_vec(), n))
            .collect()
    };
    Ok(vec![
        Tensor::from_vec(dets, &x.dims()[..rank - 2], x.device())?.to_dtype(x.dtype())?,
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, flat, run};

    #[test]
    fn det_of_a_batch_with_a_row_swap() {
        let x = f32s(&[1., 2., 3., 4., 0., 1., 1., 0.], &[2, 2, 2]);
        let out = run("Det", 11, vec![], &[x]);
        assert_eq!(out[0].dims(), &[2]);
        let v = flat(&out[0]);
        assert!((v[0] + 2.0).abs() < 1e-6 && (v[1] + 1.0).abs() < 1e-6);
    }
}

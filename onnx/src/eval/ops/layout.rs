//! Operators that move data: Transpose, Concat, Slice, Gather.

use candle_core::{DType, Tensor};

use super::super::node::{Node, axis, int_values, optional, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// Without `perm`, ONNX reverses the dims.
pub fn transpose(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let perm: Vec<usize> = match node.ints("perm") {
        Some(perm) => perm
            .iter()
            .map(|&p| axis(p, x.rank()))
            .collect::<Result<_, _>>()?,
        None => (0..x.rank()).rev().collect(),
    };
    Ok(vec![x.permute(perm)?.contiguous()?])
}

pub fn concat(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let parts: Vec<&Tensor> = inputs.iter().flatten().collect();
    let first = parts
        .first()
        .ok_or_else(|| ModelError::Conversion("Concat of nothing".to_owned()))?;
    let dim = axis(node.int("axis", 0), first.rank())?;
    Ok(vec![Tensor::cat(&parts, dim)?])
}

/// Slice with ONNX's clamping rules; bounds are attributes before opset 10 and inputs from 10 on.
pub fn slice(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let (starts, ends, axes, steps) = if node.opset >= 10 {
        (
            int_values(required(inputs, 1)?)?,
            int_values(required(inputs, 2)?)?,
            optional(inputs, 3).map(int_values).transpose()?,
            optional(inputs, 4).map(int_values).transpose()?,
        )
    } else {
        (
            node.ints("starts").unwrap_or_default(),
            node.ints("ends").unwrap_or_default(),
            node.ints("axes"),
            None,
        )
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    let mut out = x.clone();
    for i in 0..starts.len() {
        let dim = axis(axes[i], x.rank())?;
        let len = x.dims()[dim] as i64;
        let step = steps[i];
        if step == 0 {
            return Err(ModelError::Conversion("Slice step 0".to_owned()));
        }
        let resolve = |v: i64| if v < 0 { v + len } else { v };
        let indices: Vec<i64> = if step > 0 {
            let (s, e) = (
                resolve(starts[i]).clamp(0, len),
                resolve(ends[i]).clamp(0, len),
            );
            (s..e).step_by(step as usize).collect()
        } else {
            let (s, e) = (
                resolve(starts[i]).clamp(-1, len - 1),
                resolve(ends[i]).clamp(-1, len - 1),
            );
            let mut v = Vec::new();
            let mut at = s;
            while at > e {
                v.push(at);
                at += step;
            }
            v
        };
        out = if step == 1 {
            let start = indices.first().copied().unwrap_or(0) as usize;
            out.narrow(dim, start, indices.len())?
        } else {
            let index = Tensor::from_vec(
                indices.iter().map(|&v| v as u32).collect::<Vec<_>>(),
                indices.len(),
                x.device(),
            )?;
            out.index_select(&index, dim)?
        };
    }
    Ok(vec![out.contiguous()?])
}

/// Gather along `axis` with indices of any rank; negative indices count from the end.
pub fn gather(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let data = required(inputs, 0)?;
    let indices = required(inputs, 1)?;
    let dim = axis(node.int("axis", 0), data.rank())?;
    let len = data.dims()[dim] as i64;
    let flat: Vec<u32> = indices
        .to_dtype(DType::I64)?
        .flatten_all()?
        .to_vec1::<i64>()?
        .into_iter()
        .map(|i| {
            let resolved = if i < 0 { i + len } else { i };
            if (0..len).contains(&resolved) {
                Ok(resolved as u32)
            } else {
                Err(ModelError::Conversion(format!(
                    "Gather index {i} is out of range for {len}"
                )))
            }
        })
        .collect::<Result<_, _>>()?;
    let count = flat.len();
    let selected = data.index_select(&Tensor::from_vec(flat, count, data.device())?, dim)?;
    let mut shape: Vec<usize> = data.dims()[..dim].to_vec();
    shape.extend_from_slice(indices.dims());
    shape.extend_from_slice(&data.dims()[dim + 1..]);
    Ok(vec![selected.reshape(shape)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, ints, run};

    #[test]
    fn transpose_without_perm_reverses_the_dims() {
        let out = run("Transpose", 13, vec![], &[f32s(&[0.; 6], &[1, 2, 3])]);
        assert_eq!(out[0].dims(), &[3, 2, 1]);
    }

    #[test]
    fn transpose_follows_perm() {
        let x = f32s(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
        let out = run("Transpose", 13, vec![ints("perm", &[1, 0])], &[x]);
        assert_eq!(
            out[0].to_vec2::<f32>().unwrap(),
            vec![vec![1., 4.], vec![2., 5.], vec![3., 6.]]
        );
    }

    #[test]
    fn slice_clamps_and_steps_backwards() {
        let x = f32s(&[0., 1., 2., 3., 4.], &[5]);
        let out = run(
            "Slice",
            13,
            vec![],
            &[x.clone(), i64s(&[1]), i64s(&[i64::MAX])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![1., 2., 3., 4.]);
        let out = run(
            "Slice",
            13,
            vec![],
            &[x, i64s(&[-1]), i64s(&[i64::MIN]), i64s(&[0]), i64s(&[-2])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![4., 2., 0.]);
    }

    #[test]
    fn gather_embeds_rows_for_a_matrix_of_ids() {
        let table = f32s(&[0., 0., 1., 1., 2., 2.], &[3, 2]);
        let ids = Some(candle_core::Tensor::new(&[[2i64, -3]], &candle_core::Device::Cpu).unwrap());
        let out = run("Gather", 13, vec![], &[table, ids]);
        assert_eq!(out[0].dims(), &[1, 2, 2]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![2., 2., 0., 0.]
        );
    }

    #[test]
    fn concat_joins_shape_vectors() {
        let out = run(
            "Concat",
            13,
            vec![super::super::testing::int("axis", 0)],
            &[i64s(&[1, 2]), i64s(&[3])],
        );
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![1, 2, 3]);
    }
}

//! Feature transforms: Binarizer, ArrayFeatureExtractor.

use candle_core::{DType, Tensor};

use super::super::super::node::{Node, int_values, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// 1 where x > threshold, else 0, in x's type.
pub fn binarizer(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let threshold = Tensor::new(f64::from(node.float("threshold", 0.0)), x.device())?;
    let above = x.to_dtype(DType::F64)?.broadcast_gt(&threshold)?;
    Ok(vec![above.to_dtype(x.dtype())?])
}

/// The entries of X's last axis that the indices name, in their order. A 1-D X gives one row, as ONNX
/// Runtime does.
pub fn array_feature_extractor(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let indices = int_values(required(inputs, 1)?)?;
    let last = x.dims().last().copied().ok_or_else(|| {
        ModelError::Evaluation("ArrayFeatureExtractor needs an X of rank 1 or more".to_owned())
    })?;
    let positions = indices
        .iter()
        .map(|&i| {
            u32::try_from(i)
                .ok()
                .filter(|&i| (i as usize) < last)
                .ok_or_else(|| {
                    ModelError::Evaluation(format!(
                        "ArrayFeatureExtractor index {i} is out of range for {last} features"
                    ))
                })
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let count = positions.len();
    let positions = Tensor::from_vec(positions, count, x.device())?;
    let picked = x.index_select(&positions, x.rank() - 1)?;
    let mut shape = if x.rank() == 1 {
        vec![1]
    } else {
        x.dims()[..x.rank() - 1].to_vec()
    };
    shape.push(count);
    Ok(vec![picked.reshape(shape)?])
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::super::DOMAIN;
    use crate::eval::ops::testing::{f32s, flat, float, run_in};

    #[test]
    fn binarizer_is_strictly_above_the_threshold() {
        let out = run_in(
            DOMAIN,
            "Binarizer",
            vec![float("threshold", 1.0)],
            &[f32s(&[0.5, 1.0, 1.5], &[3])],
        );
        assert_eq!(flat(&out[0]), vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn array_feature_extractor_picks_last_axis_entries() {
        let indices = Some(Tensor::new(&[2i64, 0], &Device::Cpu).unwrap());
        let out = run_in(
            DOMAIN,
            "ArrayFeatureExtractor",
            vec![],
            &[f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]), indices],
        );
        assert_eq!(out[0].dims(), &[2, 2]);
        assert_eq!(flat(&out[0]), vec![3.0, 1.0, 6.0, 4.0]);
    }

    #[test]
    fn array_feature_extractor_rejects_an_index_past_the_end() {
        let proto = crate::proto::NodeProto::default();
        let node = crate::eval::node::Node::new(&proto, 1);
        let indices = Some(Tensor::new(&[3i64], &Device::Cpu).unwrap());
        let x = f32s(&[1.0, 2.0, 3.0], &[3]);
        assert!(super::array_feature_extractor(&node, &[x, indices]).is_err());
    }
}

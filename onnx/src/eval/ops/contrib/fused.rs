//! ONNX Runtime's fusions of standard operators: `FusedMatMul` (transposes and a scale folded into
//! MatMul) and `FusedConv` (Conv, an optional residual input, and an activation).

use candle_core::Tensor;

use super::super::super::node::{Node, optional, required};
use super::super::{matmul, spatial};
use super::{Out, evaluation};

/// alpha · op(A) · op(B), op a transpose of the last two axes when `transA`/`transB` is set, with MatMul's
/// broadcasting. The batch-axis transposes (`transBatchA`/`transBatchB`) are not implemented.
pub fn fused_matmul(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    for name in ["transBatchA", "transBatchB"] {
        if node.int(name, 0) != 0 {
            return Err(evaluation(format!(
                "FusedMatMul with {name} set is not implemented"
            )));
        }
    }
    let operand = |index: usize, transpose: &str| -> Result<Tensor, crate::ModelError> {
        let t = required(inputs, index)?;
        if node.int(transpose, 0) != 0 && t.rank() >= 2 {
            Ok(t.transpose(t.rank() - 2, t.rank() - 1)?.contiguous()?)
        } else {
            Ok(t.clone())
        }
    };
    let (a, b) = (operand(0, "transA")?, operand(1, "transB")?);
    let product = matmul::matmul(node, &[Some(a), Some(b)])?.remove(0);
    let alpha = node.float("alpha", 1.0);
    Ok(vec![if alpha == 1.0 {
        product
    } else {
        product.affine(f64::from(alpha), 0.0)?
    }])
}

/// activation(Conv(X, W, B) + Z); `activation_params` carries LeakyRelu's alpha, Clip's bounds or
/// HardSigmoid's alpha and beta.
pub fn fused_conv(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let conv_inputs = &inputs[..inputs.len().min(3)];
    let mut y = spatial::conv(node, conv_inputs)?.remove(0);
    if let Some(z) = optional(inputs, 3) {
        if z.dims() != y.dims() {
            return Err(evaluation(format!(
                "FusedConv's Z has shape {:?}, the convolution's output {:?}",
                z.dims(),
                y.dims()
            )));
        }
        y = (y + z)?;
    }
    let params = node.floats("activation_params").unwrap_or_default();
    let param =
        |index: usize, default: f32| f64::from(params.get(index).copied().unwrap_or(default));
    let activation = node.string("activation").unwrap_or_default();
    Ok(vec![match activation.as_str() {
        "" | "Identity" => y,
        "Relu" => y.relu()?,
        "Tanh" => y.tanh()?,
        "Sigmoid" => candle_nn::ops::sigmoid(&y)?,
        "LeakyRelu" => {
            let scaled = y.affine(param(0, 0.01), 0.0)?;
            y.ge(&y.zeros_like()?)?.where_cond(&y, &scaled)?
        }
        "Clip" => {
            let (low, high) = (param(0, f32::MIN), param(1, f32::MAX));
            y.clamp(low, high)?
        }
        "HardSigmoid" => y.affine(param(0, 0.2), param(1, 0.5))?.clamp(0.0, 1.0)?,
        other => {
            return Err(evaluation(format!(
                "FusedConv activation {other:?} is not implemented"
            )));
        }
    }])
}

#[cfg(test)]
mod tests {
    use candle_core::Tensor;

    use super::super::testing::run;
    use crate::eval::ops::testing::{f32s, float, int, string};

    #[test]
    fn fused_matmul_transposes_and_scales() {
        // A is given as Aᵀ (3x2), B as Bᵀ (2x3): alpha · A · B with A = [[1,2,3],[4,5,6]], B = Aᵀ.
        let a_t = f32s(&[1., 4., 2., 5., 3., 6.], &[3, 2]);
        let b_t = f32s(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
        let out = run(
            "FusedMatMul",
            vec![int("transA", 1), int("transB", 1), float("alpha", 0.5)],
            &[a_t, b_t],
        );
        assert_eq!(
            out[0].to_vec2::<f32>().unwrap(),
            vec![vec![7., 16.], vec![16., 38.5]]
        );
    }

    #[test]
    fn fused_matmul_broadcasts_batches() {
        let a = f32s(&[1., 0., 0., 1., 2., 0., 0., 2.], &[2, 2, 2]);
        let b = f32s(&[1., 2., 3., 4.], &[2, 2]);
        let out = run("FusedMatMul", vec![int("transB", 1)], &[a, b]);
        let v = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v, vec![1., 3., 2., 4., 2., 6., 4., 8.]);
    }

    #[test]
    fn fused_conv_adds_z_and_applies_the_activation() {
        // 1x1 convolution doubling one channel, then + Z, then LeakyRelu(0.1).
        let x = f32s(&[1., -2., 3., -4.], &[1, 1, 2, 2]);
        let w = f32s(&[2.], &[1, 1, 1, 1]);
        let z = f32s(&[1., 1., 1., 1.], &[1, 1, 2, 2]);
        let out = run(
            "FusedConv",
            vec![
                string("activation", "LeakyRelu"),
                floats_attr("activation_params", &[0.1]),
            ],
            &[x, w, None, z],
        );
        let v = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expected = [3., -0.3, 7., -0.7];
        assert!(
            v.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6),
            "{v:?}"
        );
    }

    #[test]
    fn fused_conv_refuses_an_unknown_activation() {
        let proto = crate::proto::NodeProto {
            attribute: vec![string("activation", "Swish9")],
            ..Default::default()
        };
        let node = crate::eval::node::Node::new(&proto, 17);
        let x = Tensor::ones(
            (1, 1, 2, 2),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        );
        let w = Tensor::ones(
            (1, 1, 1, 1),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        );
        let err = super::fused_conv(&node, &[x.ok(), w.ok()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("Swish9"), "{err}");
    }

    fn floats_attr(name: &str, values: &[f32]) -> crate::proto::AttributeProto {
        crate::proto::AttributeProto {
            name: Some(name.to_owned()),
            floats: values.to_vec(),
            r#type: Some(6),
            ..Default::default()
        }
    }
}

//! ONNX Runtime's GELU family: `Gelu` (erf), `BiasGelu` (erf of input + bias), `FastGelu` (the tanh
//! approximation, optional bias) and `QuickGelu` (x·sigmoid(αx)).

use candle_core::Tensor;

use super::super::super::node::{Node, optional, required};
use super::{Out, last_axis_vector};

pub fn gelu(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![required(inputs, 0)?.gelu_erf()?])
}

pub fn bias_gelu(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let biased = x.broadcast_add(last_axis_vector(x, required(inputs, 1)?, "bias")?)?;
    Ok(vec![biased.gelu_erf()?])
}

/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), after the optional bias.
pub fn fast_gelu(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let x = match optional(inputs, 1) {
        Some(bias) => x.broadcast_add(last_axis_vector(x, bias, "bias")?)?,
        None => x.clone(),
    };
    // candle's `gelu` is exactly this tanh approximation.
    Ok(vec![x.gelu()?])
}

pub fn quick_gelu(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let alpha = f64::from(node.float("alpha", 1.702));
    let gate = candle_nn::ops::sigmoid(&x.affine(alpha, 0.0)?)?;
    Ok(vec![(x * gate)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::eval::ops::testing::{f32s, float};

    fn erf_gelu(x: f64) -> f64 {
        // Φ(x) from the series-free identity Φ(x) = (1 + erf(x/√2)) / 2, erf by Abramowitz–Stegun 7.1.26.
        let z = x / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.3275911 * z.abs());
        let poly = t
            * (0.254829592
                + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        let erf = (1.0 - poly * (-z * z).exp()).copysign(z);
        0.5 * x * (1.0 + erf)
    }

    fn values(t: &candle_core::Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn gelu_and_bias_gelu_use_erf() {
        let x = [-2.0f32, -0.5, 0.0, 1.0, 3.0, 0.25];
        let out = run("Gelu", vec![], &[f32s(&x, &[2, 3])]);
        for (a, &x) in values(&out[0]).iter().zip(&x) {
            assert!((f64::from(*a) - erf_gelu(f64::from(x))).abs() < 1e-5);
        }
        let biased = run(
            "BiasGelu",
            vec![],
            &[f32s(&x, &[2, 3]), f32s(&[1., 0., -1.], &[3])],
        );
        let expected: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| erf_gelu(f64::from(v) + [1., 0., -1.][i % 3]))
            .collect();
        for (a, e) in values(&biased[0]).iter().zip(expected) {
            assert!((f64::from(*a) - e).abs() < 1e-5);
        }
    }

    #[test]
    fn fast_gelu_is_the_tanh_approximation_with_an_optional_bias() {
        let tanh_gelu = |x: f64| {
            0.5 * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
        };
        let out = run(
            "FastGelu",
            vec![],
            &[f32s(&[-1., 0.5], &[2]), f32s(&[0.5, 0.5], &[2])],
        );
        let v = values(&out[0]);
        assert!((f64::from(v[0]) - tanh_gelu(-0.5)).abs() < 1e-6);
        assert!((f64::from(v[1]) - tanh_gelu(1.0)).abs() < 1e-6);
        let unbiased = run("FastGelu", vec![], &[f32s(&[2.0], &[1])]);
        assert!((f64::from(values(&unbiased[0])[0]) - tanh_gelu(2.0)).abs() < 1e-6);
    }

    #[test]
    fn quick_gelu_gates_with_a_scaled_sigmoid() {
        let out = run(
            "QuickGelu",
            vec![float("alpha", 2.0)],
            &[f32s(&[1.0, -3.0], &[2])],
        );
        let v = values(&out[0]);
        let expected = |x: f64| x / (1.0 + (-2.0 * x).exp());
        assert!((f64::from(v[0]) - expected(1.0)).abs() < 1e-6);
        assert!((f64::from(v[1]) - expected(-3.0)).abs() < 1e-6);
    }

    #[test]
    fn a_bias_of_the_wrong_width_is_an_error() {
        let proto = crate::proto::NodeProto::default();
        let node = crate::eval::node::Node::new(&proto, 17);
        let inputs = [f32s(&[1., 2., 3.], &[3]), f32s(&[1., 2.], &[2])];
        assert!(super::bias_gelu(&node, &inputs).is_err());
    }
}

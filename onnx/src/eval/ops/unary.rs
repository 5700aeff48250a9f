//! Elementwise functions of one input, and the activations ONNX defines with attributes.

use candle_core::{DType, Tensor};

use super::super::node::{Node, float_input, optional, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// Applies `f` to every value in f64 and returns the input's dtype: for the functions candle lacks.
fn map(x: &Tensor, f: impl Fn(f64) -> f64) -> Result<Tensor, ModelError> {
    // The same values (f32 -> f64 -> f32) in one pass, without two converted copies of the tensor.
    if let Some(y) = super::cpu_f32::map(x, |v| f(f64::from(v)) as f32) {
        return y;
    }
    let values: Vec<f64> = x
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?
        .into_iter()
        .map(f)
        .collect();
    Ok(Tensor::from_vec(values, x.shape(), x.device())?.to_dtype(x.dtype())?)
}

macro_rules! by_value {
    ($($name:ident => $f:expr),* $(,)?) => {
        $(
            pub fn $name(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
                Ok(vec![map(required(inputs, 0)?, $f)?])
            }
        )*
    };
}

by_value! {
    acos => f64::acos,
    asin => f64::asin,
    atan => f64::atan,
    acosh => f64::acosh,
    asinh => f64::asinh,
    atanh => f64::atanh,
    cosh => f64::cosh,
    sinh => f64::sinh,
    tan => f64::tan,
    softplus => |x: f64| if x > 20.0 { x } else { x.exp().ln_1p() },
    softsign => |x: f64| x / (1.0 + x.abs()),
    mish => |x: f64| x * (if x > 20.0 { x } else { x.exp().ln_1p() }).tanh(),
    // Round half to even, as ONNX (and NumPy) define Round.
    round => f64::round_ties_even,
    reciprocal => |x: f64| 1.0 / x,
}

pub fn abs(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    // Integers wrapping as ONNX Runtime's do (|i64::MIN| is i64::MIN), exact past 2^53.
    Ok(vec![if x.dtype() == DType::I64 {
        super::elementwise::map_i64(x, i64::wrapping_abs)?
    } else {
        x.abs()?
    }])
}

pub fn log(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![float_input(node, inputs, 0)?.log()?])
}

pub fn ceil(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![required(inputs, 0)?.ceil()?])
}

pub fn floor(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![required(inputs, 0)?.floor()?])
}

pub fn sign(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    // NaN's sign is NaN in ONNX Runtime 1.32 for float and double, and 0 for float16 and bfloat16.
    let half = matches!(x.dtype(), DType::F16 | DType::BF16);
    Ok(vec![map(x, move |x| {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else if half {
            0.0
        } else {
            x * 0.0
        }
    })?])
}

pub fn leaky_relu(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let alpha = f64::from(node.float("alpha", 0.01));
    Ok(vec![map(required(inputs, 0)?, move |x| {
        if x >= 0.0 { x } else { alpha * x }
    })?])
}

pub fn elu(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let alpha = f64::from(node.float("alpha", 1.0));
    Ok(vec![map(required(inputs, 0)?, move |x| {
        if x >= 0.0 { x } else { alpha * (x.exp() - 1.0) }
    })?])
}

pub fn selu(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let alpha = f64::from(node.float("alpha", 1.673_263_2));
    let gamma = f64::from(node.float("gamma", 1.050_701));
    Ok(vec![map(required(inputs, 0)?, move |x| {
        gamma * if x > 0.0 { x } else { alpha * (x.exp() - 1.0) }
    })?])
}

pub fn celu(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let alpha = f64::from(node.float("alpha", 1.0));
    // NaN stays NaN, as in ONNX Runtime (Rust's max and min take the number).
    Ok(vec![map(required(inputs, 0)?, move |x| {
        if x.is_nan() {
            x
        } else {
            x.max(0.0) + (alpha * ((x / alpha).exp() - 1.0)).min(0.0)
        }
    })?])
}

pub fn thresholded_relu(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let alpha = f64::from(node.float("alpha", 1.0));
    Ok(vec![map(required(inputs, 0)?, move |x| {
        if x > alpha { x } else { 0.0 }
    })?])
}

pub fn hard_sigmoid(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let alpha = f64::from(node.float("alpha", 0.2));
    let beta = f64::from(node.float("beta", 0.5));
    Ok(vec![map(required(inputs, 0)?, move |x| {
        (alpha * x + beta).clamp(0.0, 1.0)
    })?])
}

pub fn hard_swish(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![map(required(inputs, 0)?, |x| {
        x * (x / 6.0 + 0.5).clamp(0.0, 1.0)
    })?])
}

pub fn shrink(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let lambd = f64::from(node.float("lambd", 0.5));
    let bias = f64::from(node.float("bias", 0.0));
    Ok(vec![map(required(inputs, 0)?, move |x| {
        if x < -lambd {
            x + bias
        } else if x > lambd {
            x - bias
        } else {
            0.0
        }
    })?])
}

/// GELU (opset 20): exact, or the tanh approximation.
pub fn gelu(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = float_input(node, inputs, 0)?;
    let tanh = node.string("approximate").as_deref() == Some("tanh");
    let f = if tanh {
        super::f32_math::gelu_tanh
    } else {
        super::f32_math::gelu
    };
    if let Some(y) = super::cpu_f32::map(x, f) {
        return Ok(vec![y?]);
    }
    Ok(vec![if tanh { x.gelu()? } else { x.gelu_erf()? }])
}

/// PRelu: the slope broadcasts against the input.
pub fn prelu(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (x, slope) = (required(inputs, 0)?, required(inputs, 1)?);
    let negative = if x.dtype().is_float() {
        x.broadcast_mul(slope)?
    } else {
        // Integers (opset 16) wrap on overflow, as Mul's do.
        super::elementwise::wrapping(x, slope, "PRelu", i64::wrapping_mul)?
    };
    let keep = x.ge(&x.zeros_like()?)?;
    let shape = negative.shape().clone();
    Ok(vec![
        keep.broadcast_as(&shape)?
            .where_cond(&x.broadcast_as(&shape)?, &negative)?,
    ])
}

/// Clip: bounds are attributes before opset 11, optional inputs from 11 on.
pub fn clip(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let (min, max) = if node.opset >= 11 {
        let scalar = |t: Option<&Tensor>| -> Result<Option<f64>, ModelError> {
            t.map(
                |t| match t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?[..] {
                    [value] => Ok(value),
                    _ => Err(ModelError::Evaluation(format!(
                        "Clip: min and max must be scalars, not of shape {:?}",
                        t.dims()
                    ))),
                },
            )
            .transpose()
        };
        (scalar(optional(inputs, 1))?, scalar(optional(inputs, 2))?)
    } else {
        (
            node.has("min")
                .then(|| f64::from(node.float("min", f32::MIN))),
            node.has("max")
                .then(|| f64::from(node.float("max", f32::MAX))),
        )
    };
    if x.dtype() == DType::I64 && node.opset >= 11 {
        // int64 bounds and values compared as they are (through f64, values past 2^53 were rounded).
        let bound = |index: usize| -> Result<Option<i64>, ModelError> {
            match optional(inputs, index) {
                Some(t) => Ok(t.flatten_all()?.to_vec1::<i64>()?.first().copied()),
                None => Ok(None),
            }
        };
        let (lo, hi) = (bound(1)?.unwrap_or(i64::MIN), bound(2)?.unwrap_or(i64::MAX));
        return Ok(vec![super::elementwise::map_i64(x, move |v| {
            v.max(lo).min(hi)
        })?]);
    }
    let (lo, hi) = (
        min.unwrap_or(f64::NEG_INFINITY),
        max.unwrap_or(f64::INFINITY),
    );
    // NaN stays NaN, as ONNX Runtime clips.
    Ok(vec![map(x, move |v| {
        if v.is_nan() { v } else { v.max(lo).min(hi) }
    })?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, run};

    #[test]
    fn round_is_half_to_even() {
        let out = run(
            "Round",
            13,
            vec![],
            &[f32s(&[0.5, 1.5, 2.5, -0.5, 2.4], &[5])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![0., 2., 2., -0., 2.]);
    }

    #[test]
    fn hard_swish_matches_mobilenet_v3() {
        let out = run("HardSwish", 14, vec![], &[f32s(&[-4., 0., 1., 4.], &[4])]);
        let v = out[0].to_vec1::<f32>().unwrap();
        assert!((v[2] - 1.0 * (1.0 / 6.0 + 0.5)).abs() < 1e-6 && v[0] == 0. && v[3] == 4.);
    }

    #[test]
    fn clip_reads_bounds_from_inputs_from_opset_11() {
        let out = run(
            "Clip",
            13,
            vec![],
            &[
                f32s(&[-1., 3., 9.], &[3]),
                f32s(&[0.], &[]),
                f32s(&[6.], &[]),
            ],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![0., 3., 6.]);
    }
}

//! The optimizer steps of the `ai.onnx.preview.training` domain (Adagrad, Adam, Momentum): one update of
//! a set of tensors from their gradients and accumulators. Each takes the learning rate R and step count
//! T, then every tensor's group of inputs laid out one kind after another (all X, then all G, ...).

use candle_core::{DType, Tensor};

use super::super::node::{Node, required};
use super::OpFn;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// The ONNX preview training domain.
pub const DOMAIN: &str = "ai.onnx.preview.training";

/// Every training operator kiln implements, by name (read through [`super::lookup`]).
pub const OPS: &[(&str, OpFn)] = &[("Adagrad", adagrad), ("Adam", adam), ("Momentum", momentum)];

/// A one-value input as f64 (the learning rate, the step count).
fn scalar(inputs: &[Option<Tensor>], index: usize, what: &str) -> Result<f64, ModelError> {
    let t = required(inputs, index)?;
    if t.elem_count() != 1 {
        return Err(ModelError::Evaluation(format!(
            "{what} must hold one value, not {:?}",
            t.dims()
        )));
    }
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?[0])
}

/// R, T, and the tensors after them split into `kinds` equal groups (X, G, V, ...), one per kind.
fn groups<'a>(
    op: &str,
    inputs: &'a [Option<Tensor>],
    kinds: usize,
) -> Result<(f64, f64, Vec<Vec<&'a Tensor>>), ModelError> {
    let r = scalar(inputs, 0, "R")?;
    let t = scalar(inputs, 1, "T")?;
    let rest = inputs.len().saturating_sub(2);
    if rest == 0 || !rest.is_multiple_of(kinds) {
        return Err(ModelError::Evaluation(format!(
            "{op} takes R, T and {kinds} inputs per optimized tensor, not {} inputs",
            inputs.len()
        )));
    }
    let n = rest / kinds;
    let groups = (0..kinds)
        .map(|k| (0..n).map(|i| required(inputs, 2 + k * n + i)).collect())
        .collect::<Result<Vec<Vec<&Tensor>>, _>>()?;
    // The updates use candle's float functions (sqrt), which panic on integers.
    if let Some(t) = groups.iter().flatten().find(|t| !t.dtype().is_float()) {
        return Err(ModelError::Evaluation(format!(
            "{op} updates floating-point tensors, not {:?}",
            t.dtype()
        )));
    }
    Ok((r, t, groups))
}

/// g + norm · x: the gradient with its L2 regularization term.
fn regularized(x: &Tensor, g: &Tensor, norm: f64) -> Result<Tensor, ModelError> {
    Ok((x.affine(norm, 0.0)? + g)?)
}

/// Outputs: every new X, then every new H.
pub fn adagrad(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (r, t, groups) = groups("Adagrad", inputs, 3)?;
    let (epsilon, decay) = (
        f64::from(node.float("epsilon", 1e-6)),
        f64::from(node.float("decay_factor", 0.0)),
    );
    let norm = f64::from(node.float("norm_coefficient", 0.0));
    let rate = r / (1.0 + t * decay);
    let (mut xs, mut hs) = (Vec::new(), Vec::new());
    for ((x, g), h) in groups[0].iter().zip(&groups[1]).zip(&groups[2]) {
        let g = regularized(x, g, norm)?;
        let h_new = (*h + g.sqr()?)?;
        let step = g.div(&h_new.sqrt()?.affine(1.0, epsilon)?)?;
        xs.push((*x - step.affine(rate, 0.0)?)?);
        hs.push(h_new);
    }
    xs.extend(hs);
    Ok(xs)
}

/// Outputs: every new X, then every new V, then every new H.
pub fn adam(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (r, t, groups) = groups("Adam", inputs, 4)?;
    let alpha = f64::from(node.float("alpha", 0.9));
    let beta = f64::from(node.float("beta", 0.999));
    let epsilon = f64::from(node.float("epsilon", 1e-6));
    let norm = f64::from(node.float("norm_coefficient", 0.0));
    let post = f64::from(node.float("norm_coefficient_post", 0.0));
    // Bias correction of the moments applies from the first counted step on.
    let rate = if t > 0.0 {
        r * (1.0 - beta.powf(t)).sqrt() / (1.0 - alpha.powf(t))
    } else {
        r
    };
    let (mut xs, mut vs, mut hs) = (Vec::new(), Vec::new(), Vec::new());
    for (((x, g), v), h) in groups[0]
        .iter()
        .zip(&groups[1])
        .zip(&groups[2])
        .zip(&groups[3])
    {
        let g = regularized(x, g, norm)?;
        let v_new = (v.affine(alpha, 0.0)? + g.affine(1.0 - alpha, 0.0)?)?;
        let h_new = (h.affine(beta, 0.0)? + g.sqr()?.affine(1.0 - beta, 0.0)?)?;
        let step = v_new.div(&h_new.sqrt()?.affine(1.0, epsilon)?)?;
        let x_new = (*x - step.affine(rate, 0.0)?)?;
        xs.push(x_new.affine(1.0 - post, 0.0)?);
        vs.push(v_new);
        hs.push(h_new);
    }
    xs.extend(vs);
    xs.extend(hs);
    Ok(xs)
}

/// Outputs: every new X, then every new V. `mode` is "standard" or "nesterov".
pub fn momentum(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (r, t, groups) = groups("Momentum", inputs, 3)?;
    let alpha = f64::from(node.float("alpha", 0.0));
    let norm = f64::from(node.float("norm_coefficient", 0.0));
    // The gradient's coefficient is 1 on the first step, so V starts as the gradient itself.
    let beta = if t > 0.0 {
        f64::from(node.float("beta", 0.0))
    } else {
        1.0
    };
    let nesterov = match node.string("mode").as_deref() {
        None | Some("standard") => false,
        Some("nesterov") => true,
        Some(other) => {
            return Err(ModelError::Evaluation(format!(
                "Momentum mode {other:?} is neither \"standard\" nor \"nesterov\""
            )));
        }
    };
    let (mut xs, mut vs) = (Vec::new(), Vec::new());
    for ((x, g), v) in groups[0].iter().zip(&groups[1]).zip(&groups[2]) {
        let g = regularized(x, g, norm)?;
        let v_new = (v.affine(alpha, 0.0)? + g.affine(beta, 0.0)?)?;
        let direction = if nesterov {
            (&g + v_new.affine(alpha, 0.0)?)?
        } else {
            v_new.clone()
        };
        xs.push((*x - direction.affine(r, 0.0)?)?);
        vs.push(v_new);
    }
    xs.extend(vs);
    Ok(xs)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, flat, float, i64s, run_in, string};
    use super::DOMAIN;

    #[test]
    fn adagrad_scales_the_step_by_the_accumulated_square() {
        let out = run_in(
            DOMAIN,
            "Adagrad",
            vec![float("epsilon", 0.0)],
            &[
                f32s(&[0.5], &[]),
                i64s(&[0]),
                f32s(&[1.0], &[1]),
                f32s(&[2.0], &[1]),
                f32s(&[0.0], &[1]),
            ],
        );
        assert_eq!(flat(&out[0]), vec![0.5]);
        assert_eq!(flat(&out[1]), vec![4.0]);
    }

    #[test]
    fn adam_without_bias_correction_on_step_zero() {
        let out = run_in(
            DOMAIN,
            "Adam",
            vec![
                float("alpha", 0.5),
                float("beta", 0.5),
                float("epsilon", 0.0),
            ],
            &[
                f32s(&[1.0], &[]),
                i64s(&[0]),
                f32s(&[1.0], &[1]),
                f32s(&[2.0], &[1]),
                f32s(&[0.0], &[1]),
                f32s(&[0.0], &[1]),
            ],
        );
        // v = 1, h = 2, x = 1 - 1/sqrt(2)
        assert!((flat(&out[0])[0] - (1.0 - 1.0 / 2f32.sqrt())).abs() < 1e-6);
        assert_eq!(flat(&out[1]), vec![1.0]);
        assert_eq!(flat(&out[2]), vec![2.0]);
    }

    #[test]
    fn nesterov_momentum_looks_ahead() {
        let out = run_in(
            DOMAIN,
            "Momentum",
            vec![
                float("alpha", 0.5),
                float("beta", 1.0),
                string("mode", "nesterov"),
            ],
            &[
                f32s(&[1.0], &[]),
                i64s(&[1]),
                f32s(&[1.0], &[1]),
                f32s(&[2.0], &[1]),
                f32s(&[2.0], &[1]),
            ],
        );
        // v = 0.5·2 + 2 = 3; x = 1 - (2 + 0.5·3)
        assert_eq!(flat(&out[0]), vec![-2.5]);
        assert_eq!(flat(&out[1]), vec![3.0]);
    }
}

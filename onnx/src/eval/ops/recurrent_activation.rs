//! The activation functions ONNX's recurrent operators (LSTM, GRU, RNN) name in `activations`, with the
//! `activation_alpha` and `activation_beta` values each consumes.

use super::cpu_f32::apply_in_place;
use super::f32_math;
use crate::ModelError;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Relu,
    Tanh,
    Sigmoid,
    Affine { alpha: f64, beta: f64 },
    LeakyRelu { alpha: f64 },
    ThresholdedRelu { alpha: f64 },
    ScaledTanh { alpha: f64, beta: f64 },
    HardSigmoid { alpha: f64, beta: f64 },
    Elu { alpha: f64 },
    Softsign,
    Softplus,
}

impl Activation {
    pub fn apply(self, x: f64) -> f64 {
        match self {
            // A select, not max(0): NaN stays NaN, as in ONNX Runtime's std::max(x, 0).
            Self::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Self::Tanh => x.tanh(),
            Self::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Self::Affine { alpha, beta } => alpha * x + beta,
            Self::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Self::ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
            Self::ScaledTanh { alpha, beta } => alpha * (beta * x).tanh(),
            Self::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Self::Elu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * (x.exp() - 1.0)
                }
            }
            Self::Softsign => x / (1.0 + x.abs()),
            Self::Softplus => x.exp().ln_1p(),
        }
    }
}

/// A float type activations apply to a slice of in place: f32 takes the vectorized logistic function,
/// tanh and Relu (the functions nearly every recurrent model uses), every other case goes element by
/// element through f64.
pub trait Activated: Sized {
    fn activate(activation: Activation, values: &mut [Self]);
}

impl Activated for f64 {
    fn activate(activation: Activation, values: &mut [Self]) {
        for v in values {
            *v = activation.apply(*v);
        }
    }
}

impl Activated for f32 {
    fn activate(activation: Activation, values: &mut [Self]) {
        match activation {
            Activation::Sigmoid => apply_in_place(values, &f32_math::sigmoid),
            Activation::Tanh => apply_in_place(values, &f32_math::tanh),
            Activation::Relu => apply_in_place(values, &|v: f32| if v < 0.0 { 0.0 } else { v }),
            other => {
                for v in values {
                    *v = other.apply(f64::from(*v)) as f32;
                }
            }
        }
    }
}

/// The activations of every direction, in order: `per_direction` functions for the first direction, then
/// for the second. Names are matched without regard to case (exporters differ); alpha and beta values are
/// consumed in order by the functions that take them, and a function past the end of the list gets its
/// ONNX operator's default. A bidirectional node that names only one direction's functions uses them for
/// both, as onnxruntime does.
pub fn parse(
    names: Option<Vec<String>>,
    alphas: &[f32],
    betas: &[f32],
    defaults: &[&str],
    directions: usize,
) -> Result<Vec<Activation>, ModelError> {
    let per_direction = defaults.len();
    let mut names = names
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| defaults.iter().map(|s| (*s).to_owned()).collect());
    if names.len() == per_direction && directions == 2 {
        names.extend_from_within(..);
    }
    if names.len() != per_direction * directions {
        return Err(ModelError::Evaluation(format!(
            "{} activations given, {} expected ({per_direction} per direction)",
            names.len(),
            per_direction * directions
        )));
    }
    let mut alphas = alphas.iter().map(|&a| f64::from(a));
    let mut betas = betas.iter().map(|&b| f64::from(b));
    names
        .iter()
        .map(|name| {
            let mut alpha = |default: f64| alphas.next().unwrap_or(default);
            Ok(match name.to_ascii_lowercase().as_str() {
                "relu" => Activation::Relu,
                "tanh" => Activation::Tanh,
                "sigmoid" => Activation::Sigmoid,
                "softsign" => Activation::Softsign,
                "softplus" => Activation::Softplus,
                "leakyrelu" => Activation::LeakyRelu { alpha: alpha(0.01) },
                "thresholdedrelu" => Activation::ThresholdedRelu { alpha: alpha(1.0) },
                "elu" => Activation::Elu { alpha: alpha(1.0) },
                "affine" => Activation::Affine {
                    alpha: alpha(1.0),
                    beta: betas.next().unwrap_or(0.0),
                },
                "scaledtanh" => Activation::ScaledTanh {
                    alpha: alpha(1.0),
                    beta: betas.next().unwrap_or(1.0),
                },
                "hardsigmoid" => Activation::HardSigmoid {
                    alpha: alpha(0.2),
                    beta: betas.next().unwrap_or(0.5),
                },
                other => {
                    return Err(ModelError::Evaluation(format!(
                        "unknown recurrent activation {other:?}"
                    )));
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_repeat_for_both_directions() {
        let acts = parse(None, &[], &[], &["Sigmoid", "Tanh"], 2).unwrap();
        assert_eq!(
            acts,
            vec![
                Activation::Sigmoid,
                Activation::Tanh,
                Activation::Sigmoid,
                Activation::Tanh
            ]
        );
    }

    #[test]
    fn alphas_are_consumed_by_the_functions_that_take_them() {
        let names = vec!["Tanh".into(), "LeakyRelu".into(), "HardSigmoid".into()];
        let acts = parse(Some(names), &[0.5, 0.3], &[0.4], &["a", "b", "c"], 1).unwrap();
        assert_eq!(acts[1], Activation::LeakyRelu { alpha: 0.5 });
        assert!(matches!(acts[2], Activation::HardSigmoid { alpha, beta }
            if (alpha - 0.3).abs() < 1e-6 && (beta - 0.4).abs() < 1e-6));
        assert_eq!(Activation::Relu.apply(-1.0), 0.0);
        assert!((Activation::Softplus.apply(0.0) - 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn unknown_names_and_wrong_counts_are_refused() {
        assert!(parse(Some(vec!["Swish".into()]), &[], &[], &["Tanh"], 1).is_err());
        let three = vec!["Tanh".into(), "Tanh".into(), "Tanh".into()];
        assert!(parse(Some(three), &[], &[], &["Tanh"], 2).is_err());
    }
}

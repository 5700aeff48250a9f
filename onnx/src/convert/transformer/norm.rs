//! The normalizations over the hidden dimension: LayerNorm (BERT, GPT-2) and RMSNorm (Llama).

use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::graph_builder::{GraphBuilder, attr_float, attr_int, attr_ints};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Norm {
    /// `(x - mean) / √(var + eps) · weight + bias`.
    Layer { eps: f64 },
    /// `x / √(mean(x²) + eps) · weight`: no centring, no bias.
    Rms { eps: f64 },
}

impl Norm {
    /// The norm whose weights are checkpoint module `module` (`{module}.weight`, and `{module}.bias` for
    /// LayerNorm).
    pub fn apply(
        self,
        g: &mut GraphBuilder,
        weights: &Checkpoint,
        x: &str,
        module: &str,
    ) -> Result<String, ModelError> {
        match self {
            Norm::Layer { eps } => layer_norm(g, weights, x, module, eps),
            Norm::Rms { eps } => rms_norm(g, weights, x, module, eps),
        }
    }
}

fn layer_norm(
    g: &mut GraphBuilder,
    weights: &Checkpoint,
    x: &str,
    module: &str,
    eps: f64,
) -> Result<String, ModelError> {
    let (gamma, beta) = (format!("{module}.weight"), format!("{module}.bias"));
    let scale = g.float_weight(&gamma, &weights.weight(&gamma)?)?;
    let bias = g.float_weight(&beta, &weights.weight(&beta)?)?;
    Ok(g.op(
        "LayerNormalization",
        &[x, &scale, &bias],
        vec![attr_int("axis", -1), attr_float("epsilon", eps as f32)],
    ))
}

fn rms_norm(
    g: &mut GraphBuilder,
    weights: &Checkpoint,
    x: &str,
    module: &str,
    eps: f64,
) -> Result<String, ModelError> {
    let squared = g.op("Mul", &[x, x], vec![]);
    let mean = g.op(
        "ReduceMean",
        &[&squared],
        vec![attr_ints("axes", &[-1]), attr_int("keepdims", 1)],
    );
    let eps = g.scalar("rms_eps", eps as f32)?;
    let shifted = g.op("Add", &[&mean, &eps], vec![]);
    let root = g.op("Sqrt", &[&shifted], vec![]);
    let normed = g.op("Div", &[x, &root], vec![]);
    let weight = format!("{module}.weight");
    let w = g.float_weight(&weight, &weights.weight(&weight)?)?;
    Ok(g.op("Mul", &[&normed, &w], vec![]))
}

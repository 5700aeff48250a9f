//! The feed-forward half of a block: a GELU MLP (BERT, GPT-2) or a SwiGLU one (Llama).

use super::ProjectionLayout;
use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::graph_builder::GraphBuilder;

/// Which GELU the checkpoint was trained with: the graph computes that one, not the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeluForm {
    /// `x · Φ(x)` through erf (PyTorch's default `gelu`).
    Erf,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    Tanh,
}

/// A family's MLP, with its projections' module names relative to a layer's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mlp {
    /// `down(gelu(up(x)))`.
    Gelu {
        up: &'static str,
        down: &'static str,
        form: GeluForm,
    },
    /// `down(silu(gate(x)) · up(x))`.
    SwiGlu {
        gate: &'static str,
        up: &'static str,
        down: &'static str,
    },
}

impl Mlp {
    /// The MLP on `x`, with the weights of layer `layer` (its prefix in the checkpoint).
    pub fn apply(
        self,
        g: &mut GraphBuilder,
        weights: &Checkpoint,
        x: &str,
        layer: &str,
        projections: ProjectionLayout,
    ) -> Result<String, ModelError> {
        let module = |name: &str| format!("{layer}.{name}");
        let (inner, down) = match self {
            Mlp::Gelu { up, down, form } => {
                let inner = projections.apply(g, weights, x, &module(up))?;
                (gelu(g, &inner, form)?, down)
            }
            Mlp::SwiGlu { gate, up, down } => {
                let gate = projections.apply(g, weights, x, &module(gate))?;
                let up = projections.apply(g, weights, x, &module(up))?;
                let sig = g.op("Sigmoid", &[&gate], vec![]);
                let silu = g.op("Mul", &[&gate, &sig], vec![]);
                (g.op("Mul", &[&silu, &up], vec![]), down)
            }
        };
        projections.apply(g, weights, &inner, &module(down))
    }
}

/// GELU spelled out in primitive ops, as PyTorch exports it: the `Gelu` op needs opset 20.
fn gelu(g: &mut GraphBuilder, x: &str, form: GeluForm) -> Result<String, ModelError> {
    let half = g.scalar("half", 0.5)?;
    let one = g.scalar("one", 1.0)?;
    let inner = match form {
        GeluForm::Tanh => {
            let cube = g.scalar("three", 3.0)?;
            let c = g.scalar("gelu_c", 0.044_715)?;
            let k = g.scalar("sqrt_2_over_pi", (2.0 / std::f32::consts::PI).sqrt())?;
            let x3 = g.op("Pow", &[x, &cube], vec![]);
            let cx3 = g.op("Mul", &[&x3, &c], vec![]);
            let sum = g.op("Add", &[x, &cx3], vec![]);
            let scaled = g.op("Mul", &[&sum, &k], vec![]);
            g.op("Tanh", &[&scaled], vec![])
        }
        GeluForm::Erf => {
            let inv_sqrt2 = g.scalar("inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2)?;
            let scaled = g.op("Mul", &[x, &inv_sqrt2], vec![]);
            g.op("Erf", &[&scaled], vec![])
        }
    };
    let plus_one = g.op("Add", &[&inner, &one], vec![]);
    let gated = g.op("Mul", &[x, &plus_one], vec![]);
    Ok(g.op("Mul", &[&gated, &half], vec![]))
}

//! Dense projections `x · W + b`, in the two weight layouts the families' checkpoints use.

use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::graph_builder::GraphBuilder;

/// How a family's checkpoint stores its projection weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectionLayout {
    /// PyTorch's Linear: `W` is [out, in]. `bias` says whether the family's projections have one.
    Linear { bias: bool },
    /// GPT-2's Conv1D: `W` is already [in, out], and there is always a bias.
    Conv1D,
}

impl ProjectionLayout {
    /// The projection through checkpoint module `module` (`{module}.weight`, `{module}.bias`).
    pub fn apply(
        self,
        g: &mut GraphBuilder,
        weights: &Checkpoint,
        x: &str,
        module: &str,
    ) -> Result<String, ModelError> {
        let weight = format!("{module}.weight");
        let bias = format!("{module}.bias");
        match self {
            ProjectionLayout::Linear { bias: has_bias } => {
                linear(g, weights, x, &weight, has_bias.then_some(bias.as_str()))
            }
            ProjectionLayout::Conv1D => {
                let w = g.float_weight(&weight, &weights.weight(&weight)?)?;
                project(g, weights, x, &w, Some(&bias))
            }
        }
    }
}

/// `x · W + b` where the checkpoint holds `W` as PyTorch's Linear does, [out, in]: the initializer is the
/// transpose, so the graph needs no Transpose node.
pub fn linear(
    g: &mut GraphBuilder,
    weights: &Checkpoint,
    x: &str,
    weight: &str,
    bias: Option<&str>,
) -> Result<String, ModelError> {
    let w = g.float_weight(weight, &weights.weight(weight)?.t()?.contiguous()?)?;
    project(g, weights, x, &w, bias)
}

/// `x · W + b` with `W` already [in, out] in the graph.
fn project(
    g: &mut GraphBuilder,
    weights: &Checkpoint,
    x: &str,
    w: &str,
    bias: Option<&str>,
) -> Result<String, ModelError> {
    let y = g.op("MatMul", &[x, w], vec![]);
    Ok(match bias {
        Some(bias) => {
            let b = g.float_weight(bias, &weights.weight(bias)?)?;
            g.op("Add", &[&y, &b], vec![])
        }
        None => y,
    })
}

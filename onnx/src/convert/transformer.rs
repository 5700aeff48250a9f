//! Graph pieces the transformer families share: linear layers, norms, heads, attention, masks.

use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::graph_builder::{GraphBuilder, attr_float, attr_int, attr_ints};

/// `x · W + b` where the checkpoint holds `W` as PyTorch's Linear does, [out, in]: the initializer is the
/// transpose, so the graph needs no Transpose node.
pub fn linear(
    g: &mut GraphBuilder,
    weights: &Checkpoint,
    x: &str,
    weight: &str,
    bias: Option<&str>,
) -> Result<String, ModelError> {
    let w = g.weight(weight, &weights.get(weight)?.t()?.contiguous()?)?;
    project(g, weights, x, &w, bias)
}

/// `x · W + b` with `W` already [in, out] in the graph (GPT-2's Conv1D layout, or a transposed Linear).
pub fn project(
    g: &mut GraphBuilder,
    weights: &Checkpoint,
    x: &str,
    w: &str,
    bias: Option<&str>,
) -> Result<String, ModelError> {
    let y = g.op("MatMul", &[x, w], vec![]);
    Ok(match bias {
        Some(bias) => {
            let b = g.weight(bias, weights.get(bias)?)?;
            g.op("Add", &[&y, &b], vec![])
        }
        None => y,
    })
}

pub fn layer_norm(
    g: &mut GraphBuilder,
    weights: &Checkpoint,
    x: &str,
    prefix: &str,
    (gamma, beta): (&str, &str),
    eps: f64,
) -> Result<String, ModelError> {
    let scale = g.weight(
        &format!("{prefix}.{gamma}"),
        weights.get(&format!("{prefix}.{gamma}"))?,
    )?;
    let bias = g.weight(
        &format!("{prefix}.{beta}"),
        weights.get(&format!("{prefix}.{beta}"))?,
    )?;
    Ok(g.op(
        "LayerNormalization",
        &[x, &scale, &bias],
        vec![attr_int("axis", -1), attr_float("epsilon", eps as f32)],
    ))
}

/// [b, s, heads·d] → [b, heads, s, d]
pub fn split_heads(
    g: &mut GraphBuilder,
    x: &str,
    heads: usize,
    head_dim: usize,
) -> Result<String, ModelError> {
    let shape = g.ints("heads_shape", &[0, 0, heads as i64, head_dim as i64])?;
    let y = g.op("Reshape", &[x, &shape], vec![]);
    Ok(g.op("Transpose", &[&y], vec![attr_ints("perm", &[0, 2, 1, 3])]))
}

/// [b, heads, s, d] → [b, s, heads·d]
pub fn merge_heads(g: &mut GraphBuilder, x: &str, hidden: usize) -> Result<String, ModelError> {
    let y = g.op("Transpose", &[x], vec![attr_ints("perm", &[0, 2, 1, 3])]);
    let shape = g.ints("merged_shape", &[0, 0, hidden as i64])?;
    Ok(g.op("Reshape", &[&y, &shape], vec![]))
}

/// softmax(q·kᵀ/√d + mask)·v on [b, heads, s, d] tensors; `mask` is additive and broadcasts.
pub fn attention(
    g: &mut GraphBuilder,
    (q, k, v): (&str, &str, &str),
    mask: &str,
    head_dim: usize,
) -> Result<String, ModelError> {
    let kt = g.op("Transpose", &[k], vec![attr_ints("perm", &[0, 1, 3, 2])]);
    let scores = g.op("MatMul", &[q, &kt], vec![]);
    let scale = g.scalar("attention_scale", 1.0 / (head_dim as f32).sqrt())?;
    let scaled = g.op("Mul", &[&scores, &scale], vec![]);
    let masked = g.op("Add", &[&scaled, mask], vec![]);
    let probs = g.op("Softmax", &[&masked], vec![attr_int("axis", -1)]);
    Ok(g.op("MatMul", &[&probs, v], vec![]))
}

/// The sequence length of `ids` ([b, s]) as a 1-element int64 tensor.
pub fn sequence_length(g: &mut GraphBuilder, ids: &str) -> String {
    g.op(
        "Shape",
        &[ids],
        vec![attr_int("start", 1), attr_int("end", 2)],
    )
}

/// Positions 0..s as int64, sliced from a constant of `max_positions`.
pub fn positions(
    g: &mut GraphBuilder,
    seq: &str,
    max_positions: usize,
) -> Result<String, ModelError> {
    let all: Vec<i64> = (0..max_positions as i64).collect();
    let table = g.ints("positions", &all)?;
    let zero = g.ints("zero", &[0])?;
    Ok(g.op("Slice", &[&table, &zero, seq], vec![]))
}

/// The first `seq` rows of a table such as learned position embeddings.
pub fn first_rows(g: &mut GraphBuilder, table: &str, seq: &str) -> Result<String, ModelError> {
    let zero = g.ints("zero", &[0])?;
    Ok(g.op("Slice", &[table, &zero, seq], vec![]))
}

/// An additive causal mask [s, s]: 0 where a position may attend, the most negative float where not.
pub fn causal_mask(g: &mut GraphBuilder, positions: &str) -> Result<String, ModelError> {
    let (one, zero) = (g.ints("axis", &[1])?, g.ints("axis", &[0])?);
    let rows = g.op("Unsqueeze", &[positions, &one], vec![]);
    let cols = g.op("Unsqueeze", &[positions, &zero], vec![]);
    let future = g.op("Greater", &[&cols, &rows], vec![]);
    let blocked = g.scalar("mask_min", f32::MIN)?;
    let open = g.scalar("mask_zero", 0.0)?;
    Ok(g.op("Where", &[&future, &blocked, &open], vec![]))
}

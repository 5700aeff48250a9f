//! The attention half of a block in pieces: head split and merge, scaled dot-product attention, the
//! additive masks, rotary position embeddings and the key/value head repeat of grouped-query attention.

use candle_core::{Device, Tensor};

use crate::ModelError;
use crate::graph_builder::{GraphBuilder, attr_int, attr_ints};
use crate::proto::tensor_proto::DataType;

/// Head counts and width of a family's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub query: usize,
    /// Fewer than `query` under grouped-query attention (Llama); equal otherwise.
    pub key_value: usize,
    pub dim: usize,
}

/// Which keys a query may attend to.
#[derive(Debug, Clone, Copy)]
pub enum Mask<'a> {
    /// Its own position and earlier ones (GPT-2, Llama); `positions` is 0..s as int64.
    Causal { positions: &'a str },
    /// Every key that is not padding (BERT); `attention_mask` is the [b, s] int64 input, 0 at padding.
    Padding { attention_mask: &'a str },
    /// A decoder step after `past` cached positions: query i (at position past + i) attends to keys
    /// 0..=past + i that `attention_mask` ([b, past + s] int64, 0 at padding) does not mask out.
    /// `positions` is a constant 0..max_positions int64 table to slice from.
    CausalAfterPast {
        input_ids: &'a str,
        attention_mask: &'a str,
        positions: &'a str,
    },
}

impl Mask<'_> {
    /// The mask as an additive float tensor that broadcasts over [b, heads, s, s] scores.
    pub fn build(self, g: &mut GraphBuilder) -> Result<String, ModelError> {
        match self {
            Mask::Causal { positions } => causal_mask(g, positions),
            Mask::Padding { attention_mask } => padding_mask(g, attention_mask),
            Mask::CausalAfterPast {
                input_ids,
                attention_mask,
                positions,
            } => causal_after_past_mask(g, input_ids, attention_mask, positions),
        }
    }
}

/// [b, 1, s, past + s]: the causal mask over the cached and new keys, and the padding mask.
fn causal_after_past_mask(
    g: &mut GraphBuilder,
    input_ids: &str,
    attention_mask: &str,
    positions: &str,
) -> Result<String, ModelError> {
    let seq = g.op(
        "Shape",
        &[input_ids],
        vec![attr_int("start", 1), attr_int("end", 2)],
    );
    let total = g.op(
        "Shape",
        &[attention_mask],
        vec![attr_int("start", 1), attr_int("end", 2)],
    );
    let past = g.op("Sub", &[&total, &seq], vec![]);
    let zero = g.ints("zero", &[0])?;
    let keys = g.op("Slice", &[positions, &zero, &total], vec![]);
    let queries = g.op("Slice", &[positions, &past, &total], vec![]);
    let (one, first) = (g.ints("axis", &[1])?, g.ints("axis", &[0])?);
    let rows = g.op("Unsqueeze", &[&queries, &one], vec![]);
    let cols = g.op("Unsqueeze", &[&keys, &first], vec![]);
    let future = g.op("Greater", &[&cols, &rows], vec![]);
    let zero_i = g.ints("mask_zero", &[0])?;
    let padding = g.op("Equal", &[attention_mask, &zero_i], vec![]);
    let axes = g.ints("mask_axes", &[1, 2])?;
    let padding = g.op("Unsqueeze", &[&padding, &axes], vec![]);
    let blocked = g.op("Or", &[&future, &padding], vec![]);
    let min = g.scalar("mask_min", f32::MIN)?;
    let open = g.scalar("mask_zero", 0.0)?;
    Ok(g.op("Where", &[&blocked, &min, &open], vec![]))
}

/// [s, s]: 0 where a position may attend, the most negative float where not.
fn causal_mask(g: &mut GraphBuilder, positions: &str) -> Result<String, ModelError> {
    let (one, zero) = (g.ints("axis", &[1])?, g.ints("axis", &[0])?);
    let rows = g.op("Unsqueeze", &[positions, &one], vec![]);
    let cols = g.op("Unsqueeze", &[positions, &zero], vec![]);
    let future = g.op("Greater", &[&cols, &rows], vec![]);
    let blocked = g.scalar("mask_min", f32::MIN)?;
    let open = g.scalar("mask_zero", 0.0)?;
    Ok(g.op("Where", &[&future, &blocked, &open], vec![]))
}

/// (1 - mask) · most-negative-float, as [b, 1, 1, s].
fn padding_mask(g: &mut GraphBuilder, attention_mask: &str) -> Result<String, ModelError> {
    let mask_f = g.op(
        "Cast",
        &[attention_mask],
        vec![attr_int("to", DataType::Float as i64)],
    );
    let one = g.scalar("one", 1.0)?;
    let inverted = g.op("Sub", &[&one, &mask_f], vec![]);
    let min = g.scalar("mask_min", f32::MIN)?;
    let additive = g.op("Mul", &[&inverted, &min], vec![]);
    let axes = g.ints("mask_axes", &[1, 2])?;
    Ok(g.op("Unsqueeze", &[&additive, &axes], vec![]))
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
pub fn scaled_dot_product(
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

/// Rotary position embeddings (Llama), in Hugging Face's rotate-half layout.
#[derive(Debug, Clone, Copy)]
pub struct Rotary<'a> {
    /// 0..s as int64 ([s]), or the `position_ids` input ([b, s]) of a graph with a cache.
    pub positions: &'a str,
    pub theta: f64,
    /// Whether `positions` is per sequence ([b, s]).
    pub per_sequence: bool,
}

/// The cos and sin of every position's rotation angles, [s, head_dim].
#[derive(Debug, Clone)]
pub struct RotaryTables {
    cos: String,
    sin: String,
}

impl RotaryTables {
    /// Computed in the graph from the positions: a table for every position a long-context model allows
    /// would be far larger than the model.
    pub fn build(
        g: &mut GraphBuilder,
        rotary: Rotary<'_>,
        head_dim: usize,
    ) -> Result<Self, ModelError> {
        let inv_freq: Vec<f32> = (0..head_dim / 2)
            .map(|i| (1.0 / rotary.theta.powf(2.0 * i as f64 / head_dim as f64)) as f32)
            .collect();
        let inv_freq = g.weight(
            "rope_inv_freq",
            &Tensor::from_vec(inv_freq, (1, head_dim / 2), &Device::Cpu)?,
        )?;
        let pos_f = g.op(
            "Cast",
            &[rotary.positions],
            vec![attr_int("to", DataType::Float as i64)],
        );
        let column = g.ints("axis", &[if rotary.per_sequence { 2 } else { 1 }])?;
        let pos_col = g.op("Unsqueeze", &[&pos_f, &column], vec![]);
        let freqs = g.op("Mul", &[&pos_col, &inv_freq], vec![]);
        let angles = g.op("Concat", &[&freqs, &freqs], vec![attr_int("axis", -1)]);
        let cos = g.op("Cos", &[&angles], vec![]);
        let sin = g.op("Sin", &[&angles], vec![]);
        if !rotary.per_sequence {
            return Ok(Self { cos, sin });
        }
        // [b, s, d] → [b, 1, s, d], to broadcast over the heads.
        let heads = g.ints("axis", &[1])?;
        let cos = g.op("Unsqueeze", &[&cos, &heads], vec![]);
        let sin = g.op("Unsqueeze", &[&sin, &heads], vec![]);
        Ok(Self { cos, sin })
    }

    /// x·cos + rotate_half(x)·sin on [b, heads, s, d], where rotate_half(x) = [-x₂, x₁] over the last
    /// dim's halves.
    pub fn rotate(
        &self,
        g: &mut GraphBuilder,
        x: &str,
        head_dim: usize,
    ) -> Result<String, ModelError> {
        let half = (head_dim / 2) as i64;
        let (zero, mid, end, last) = (
            g.ints("rope", &[0])?,
            g.ints("rope", &[half])?,
            g.ints("rope", &[head_dim as i64])?,
            g.ints("rope_axis", &[-1])?,
        );
        let x1 = g.op("Slice", &[x, &zero, &mid, &last], vec![]);
        let x2 = g.op("Slice", &[x, &mid, &end, &last], vec![]);
        let neg = g.op("Neg", &[&x2], vec![]);
        let rotated = g.op("Concat", &[&neg, &x1], vec![attr_int("axis", -1)]);
        let a = g.op("Mul", &[x, &self.cos], vec![]);
        let b = g.op("Mul", &[&rotated, &self.sin], vec![]);
        Ok(g.op("Add", &[&a, &b], vec![]))
    }
}

/// [b, kv, s, d] → [b, query heads, s, d], each key/value head repeated for its group of query heads.
pub fn repeat_kv(g: &mut GraphBuilder, x: &str, heads: Heads) -> Result<String, ModelError> {
    let groups = heads.query / heads.key_value;
    if groups == 1 {
        return Ok(x.to_owned());
    }
    let axis = g.ints("kv_axis", &[2])?;
    let x = g.op("Unsqueeze", &[x, &axis], vec![]);
    let shape = g.ints("kv_expand", &[1, 1, groups as i64, 1, 1])?;
    let x = g.op("Expand", &[&x, &shape], vec![]);
    let merged = g.ints("kv_shape", &[0, heads.query as i64, -1, heads.dim as i64])?;
    Ok(g.op("Reshape", &[&x, &merged], vec![]))
}

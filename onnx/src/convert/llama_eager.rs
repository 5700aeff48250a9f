//! Llama as Hugging Face's `LlamaForCausalLM` computes it, eagerly on candle, reading one weight at a
//! time from the checkpoint: the reference a checkpoint larger than memory is proven against, layer by
//! layer. It shares no code with the graph builder (the principle in docs/formats.md), and the tests
//! hold it to candle-transformers' Llama on models small enough for that.

use candle_core::{D, DType, Device, Tensor};

use super::llama::Dims;
use crate::ModelError;
use crate::checkpoint::Checkpoint;

/// [s, s]: 0 where a position may attend, minus infinity after it (for the eager references).
pub(super) fn causal_mask(s: usize) -> Result<Tensor, ModelError> {
    let mask: Vec<f32> = (0..s * s)
        .map(|i| {
            if i % s > i / s {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Ok(Tensor::from_vec(mask, (s, s), &Device::Cpu)?)
}

/// The hidden states after every decoder layer ([b, s, hidden] each) and the logits ([b, s, vocab]).
pub struct EagerRun {
    pub hidden: Vec<Tensor>,
    pub logits: Tensor,
}

fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor, ModelError> {
    let variance = x.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = x.broadcast_div(&(variance + eps)?.sqrt()?)?;
    Ok(normed.broadcast_mul(weight)?)
}

/// `x · Wᵀ` for a PyTorch Linear weight [out, in], on [b, s, in].
fn linear(x: &Tensor, weights: &Checkpoint, name: &str) -> Result<Tensor, ModelError> {
    let (b, s, inner) = x.dims3()?;
    let w = weights.get(name)?;
    let y = x.reshape((b * s, inner))?.matmul(&w.t()?)?;
    Ok(y.reshape((b, s, ()))?)
}

/// cos and sin of the rotary angles for positions 0..s, [s, head_dim], as Hugging Face computes them.
fn rotary_tables(s: usize, d: &Dims) -> Result<(Tensor, Tensor), ModelError> {
    let half = d.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / (d.theta as f32).powf((2 * i) as f32 / d.head_dim as f32))
        .collect();
    let inv_freq = Tensor::from_vec(inv_freq, (1, half), &Device::Cpu)?;
    let positions = Tensor::arange(0u32, s as u32, &Device::Cpu)?
        .to_dtype(DType::F32)?
        .reshape((s, 1))?;
    let freqs = positions.broadcast_mul(&inv_freq)?;
    let angles = Tensor::cat(&[&freqs, &freqs], D::Minus1)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// q·cos + rotate_half(q)·sin on [b, heads, s, head_dim].
fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor, ModelError> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    Ok((x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?)?)
}

fn attention(
    h: &Tensor,
    weights: &Checkpoint,
    layer: &str,
    d: &Dims,
    (cos, sin, mask): (&Tensor, &Tensor, &Tensor),
) -> Result<Tensor, ModelError> {
    let (b, s, _) = h.dims3()?;
    let heads = |t: Tensor, n: usize| -> Result<Tensor, ModelError> {
        Ok(t.reshape((b, s, n, d.head_dim))?
            .transpose(1, 2)?
            .contiguous()?)
    };
    let q = heads(
        linear(h, weights, &format!("{layer}.self_attn.q_proj.weight"))?,
        d.heads,
    )?;
    let k = heads(
        linear(h, weights, &format!("{layer}.self_attn.k_proj.weight"))?,
        d.kv_heads,
    )?;
    let v = heads(
        linear(h, weights, &format!("{layer}.self_attn.v_proj.weight"))?,
        d.kv_heads,
    )?;
    let (q, k) = (rotate(&q, cos, sin)?, rotate(&k, cos, sin)?);
    let groups = d.heads / d.kv_heads;
    let repeat = |t: Tensor| -> Result<Tensor, ModelError> {
        Ok(t.unsqueeze(2)?
            .expand((b, d.kv_heads, groups, s, d.head_dim))?
            .reshape((b, d.heads, s, d.head_dim))?)
    };
    let (k, v) = (repeat(k)?, repeat(v)?);
    let scores = (q.matmul(&k.t()?)? / (d.head_dim as f64).sqrt())?.broadcast_add(mask)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    let context = probs
        .matmul(&v)?
        .transpose(1, 2)?
        .reshape((b, s, d.heads * d.head_dim))?;
    linear(
        &context,
        weights,
        &format!("{layer}.self_attn.o_proj.weight"),
    )
}

fn mlp(h: &Tensor, weights: &Checkpoint, layer: &str) -> Result<Tensor, ModelError> {
    let gate = linear(h, weights, &format!("{layer}.mlp.gate_proj.weight"))?;
    let up = linear(h, weights, &format!("{layer}.mlp.up_proj.weight"))?;
    let inner = (candle_nn::ops::silu(&gate)? * up)?;
    linear(&inner, weights, &format!("{layer}.mlp.down_proj.weight"))
}

/// The forward pass on token ids [b, s], for the Llama that `config` (config.json) describes.
pub fn forward(
    config: &serde_json::Value,
    weights: &Checkpoint,
    ids: &Tensor,
) -> Result<EagerRun, ModelError> {
    let d = &super::llama::dims(config, weights)?;
    let (b, s) = ids.dims2()?;
    let embeddings = weights.get("model.embed_tokens.weight")?;
    let mut x = embeddings
        .index_select(&ids.flatten_all()?, 0)?
        .reshape((b, s, ()))?;
    drop(embeddings);
    let (cos, sin) = rotary_tables(s, d)?;
    let mask = causal_mask(s)?;
    let mut hidden = Vec::with_capacity(d.layers);
    for layer in 0..d.layers {
        let l = format!("model.layers.{layer}");
        let norm = weights.get(&format!("{l}.input_layernorm.weight"))?;
        let h = rms_norm(&x, &norm, d.eps)?;
        x = (&x + attention(&h, weights, &l, d, (&cos, &sin, &mask))?)?;
        let norm = weights.get(&format!("{l}.post_attention_layernorm.weight"))?;
        let h = rms_norm(&x, &norm, d.eps)?;
        x = (&x + mlp(&h, weights, &l)?)?;
        hidden.push(x.clone());
    }
    let x = rms_norm(&x, &weights.get("model.norm.weight")?, d.eps)?;
    let head = if d.tied {
        "model.embed_tokens.weight"
    } else {
        "lm_head.weight"
    };
    let logits = linear(&x, weights, head)?;
    Ok(EagerRun { hidden, logits })
}

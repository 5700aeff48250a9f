//! Llama → ONNX: `input_ids` ([batch, sequence], int64) to `logits` ([batch, sequence, vocab]): RMSNorm,
//! rotary position embeddings (Hugging Face's rotate-half layout), grouped-query attention, SwiGLU.
//! Checked against candle-transformers' Llama, which returns the logits of the last position.

use std::collections::HashMap;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama::{Cache, Llama, LlamaConfig};

use super::hf_config::{check_heads, f64_of, usize_of};
use super::transformer::{
    attention, causal_mask, linear, merge_heads, positions, sequence_length, split_heads,
};
use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::eval::Session;
use crate::graph_builder::{DimSpec, GraphBuilder, attr_int, attr_ints};
use crate::proto::{ModelProto, tensor_proto::DataType};
use crate::validate::{FP32_REL_L2_TOLERANCE, Validation, compare, judge};

const OPSET: i64 = 17;

struct Dims {
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    layers: usize,
    positions: usize,
    vocab: usize,
    eps: f64,
    theta: f64,
    tied: bool,
}

fn dims(config: &serde_json::Value, weights: &Checkpoint) -> Result<Dims, ModelError> {
    let hidden = usize_of(config, &["hidden_size"])?;
    let heads = usize_of(config, &["num_attention_heads"])?;
    let kv_heads = usize_of(config, &["num_key_value_heads"]).unwrap_or(heads);
    let head_dim = check_heads(hidden, heads)?;
    if kv_heads == 0 || heads % kv_heads != 0 {
        return Err(ModelError::Conversion(format!(
            "{heads} attention heads do not group into {kv_heads} key/value heads"
        )));
    }
    if config
        .get("head_dim")
        .and_then(|v| v.as_u64())
        .is_some_and(|h| h as usize != head_dim)
    {
        return Err(ModelError::Conversion(
            "a head_dim other than hidden_size / num_attention_heads is not supported".to_owned(),
        ));
    }
    if config.get("rope_scaling").is_some_and(|v| !v.is_null()) {
        return Err(ModelError::Conversion(
            "rope_scaling is not supported yet".to_owned(),
        ));
    }
    if config.get("attention_bias").and_then(|v| v.as_bool()) == Some(true) {
        return Err(ModelError::Conversion(
            "attention_bias is not supported yet".to_owned(),
        ));
    }
    Ok(Dims {
        hidden,
        heads,
        kv_heads,
        head_dim,
        layers: usize_of(config, &["num_hidden_layers"])?,
        positions: usize_of(config, &["max_position_embeddings"])?,
        vocab: usize_of(config, &["vocab_size"])?,
        eps: f64_of(config, &["rms_norm_eps"], Some(1e-6))?,
        theta: f64_of(config, &["rope_theta"], Some(10_000.0))?,
        tied: !weights.contains("lm_head.weight"),
    })
}

fn rms_norm(
    g: &mut GraphBuilder,
    weights: &Checkpoint,
    x: &str,
    weight: &str,
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
    let w = g.weight(weight, weights.get(weight)?)?;
    Ok(g.op("Mul", &[&normed, &w], vec![]))
}

/// x·cos + rotate_half(x)·sin, where rotate_half(x) = [-x₂, x₁] over the last dim's halves.
fn rotary(
    g: &mut GraphBuilder,
    x: &str,
    (cos, sin): (&str, &str),
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
    let a = g.op("Mul", &[x, cos], vec![]);
    let b = g.op("Mul", &[&rotated, sin], vec![]);
    Ok(g.op("Add", &[&a, &b], vec![]))
}

/// [b, kv, s, d] → [b, kv·groups, s, d], each key/value head repeated for its group of query heads.
fn repeat_kv(g: &mut GraphBuilder, x: &str, d: &Dims) -> Result<String, ModelError> {
    let groups = d.heads / d.kv_heads;
    if groups == 1 {
        return Ok(x.to_owned());
    }
    let axis = g.ints("kv_axis", &[2])?;
    let x = g.op("Unsqueeze", &[x, &axis], vec![]);
    let shape = g.ints("kv_expand", &[1, 1, groups as i64, 1, 1])?;
    let x = g.op("Expand", &[&x, &shape], vec![]);
    let merged = g.ints("kv_shape", &[0, d.heads as i64, -1, d.head_dim as i64])?;
    Ok(g.op("Reshape", &[&x, &merged], vec![]))
}

pub fn build(config: &serde_json::Value, weights: &Checkpoint) -> Result<ModelProto, ModelError> {
    let d = dims(config, weights)?;
    let mut g = GraphBuilder::new();
    let ids = g.input(
        "input_ids",
        DataType::Int64,
        &[DimSpec::Named("batch"), DimSpec::Named("sequence")],
    );
    let table = g.weight(
        "model.embed_tokens.weight",
        weights.get("model.embed_tokens.weight")?,
    )?;
    let mut x = g.op("Gather", &[&table, &ids], vec![attr_int("axis", 0)]);
    let seq = sequence_length(&mut g, &ids);
    let pos = positions(&mut g, &seq, d.positions)?;
    let mask = causal_mask(&mut g, &pos)?;
    // cos/sin [s, head_dim] from the positions, computed in the graph: a table for every position a
    // long-context model allows would be far larger than the model.
    let inv_freq: Vec<f32> = (0..d.head_dim / 2)
        .map(|i| (1.0 / d.theta.powf(2.0 * i as f64 / d.head_dim as f64)) as f32)
        .collect();
    let inv_freq = g.weight(
        "rope_inv_freq",
        &Tensor::from_vec(inv_freq, (1, d.head_dim / 2), &Device::Cpu)?,
    )?;
    let pos_f = g.op(
        "Cast",
        &[&pos],
        vec![attr_int("to", DataType::Float as i64)],
    );
    let column = g.ints("axis", &[1])?;
    let pos_col = g.op("Unsqueeze", &[&pos_f, &column], vec![]);
    let freqs = g.op("Mul", &[&pos_col, &inv_freq], vec![]);
    let angles = g.op("Concat", &[&freqs, &freqs], vec![attr_int("axis", -1)]);
    let cos = g.op("Cos", &[&angles], vec![]);
    let sin = g.op("Sin", &[&angles], vec![]);
    for layer in 0..d.layers {
        let l = format!("model.layers.{layer}");
        let h = rms_norm(
            &mut g,
            weights,
            &x,
            &format!("{l}.input_layernorm.weight"),
            d.eps,
        )?;
        let q = linear(
            &mut g,
            weights,
            &h,
            &format!("{l}.self_attn.q_proj.weight"),
            None,
        )?;
        let k = linear(
            &mut g,
            weights,
            &h,
            &format!("{l}.self_attn.k_proj.weight"),
            None,
        )?;
        let v = linear(
            &mut g,
            weights,
            &h,
            &format!("{l}.self_attn.v_proj.weight"),
            None,
        )?;
        let q = split_heads(&mut g, &q, d.heads, d.head_dim)?;
        let k = split_heads(&mut g, &k, d.kv_heads, d.head_dim)?;
        let v = split_heads(&mut g, &v, d.kv_heads, d.head_dim)?;
        let q = rotary(&mut g, &q, (&cos, &sin), d.head_dim)?;
        let k = rotary(&mut g, &k, (&cos, &sin), d.head_dim)?;
        let k = repeat_kv(&mut g, &k, &d)?;
        let v = repeat_kv(&mut g, &v, &d)?;
        let context = attention(&mut g, (&q, &k, &v), &mask, d.head_dim)?;
        let context = merge_heads(&mut g, &context, d.hidden)?;
        let out = linear(
            &mut g,
            weights,
            &context,
            &format!("{l}.self_attn.o_proj.weight"),
            None,
        )?;
        x = g.op("Add", &[&x, &out], vec![]);
        let h = rms_norm(
            &mut g,
            weights,
            &x,
            &format!("{l}.post_attention_layernorm.weight"),
            d.eps,
        )?;
        let gate = linear(
            &mut g,
            weights,
            &h,
            &format!("{l}.mlp.gate_proj.weight"),
            None,
        )?;
        let up = linear(
            &mut g,
            weights,
            &h,
            &format!("{l}.mlp.up_proj.weight"),
            None,
        )?;
        let sig = g.op("Sigmoid", &[&gate], vec![]);
        let silu = g.op("Mul", &[&gate, &sig], vec![]);
        let inner = g.op("Mul", &[&silu, &up], vec![]);
        let out = linear(
            &mut g,
            weights,
            &inner,
            &format!("{l}.mlp.down_proj.weight"),
            None,
        )?;
        x = g.op("Add", &[&x, &out], vec![]);
    }
    let x = rms_norm(&mut g, weights, &x, "model.norm.weight", d.eps)?;
    if d.tied {
        let head = g.op("Transpose", &[&table], vec![attr_ints("perm", &[1, 0])]);
        g.op_into("MatMul", &[&x, &head], vec![], "logits");
    } else {
        let logits = linear(&mut g, weights, &x, "lm_head.weight", None)?;
        g.op_into("Identity", &[&logits], vec![], "logits");
    }
    g.output(
        "logits",
        DataType::Float,
        &[
            DimSpec::Named("batch"),
            DimSpec::Named("sequence"),
            DimSpec::Fixed(d.vocab as i64),
        ],
    );
    Ok(g.finish("llama", OPSET, vec![super::producer()]))
}

/// candle-transformers' Llama: logits of the last position, [b, vocab].
pub fn reference(
    config: &serde_json::Value,
    weights: &Checkpoint,
    ids: &Tensor,
) -> Result<Tensor, ModelError> {
    let d = dims(config, weights)?;
    let mut config = config.clone();
    if let Some(object) = config.as_object_mut() {
        object.insert("tie_word_embeddings".to_owned(), d.tied.into());
    }
    let parsed: LlamaConfig = serde_json::from_value(config)
        .map_err(|e| ModelError::Conversion(format!("config.json for the Llama reference: {e}")))?;
    let parsed = parsed.into_config(false);
    let vb = VarBuilder::from_tensors(weights.tensors().clone(), DType::F32, &Device::Cpu);
    let model = Llama::load(vb, &parsed)?;
    let mut cache = Cache::new(false, DType::F32, &parsed, &Device::Cpu)?;
    Ok(model.forward(ids, 0, &mut cache)?)
}

pub fn convert(
    config: &serde_json::Value,
    weights: &Checkpoint,
) -> Result<(ModelProto, Validation), ModelError> {
    let d = dims(config, weights)?;
    let model = build(config, weights)?;
    let ids: Vec<i64> = (0..12).map(|i| ((i * 7919 + 3) % d.vocab) as i64).collect();
    let ids = Tensor::from_vec(ids, (2, 6), &Device::Cpu)?;
    let inputs = HashMap::from([("input_ids".to_owned(), ids.clone())]);
    let outputs = Session::new(&model, None, &Device::Cpu)?.run(&inputs)?;
    let seq = ids.dim(D::Minus1)?;
    let last = outputs[0].1.narrow(1, seq - 1, 1)?.squeeze(1)?;
    let expected = reference(config, weights, &ids)?;
    let validation = judge(
        "kiln evaluator (CPU, fp32)",
        "candle-transformers Llama",
        "2 sequences of 6 token ids; logits at the last position (what the reference returns)",
        vec![compare("logits[:, -1]", &last, &expected)?],
        FP32_REL_L2_TOLERANCE,
    )?;
    Ok((model, validation))
}

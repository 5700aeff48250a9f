//! Llama → ONNX: `input_ids` ([batch, sequence], int64) to `logits` ([batch, sequence, vocab]): RMSNorm,
//! rotary position embeddings (Hugging Face's rotate-half layout), grouped-query attention, SwiGLU.
//! Checked against candle-transformers' Llama, which returns the logits of the last position.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_transformers::models::llama::{Cache, Llama, LlamaConfig};

use super::hf_config::{check_heads, f64_of, usize_of};
use super::llama_eager;
use super::transformer::{
    Block, BlockSpec, Heads, LmHead, Mask, Mlp, Norm, NormPlacement, ProjectionLayout, Qkv, Rotary,
    lm_logits, positions, sequence_length,
};
use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::eval::streaming;
use crate::graph_builder::{DimSpec, GraphBuilder, attr_int};
use crate::proto::{ModelProto, tensor_proto::DataType};
use crate::validate::{FP32_REL_L2_TOLERANCE, Validation, compare, judge};

const OPSET: i64 = 17;

pub(super) struct Dims {
    pub(super) heads: usize,
    pub(super) kv_heads: usize,
    pub(super) head_dim: usize,
    pub(super) layers: usize,
    positions: usize,
    vocab: usize,
    pub(super) eps: f64,
    pub(super) theta: f64,
    pub(super) tied: bool,
}

pub(super) fn dims(config: &serde_json::Value, weights: &Checkpoint) -> Result<Dims, ModelError> {
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

/// A pre-norm decoder block: RMSNorm, bias-free Linear projections, rotary embeddings on the queries and
/// keys, grouped-query attention, SwiGLU.
fn block_spec(d: &Dims) -> BlockSpec {
    BlockSpec {
        heads: Heads {
            query: d.heads,
            key_value: d.kv_heads,
            dim: d.head_dim,
        },
        norm: Norm::Rms { eps: d.eps },
        placement: NormPlacement::Pre,
        projections: ProjectionLayout::Linear { bias: false },
        attention_norm: "input_layernorm",
        qkv: Qkv::Separate {
            query: "self_attn.q_proj",
            key: "self_attn.k_proj",
            value: "self_attn.v_proj",
        },
        attention_output: "self_attn.o_proj",
        mlp_norm: "post_attention_layernorm",
        mlp: Mlp::SwiGlu {
            gate: "mlp.gate_proj",
            up: "mlp.up_proj",
            down: "mlp.down_proj",
        },
    }
}

/// The graph, its weights in memory.
pub fn build(config: &serde_json::Value, weights: &Checkpoint) -> Result<ModelProto, ModelError> {
    build_into(config, weights, GraphBuilder::new())
}

/// The graph, built in `g` (which may write the weights to an external-data file as they come).
pub fn build_into(
    config: &serde_json::Value,
    weights: &Checkpoint,
    g: GraphBuilder,
) -> Result<ModelProto, ModelError> {
    Ok(build_graph(config, weights, g)?.0)
}

/// The graph and the names of its hidden states after each decoder layer.
fn build_graph(
    config: &serde_json::Value,
    weights: &Checkpoint,
    mut g: GraphBuilder,
) -> Result<(ModelProto, Vec<String>), ModelError> {
    let d = dims(config, weights)?;
    let ids = g.input(
        "input_ids",
        DataType::Int64,
        &[DimSpec::Named("batch"), DimSpec::Named("sequence")],
    );
    let table = g.float_weight(
        "model.embed_tokens.weight",
        &weights.weight("model.embed_tokens.weight")?,
    )?;
    let mut x = g.op("Gather", &[&table, &ids], vec![attr_int("axis", 0)]);
    let seq = sequence_length(&mut g, &ids);
    let pos = positions(&mut g, &seq, d.positions)?;
    let mask = Mask::Causal { positions: &pos };
    let rotary = Rotary {
        positions: &pos,
        theta: d.theta,
    };
    let block = Block::new(&mut g, block_spec(&d), mask, Some(rotary))?;
    let mut hidden = Vec::with_capacity(d.layers);
    for layer in 0..d.layers {
        x = block.layer(&mut g, weights, &x, &format!("model.layers.{layer}"))?;
        hidden.push(x.clone());
    }
    let x = Norm::Rms { eps: d.eps }.apply(&mut g, weights, &x, "model.norm")?;
    let head = if d.tied {
        LmHead::Tied { embeddings: &table }
    } else {
        LmHead::Linear {
            weight: "lm_head.weight",
        }
    };
    lm_logits(&mut g, weights, &x, head, d.vocab)?;
    Ok((g.finish("llama", OPSET, vec![super::producer()]), hidden))
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
    let vb = weights.var_builder();
    let model = Llama::load(vb, &parsed)?;
    let mut cache = Cache::new(false, DType::F32, &parsed, &Device::Cpu)?;
    Ok(model.forward(ids, 0, &mut cache)?)
}

/// Checkpoints up to this many stored bytes are also checked against candle-transformers' Llama, which
/// holds the whole model in fp32; larger ones are checked against the eager reference alone.
pub const WHOLE_MODEL_REFERENCE_BYTES: u64 = 512 * 1024 * 1024;

/// Builds the graph in `g` and validates it; `base_dir` is where its external data is, if any. The graph
/// runs streamed (each weight read when needed) and is compared with the eager reference layer by
/// layer, so proving a model takes memory for a layer's weights, not the model's.
pub fn convert(
    config: &serde_json::Value,
    weights: &Checkpoint,
    g: GraphBuilder,
    base_dir: Option<&Path>,
) -> Result<(ModelProto, Validation), ModelError> {
    let d = dims(config, weights)?;
    let (model, hidden) = build_graph(config, weights, g)?;
    let ids: Vec<i64> = (0..12).map(|i| ((i * 7919 + 3) % d.vocab) as i64).collect();
    let ids = Tensor::from_vec(ids, (2, 6), &Device::Cpu)?;
    let inputs = HashMap::from([("input_ids".to_owned(), ids.clone())]);
    let outputs = streaming::run(&model, base_dir, &inputs, &hidden)?;
    let eager = llama_eager::forward(config, weights, &ids)?;
    let mut comparisons = Vec::with_capacity(d.layers + 2);
    for (layer, (name, expected)) in hidden.iter().zip(&eager.hidden).enumerate() {
        let label = format!("model.layers.{layer} hidden state");
        comparisons.push(compare(&label, &outputs[name], expected)?);
    }
    comparisons.push(compare("logits", &outputs["logits"], &eager.logits)?);
    let mut reference =
        "kiln's eager Llama on candle, one weight at a time (hidden states after every \
        layer, logits at every position)"
            .to_owned();
    if weights.stored_bytes() <= WHOLE_MODEL_REFERENCE_BYTES {
        let seq = ids.dim(D::Minus1)?;
        let last = outputs["logits"].narrow(1, seq - 1, 1)?.squeeze(1)?;
        let expected = self::reference(config, weights, &ids)?;
        comparisons.push(compare(
            "logits[:, -1] (candle-transformers)",
            &last,
            &expected,
        )?);
        reference.push_str(", and candle-transformers Llama (logits at the last position)");
    }
    let validation = judge(
        "kiln evaluator (CPU, fp32, streamed)",
        &reference,
        "2 sequences of 6 token ids",
        comparisons,
        FP32_REL_L2_TOLERANCE,
    )?;
    Ok((model, validation))
}

//! Llama → ONNX: RMSNorm, rotary position embeddings (Hugging Face's rotate-half layout), grouped-query
//! attention, SwiGLU. The converted model carries a key/value cache ([`super::decoder`]'s layout); the
//! graph without one (`input_ids` [batch, sequence] to `logits`) is built for tests and comparisons.
//! Proven against an eager reference layer by layer and, for checkpoints that fit, candle-transformers'
//! Llama with its own cache.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::llama::{Cache, Llama, LlamaConfig};

use super::decoder::{self, CacheLayout};
use super::hf_config::{check_heads, f64_of, usize_of};
use super::llama_eager;
use super::transformer::{
    Block, BlockSpec, Heads, LmHead, Mask, Mlp, Norm, NormPlacement, ProjectionLayout, Qkv, Rotary,
    lm_logits, position_table, sequence_length,
};
use crate::ModelError;
use crate::checkpoint::Checkpoint;
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

/// The graph without a cache (every call sees the whole sequence), its weights in memory.
pub fn build(config: &serde_json::Value, weights: &Checkpoint) -> Result<ModelProto, ModelError> {
    Ok(build_graph(config, weights, GraphBuilder::new(), false)?.0)
}

/// The graph with a key/value cache ([`super::decoder`]'s layout), built in `g` (which may write the
/// weights to an external-data file as they come).
pub fn build_cached_into(
    config: &serde_json::Value,
    weights: &Checkpoint,
    g: GraphBuilder,
) -> Result<ModelProto, ModelError> {
    Ok(build_graph(config, weights, g, true)?.0)
}

fn cache_layout(d: &Dims) -> CacheLayout {
    CacheLayout {
        layers: d.layers,
        kv_heads: d.kv_heads,
        head_dim: d.head_dim,
    }
}

/// The graph and the names of its hidden states after each decoder layer.
fn build_graph(
    config: &serde_json::Value,
    weights: &Checkpoint,
    mut g: GraphBuilder,
    cached: bool,
) -> Result<(ModelProto, Vec<String>), ModelError> {
    let d = dims(config, weights)?;
    let names = if cached {
        [decoder::BATCH, decoder::SEQUENCE]
    } else {
        ["batch", "sequence"]
    };
    let ids = g.input(
        "input_ids",
        DataType::Int64,
        &[DimSpec::Named(names[0]), DimSpec::Named(names[1])],
    );
    let cache = cached.then(|| decoder::declare_inputs(&mut g, cache_layout(&d)));
    let table = g.float_weight(
        "model.embed_tokens.weight",
        &weights.weight("model.embed_tokens.weight")?,
    )?;
    let mut x = g.op("Gather", &[&table, &ids], vec![attr_int("axis", 0)]);
    let all_positions = position_table(&mut g, d.positions)?;
    let pos = match &cache {
        Some(cache) => cache.position_ids.clone(),
        None => {
            let seq = sequence_length(&mut g, &ids);
            let zero = g.ints("zero", &[0])?;
            g.op("Slice", &[&all_positions, &zero, &seq], vec![])
        }
    };
    let mask = match &cache {
        Some(cache) => Mask::CausalAfterPast {
            input_ids: &ids,
            attention_mask: &cache.attention_mask,
            positions: &all_positions,
        },
        None => Mask::Causal { positions: &pos },
    };
    let rotary = Rotary {
        positions: &pos,
        theta: d.theta,
        per_sequence: cached,
    };
    let block = Block::new(&mut g, block_spec(&d), mask, Some(rotary))?;
    let mut hidden = Vec::with_capacity(d.layers);
    for layer in 0..d.layers {
        let layer_cache = cache.as_ref().map(|c| &c.layers[layer]);
        x = block.layer(
            &mut g,
            weights,
            &x,
            &format!("model.layers.{layer}"),
            layer_cache,
        )?;
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
    lm_logits(&mut g, weights, &x, head, (d.vocab, names))?;
    if let Some(cache) = &cache {
        decoder::declare_outputs(&mut g, cache, cache_layout(&d));
    }
    Ok((
        g.finish(
            "llama",
            OPSET,
            vec![super::producer(), super::max_sequence(d.positions)],
        ),
        hidden,
    ))
}

/// candle-transformers' Llama decoding with its cache: the prompt, then each of `tokens` ([b, n]) in
/// turn; the last-position logits of each of the n + 1 runs, [b, vocab] each.
pub fn reference_decoding(
    config: &serde_json::Value,
    weights: &Checkpoint,
    prompt: &Tensor,
    tokens: &Tensor,
) -> Result<Vec<Tensor>, ModelError> {
    let (model, parsed) = candle_llama(config, weights)?;
    let mut cache = Cache::new(true, DType::F32, &parsed, &Device::Cpu)?;
    let mut logits = vec![model.forward(prompt, 0, &mut cache)?];
    let s = prompt.dim(1)?;
    for step in 0..tokens.dim(1)? {
        logits.push(model.forward(&tokens.narrow(1, step, 1)?, s + step, &mut cache)?);
    }
    Ok(logits)
}

fn candle_llama(
    config: &serde_json::Value,
    weights: &Checkpoint,
) -> Result<(Llama, candle_transformers::models::llama::Config), ModelError> {
    let d = dims(config, weights)?;
    let mut config = config.clone();
    if let Some(object) = config.as_object_mut() {
        object.insert("tie_word_embeddings".to_owned(), d.tied.into());
    }
    let parsed: LlamaConfig = serde_json::from_value(config)
        .map_err(|e| ModelError::Conversion(format!("config.json for the Llama reference: {e}")))?;
    let parsed = parsed.into_config(false);
    Ok((Llama::load(weights.var_builder(), &parsed)?, parsed))
}

/// candle-transformers' Llama: logits of the last position, [b, vocab].
pub fn reference(
    config: &serde_json::Value,
    weights: &Checkpoint,
    ids: &Tensor,
) -> Result<Tensor, ModelError> {
    let (model, parsed) = candle_llama(config, weights)?;
    let mut cache = Cache::new(false, DType::F32, &parsed, &Device::Cpu)?;
    Ok(model.forward(ids, 0, &mut cache)?)
}

/// Checkpoints up to this many stored bytes are also checked against candle-transformers' Llama, which
/// holds the whole model in fp32; larger ones are checked against the eager reference alone.
pub const WHOLE_MODEL_REFERENCE_BYTES: u64 = 512 * 1024 * 1024;

/// Builds the cached graph in `g` and proves it; `base_dir` is where its external data is, if any. The
/// graph runs streamed (each weight read when a node needs it) on a prompt with an empty cache and then
/// on the next token with the cache that run returned; the eager reference runs on the prompt and that
/// token, one weight at a time. Hidden states are compared layer by layer, so proving a model takes
/// memory for a weight and the activations, not for the model.
pub fn convert(
    config: &serde_json::Value,
    weights: &Checkpoint,
    g: GraphBuilder,
    base_dir: Option<&Path>,
) -> Result<(ModelProto, Validation), ModelError> {
    let d = dims(config, weights)?;
    let (model, hidden) = build_graph(config, weights, g, true)?;
    let ids: Vec<i64> = (0..12).map(|i| ((i * 7919 + 3) % d.vocab) as i64).collect();
    let prompt = Tensor::from_vec(ids, (2, 6), &Device::Cpu)?;
    let run = decoder::prefill_and_step(&model, base_dir, cache_layout(&d), &prompt, &hidden)?;
    let eager = llama_eager::forward(config, weights, &run.sequence)?;
    let s = prompt.dim(1)?;
    let mut comparisons = Vec::with_capacity(d.layers + 4);
    for (layer, (name, expected)) in hidden.iter().zip(&eager.hidden).enumerate() {
        let label = format!("model.layers.{layer} hidden state");
        comparisons.push(compare(
            &label,
            &run.prefill[name],
            &expected.narrow(1, 0, s)?,
        )?);
    }
    let prompt_logits = eager.logits.narrow(1, 0, s)?;
    comparisons.push(compare("logits", &run.prefill["logits"], &prompt_logits)?);
    let step_logits = eager.logits.narrow(1, s, 1)?;
    comparisons.push(compare(
        "logits, next token from the cache",
        &run.step_logits,
        &step_logits,
    )?);
    let mut reference =
        "kiln's eager Llama on candle, one weight at a time (hidden states after every \
        layer, logits at every position)"
            .to_owned();
    if weights.stored_bytes() <= WHOLE_MODEL_REFERENCE_BYTES {
        let [prompt_last, step] =
            <[Tensor; 2]>::try_from(reference_decoding(config, weights, &prompt, &run.next)?)
                .expect("two runs: the prompt and the next token");
        let last = run.prefill["logits"].narrow(1, s - 1, 1)?.squeeze(1)?;
        comparisons.push(compare(
            "logits[:, -1] (candle-transformers)",
            &last,
            &prompt_last,
        )?);
        let got = run.step_logits.squeeze(1)?;
        comparisons.push(compare(
            "next token's logits (candle-transformers, cached)",
            &got,
            &step,
        )?);
        reference.push_str(", and candle-transformers Llama with its cache (the prompt's last logits, then the next token's)");
    }
    let validation = judge(
        "kiln evaluator (CPU, fp32, streamed)",
        &reference,
        "2 prompts of 6 token ids with an empty cache, then each one's greedy next token with the cache",
        comparisons,
        FP32_REL_L2_TOLERANCE,
    )?;
    Ok((model, validation))
}

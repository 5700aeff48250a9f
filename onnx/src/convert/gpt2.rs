//! GPT-2 → ONNX: `input_ids` ([batch, sequence], int64) to `logits` ([batch, sequence, vocab]), with the
//! LM head tied to the token embeddings as GPT-2 ties them.
//!
//! The reference is an eager forward pass written here on candle tensors, apart from the graph builder and
//! the evaluator: candle-transformers 0.11.1 has no GPT-2, and its GPT-BigCode (the GPT-2-class model it
//! does have) reshapes the fused QKV by the embedding width instead of the head count when multi-query is
//! off, so it cannot run GPT-2 weights.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, Device, IndexOp, Tensor};

use super::decoder::{self, CacheLayout};
use super::hf_config::{check_heads, f64_of, str_of, usize_of};
use super::transformer::{
    Block, BlockSpec, GeluForm, Heads, LmHead, Mask, Mlp, Norm, NormPlacement, ProjectionLayout,
    Qkv, first_rows, lm_logits, position_table, sequence_length,
};
use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::graph_builder::{DimSpec, GraphBuilder, attr_int};
use crate::proto::{ModelProto, tensor_proto::DataType};
use crate::validate::{FP32_REL_L2_TOLERANCE, Validation, compare, judge};

const OPSET: i64 = 17;

struct Dims {
    hidden: usize,
    heads: usize,
    head_dim: usize,
    layers: usize,
    positions: usize,
    vocab: usize,
    eps: f64,
}

fn dims(config: &serde_json::Value) -> Result<Dims, ModelError> {
    let hidden = usize_of(config, &["n_embd", "hidden_size"])?;
    let heads = usize_of(config, &["n_head", "num_attention_heads"])?;
    match str_of(config, "activation_function").unwrap_or("gelu_new") {
        "gelu_new" | "gelu_pytorch_tanh" => {}
        other => {
            return Err(ModelError::Conversion(format!(
                "GPT-2 activation_function {other:?} is not supported"
            )));
        }
    }
    Ok(Dims {
        hidden,
        heads,
        head_dim: check_heads(hidden, heads)?,
        layers: usize_of(config, &["n_layer", "num_hidden_layers"])?,
        positions: usize_of(config, &["n_positions", "max_position_embeddings"])?,
        vocab: usize_of(config, &["vocab_size"])?,
        eps: f64_of(config, &["layer_norm_epsilon"], Some(1e-5))?,
    })
}

fn prefix(weights: &Checkpoint) -> &'static str {
    if weights.contains("transformer.wte.weight") {
        "transformer."
    } else {
        ""
    }
}

/// A pre-norm decoder block: LayerNorm, Conv1D projections with a fused QKV, tanh-approximated GELU.
fn block_spec(d: &Dims) -> BlockSpec {
    BlockSpec {
        heads: Heads {
            query: d.heads,
            key_value: d.heads,
            dim: d.head_dim,
        },
        norm: Norm::Layer { eps: d.eps },
        placement: NormPlacement::Pre,
        projections: ProjectionLayout::Conv1D,
        attention_norm: "ln_1",
        qkv: Qkv::Fused("attn.c_attn"),
        attention_output: "attn.c_proj",
        mlp_norm: "ln_2",
        mlp: Mlp::Gelu {
            up: "mlp.c_fc",
            down: "mlp.c_proj",
            form: GeluForm::Tanh,
        },
    }
}

/// The graph without a cache (every call sees the whole sequence), its weights in memory.
pub fn build(config: &serde_json::Value, weights: &Checkpoint) -> Result<ModelProto, ModelError> {
    build_graph(config, weights, GraphBuilder::new(), false)
}

/// The graph with a key/value cache ([`super::decoder`]'s layout), built in `g` (which may write the
/// weights to an external-data file as they come).
pub fn build_cached_into(
    config: &serde_json::Value,
    weights: &Checkpoint,
    g: GraphBuilder,
) -> Result<ModelProto, ModelError> {
    build_graph(config, weights, g, true)
}

fn cache_layout(d: &Dims) -> CacheLayout {
    CacheLayout {
        layers: d.layers,
        kv_heads: d.heads,
        head_dim: d.head_dim,
    }
}

fn build_graph(
    config: &serde_json::Value,
    weights: &Checkpoint,
    mut g: GraphBuilder,
    cached: bool,
) -> Result<ModelProto, ModelError> {
    let d = dims(config)?;
    let p = prefix(weights);
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
    let wte = g.float_weight(
        &format!("{p}wte.weight"),
        &weights.weight(&format!("{p}wte.weight"))?,
    )?;
    let wpe = g.float_weight(
        &format!("{p}wpe.weight"),
        &weights.weight(&format!("{p}wpe.weight"))?,
    )?;
    let tokens = g.op("Gather", &[&wte, &ids], vec![attr_int("axis", 0)]);
    let all_positions = position_table(&mut g, d.positions)?;
    let (position, mask_positions);
    let mask = match &cache {
        Some(cache) => {
            position = g.op(
                "Gather",
                &[&wpe, &cache.position_ids],
                vec![attr_int("axis", 0)],
            );
            Mask::CausalAfterPast {
                input_ids: &ids,
                attention_mask: &cache.attention_mask,
                positions: &all_positions,
            }
        }
        None => {
            let seq = sequence_length(&mut g, &ids);
            position = first_rows(&mut g, &wpe, &seq)?;
            let zero = g.ints("zero", &[0])?;
            mask_positions = g.op("Slice", &[&all_positions, &zero, &seq], vec![]);
            Mask::Causal {
                positions: &mask_positions,
            }
        }
    };
    let mut x = g.op("Add", &[&tokens, &position], vec![]);
    let block = Block::new(&mut g, block_spec(&d), mask, None)?;
    for layer in 0..d.layers {
        let layer_cache = cache.as_ref().map(|c| &c.layers[layer]);
        x = block.layer(&mut g, weights, &x, &format!("{p}h.{layer}"), layer_cache)?;
    }
    let x = Norm::Layer { eps: d.eps }.apply(&mut g, weights, &x, &format!("{p}ln_f"))?;
    let head = LmHead::Tied { embeddings: &wte };
    lm_logits(&mut g, weights, &x, head, (d.vocab, names))?;
    if let Some(cache) = &cache {
        decoder::declare_outputs(&mut g, cache, cache_layout(&d));
    }
    Ok(g.finish(
        "gpt2",
        OPSET,
        vec![super::producer(), super::max_sequence(d.positions)],
    ))
}

/// Two sequences of 6 generated token ids.
pub fn sample_inputs(vocab: usize) -> Result<HashMap<String, Tensor>, ModelError> {
    let ids: Vec<i64> = (0..12).map(|i| ((i * 7919 + 5) % vocab) as i64).collect();
    Ok(HashMap::from([(
        "input_ids".to_owned(),
        Tensor::from_vec(ids, (2, 6), &Device::Cpu)?,
    )]))
}

fn eager_layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor, ModelError> {
    use candle_nn::Module;
    Ok(candle_nn::LayerNorm::new(w.clone(), b.clone(), eps).forward(x)?)
}

/// GPT-2 as Hugging Face's GPT2LMHeadModel computes it, eagerly.
pub fn reference(
    config: &serde_json::Value,
    weights: &Checkpoint,
    ids: &Tensor,
) -> Result<Tensor, ModelError> {
    let d = dims(config)?;
    let p = prefix(weights);
    let w = |name: String| weights.get(&name);
    let (b, s) = ids.dims2()?;
    let wte = w(format!("{p}wte.weight"))?;
    let mut x = wte
        .index_select(&ids.flatten_all()?, 0)?
        .reshape((b, s, d.hidden))?
        .broadcast_add(&w(format!("{p}wpe.weight"))?.i(0..s)?)?;
    let causal = super::llama_eager::causal_mask(s)?;
    let linear = |x: &Tensor, name: &str| -> Result<Tensor, ModelError> {
        Ok(x.broadcast_matmul(&w(format!("{name}.weight"))?)?
            .broadcast_add(&w(format!("{name}.bias"))?)?)
    };
    for layer in 0..d.layers {
        let l = format!("{p}h.{layer}");
        let h = eager_layer_norm(
            &x,
            &w(format!("{l}.ln_1.weight"))?,
            &w(format!("{l}.ln_1.bias"))?,
            d.eps,
        )?;
        let qkv = linear(&h, &format!("{l}.attn.c_attn"))?;
        let heads = |t: Tensor| -> Result<Tensor, ModelError> {
            Ok(t.reshape((b, s, d.heads, d.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = heads(qkv.narrow(D::Minus1, 0, d.hidden)?)?;
        let k = heads(qkv.narrow(D::Minus1, d.hidden, d.hidden)?)?;
        let v = heads(qkv.narrow(D::Minus1, 2 * d.hidden, d.hidden)?)?;
        let scores = (q.matmul(&k.t()?)? / (d.head_dim as f64).sqrt())?.broadcast_add(&causal)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, s, d.hidden))?;
        x = (x + linear(&context, &format!("{l}.attn.c_proj"))?)?;
        let h = eager_layer_norm(
            &x,
            &w(format!("{l}.ln_2.weight"))?,
            &w(format!("{l}.ln_2.bias"))?,
            d.eps,
        )?;
        let inner = linear(&h, &format!("{l}.mlp.c_fc"))?.gelu()?;
        x = (x + linear(&inner, &format!("{l}.mlp.c_proj"))?)?;
    }
    let x = eager_layer_norm(
        &x,
        &w(format!("{p}ln_f.weight"))?,
        &w(format!("{p}ln_f.bias"))?,
        d.eps,
    )?;
    Ok(x.broadcast_matmul(&wte.t()?)?)
}

/// Builds the cached graph in `g` and proves it against the eager reference: the prompt with an empty
/// cache, then each prompt's greedy next token with the cache that run returned (the graph streamed,
/// each weight read when a node needs it). `base_dir` is where its external data is, if any.
pub fn convert(
    config: &serde_json::Value,
    weights: &Checkpoint,
    g: GraphBuilder,
    base_dir: Option<&Path>,
) -> Result<(ModelProto, Validation), ModelError> {
    let d = dims(config)?;
    let model = build_graph(config, weights, g, true)?;
    let prompt = sample_inputs(d.vocab)?
        .remove("input_ids")
        .expect("sample ids");
    let run = decoder::prefill_and_step(&model, base_dir, cache_layout(&d), &prompt, &[])?;
    let expected = reference(config, weights, &run.sequence)?;
    let s = prompt.dim(1)?;
    let comparisons = vec![
        compare("logits", &run.prefill["logits"], &expected.narrow(1, 0, s)?)?,
        compare(
            "logits, next token from the cache",
            &run.step_logits,
            &expected.narrow(1, s, 1)?,
        )?,
    ];
    let validation = judge(
        "kiln evaluator (CPU, fp32, streamed)",
        "eager GPT-2 forward pass on candle (Hugging Face GPT2LMHeadModel semantics)",
        "2 prompts of 6 token ids with an empty cache, then each one's greedy next token with the cache",
        comparisons,
        FP32_REL_L2_TOLERANCE,
    )?;
    Ok((model, validation))
}

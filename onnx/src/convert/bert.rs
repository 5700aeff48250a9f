//! BERT → ONNX: `input_ids`, `attention_mask`, `token_type_ids` ([batch, sequence], int64) to
//! `last_hidden_state` ([batch, sequence, hidden]), checked against candle-transformers' BertModel.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_transformers::models::bert::{BertModel, Config};

use super::hf_config::{check_heads, f64_of, str_of, usize_of};
use super::transformer::{
    Block, BlockSpec, GeluForm, Heads, Mask, Mlp, Norm, NormPlacement, ProjectionLayout, Qkv,
    first_rows, sequence_length,
};
use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::eval::Session;
use crate::graph_builder::{DimSpec, GraphBuilder, attr_int};
use crate::proto::{ModelProto, tensor_proto::DataType};
use crate::validate::{FP32_REL_L2_TOLERANCE, Validation, compare, judge};

const OPSET: i64 = 17;

struct Dims {
    hidden: usize,
    heads: usize,
    head_dim: usize,
    layers: usize,
    eps: f64,
    gelu: GeluForm,
    vocab: usize,
    type_vocab: usize,
}

fn dims(config: &serde_json::Value) -> Result<Dims, ModelError> {
    let hidden = usize_of(config, &["hidden_size"])?;
    let heads = usize_of(config, &["num_attention_heads"])?;
    let gelu = match str_of(config, "hidden_act").unwrap_or("gelu") {
        "gelu" => GeluForm::Erf,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_approximate" => GeluForm::Tanh,
        other => {
            return Err(ModelError::Conversion(format!(
                "BERT hidden_act {other:?} is not supported"
            )));
        }
    };
    if str_of(config, "position_embedding_type").is_some_and(|p| p != "absolute") {
        return Err(ModelError::Conversion(
            "only absolute position embeddings are supported".to_owned(),
        ));
    }
    Ok(Dims {
        hidden,
        heads,
        head_dim: check_heads(hidden, heads)?,
        layers: usize_of(config, &["num_hidden_layers"])?,
        eps: f64_of(config, &["layer_norm_eps"], Some(1e-12))?,
        gelu,
        vocab: usize_of(config, &["vocab_size"])?,
        type_vocab: usize_of(config, &["type_vocab_size"])?,
    })
}

/// `bert.` for BertFor* checkpoints, nothing for a bare BertModel.
fn prefix(weights: &Checkpoint) -> &'static str {
    if weights.contains("bert.embeddings.word_embeddings.weight") {
        "bert."
    } else {
        ""
    }
}

/// A post-norm encoder block: LayerNorm after each residual, Linear projections with biases.
fn block_spec(d: &Dims) -> BlockSpec {
    BlockSpec {
        heads: Heads {
            query: d.heads,
            key_value: d.heads,
            dim: d.head_dim,
        },
        norm: Norm::Layer { eps: d.eps },
        placement: NormPlacement::Post,
        projections: ProjectionLayout::Linear { bias: true },
        attention_norm: "attention.output.LayerNorm",
        qkv: Qkv::Separate {
            query: "attention.self.query",
            key: "attention.self.key",
            value: "attention.self.value",
        },
        attention_output: "attention.output.dense",
        mlp_norm: "output.LayerNorm",
        mlp: Mlp::Gelu {
            up: "intermediate.dense",
            down: "output.dense",
            form: d.gelu,
        },
    }
}

/// Word, position and token-type embeddings, summed and normalized.
fn embeddings(
    g: &mut GraphBuilder,
    weights: &Checkpoint,
    d: &Dims,
    e: &str,
    (ids, types): (&str, &str),
) -> Result<String, ModelError> {
    let mut table = |name: &str| {
        let name = format!("{e}.{name}.weight");
        g.float_weight(&name, &weights.weight(&name)?)
    };
    let words = table("word_embeddings")?;
    let positions = table("position_embeddings")?;
    let type_table = table("token_type_embeddings")?;
    let word = g.op("Gather", &[&words, ids], vec![attr_int("axis", 0)]);
    let kind = g.op("Gather", &[&type_table, types], vec![attr_int("axis", 0)]);
    let seq = sequence_length(g, ids);
    let position = first_rows(g, &positions, &seq)?;
    let sum = g.op("Add", &[&word, &kind], vec![]);
    let sum = g.op("Add", &[&sum, &position], vec![]);
    Norm::Layer { eps: d.eps }.apply(g, weights, &sum, &format!("{e}.LayerNorm"))
}

/// The graph, its weights in memory.
pub fn build(config: &serde_json::Value, weights: &Checkpoint) -> Result<ModelProto, ModelError> {
    build_into(config, weights, GraphBuilder::new())
}

/// The graph, built in `g` (which may write the weights to an external-data file as they come).
pub fn build_into(
    config: &serde_json::Value,
    weights: &Checkpoint,
    mut g: GraphBuilder,
) -> Result<ModelProto, ModelError> {
    let d = dims(config)?;
    let p = prefix(weights);
    let batch_seq = [DimSpec::Named("batch"), DimSpec::Named("sequence")];
    let ids = g.input("input_ids", DataType::Int64, &batch_seq);
    let attention_mask = g.input("attention_mask", DataType::Int64, &batch_seq);
    let types = g.input("token_type_ids", DataType::Int64, &batch_seq);
    let mut x = embeddings(
        &mut g,
        weights,
        &d,
        &format!("{p}embeddings"),
        (&ids, &types),
    )?;
    let mask = Mask::Padding {
        attention_mask: &attention_mask,
    };
    let block = Block::new(&mut g, block_spec(&d), mask, None)?;
    for layer in 0..d.layers {
        x = block.layer(
            &mut g,
            weights,
            &x,
            &format!("{p}encoder.layer.{layer}"),
            None,
        )?;
    }
    g.op_into("Identity", &[&x], vec![], "last_hidden_state");
    g.output(
        "last_hidden_state",
        DataType::Float,
        &[
            DimSpec::Named("batch"),
            DimSpec::Named("sequence"),
            DimSpec::Fixed(d.hidden as i64),
        ],
    );
    let mut metadata = vec![super::producer()];
    if let Some(positions) = config["max_position_embeddings"].as_u64() {
        metadata.push(super::max_sequence(positions as usize));
    }
    Ok(g.finish("bert", OPSET, metadata))
}

/// Generated inputs: two sequences of 7 tokens, the second padded after 4.
pub fn sample_inputs(config: &serde_json::Value) -> Result<HashMap<String, Tensor>, ModelError> {
    let d = dims(config)?;
    let (batch, seq) = (2usize, 7usize);
    let ids: Vec<i64> = (0..batch * seq)
        .map(|i| ((i * 7919 + 13) % d.vocab) as i64)
        .collect();
    let mask: Vec<i64> = (0..batch * seq)
        .map(|i| if i >= seq && i % seq >= 4 { 0 } else { 1 })
        .collect();
    let types: Vec<i64> = (0..batch * seq)
        .map(|i| {
            if i % seq >= 3 {
                (d.type_vocab > 1) as i64
            } else {
                0
            }
        })
        .collect();
    let dev = &Device::Cpu;
    Ok(HashMap::from([
        (
            "input_ids".to_owned(),
            Tensor::from_vec(ids, (batch, seq), dev)?,
        ),
        (
            "attention_mask".to_owned(),
            Tensor::from_vec(mask, (batch, seq), dev)?,
        ),
        (
            "token_type_ids".to_owned(),
            Tensor::from_vec(types, (batch, seq), dev)?,
        ),
    ]))
}

/// candle-transformers' BertModel on the same weights and inputs.
pub fn reference(
    config: &serde_json::Value,
    weights: &Checkpoint,
    inputs: &HashMap<String, Tensor>,
) -> Result<Tensor, ModelError> {
    let mut config = config.clone();
    // candle's Config wants fields that do not affect inference; fill the ones HF may omit.
    for (key, value) in [("hidden_dropout_prob", 0.1), ("initializer_range", 0.02)] {
        config
            .as_object_mut()
            .map(|o| o.entry(key).or_insert(value.into()));
    }
    config
        .as_object_mut()
        .map(|o| o.entry("pad_token_id").or_insert(0.into()));
    config
        .as_object_mut()
        .map(|o| o.entry("layer_norm_eps").or_insert(1e-12.into()));
    let parsed: Config = serde_json::from_value(config)
        .map_err(|e| ModelError::Conversion(format!("config.json for the BERT reference: {e}")))?;
    let vb = weights.var_builder();
    let model = BertModel::load(vb, &parsed)?;
    Ok(model.forward(
        &inputs["input_ids"],
        &inputs["token_type_ids"],
        Some(&inputs["attention_mask"]),
    )?)
}

/// Builds the graph in `g` and validates it; `base_dir` is where its external data is, if any.
pub fn convert(
    config: &serde_json::Value,
    weights: &Checkpoint,
    g: GraphBuilder,
    base_dir: Option<&Path>,
) -> Result<(ModelProto, Validation), ModelError> {
    let model = build_into(config, weights, g)?;
    let inputs = sample_inputs(config)?;
    let session = Session::new(&model, base_dir, &Device::Cpu)?;
    let outputs = session.run(&inputs)?;
    let expected = reference(config, weights, &inputs)?;
    let comparison = compare("last_hidden_state", &outputs[0].1, &expected)?;
    let validation = judge(
        "kiln evaluator (CPU, fp32)",
        "candle-transformers BertModel",
        "2 sequences of 7 token ids, one padded after 4",
        vec![comparison],
        FP32_REL_L2_TOLERANCE,
    )?;
    Ok((model, validation))
}

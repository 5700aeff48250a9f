//! BERT → ONNX: `input_ids`, `attention_mask`, `token_type_ids` ([batch, sequence], int64) to
//! `last_hidden_state` ([batch, sequence, hidden]), checked against candle-transformers' BertModel.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use super::hf_config::{check_heads, f64_of, str_of, usize_of};
use super::transformer::{
    attention, first_rows, layer_norm, linear, merge_heads, sequence_length, split_heads,
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
    gelu_tanh: bool,
    vocab: usize,
    type_vocab: usize,
}

fn dims(config: &serde_json::Value) -> Result<Dims, ModelError> {
    let hidden = usize_of(config, &["hidden_size"])?;
    let heads = usize_of(config, &["num_attention_heads"])?;
    let gelu_tanh = match str_of(config, "hidden_act").unwrap_or("gelu") {
        "gelu" => false,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_approximate" => true,
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
        gelu_tanh,
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

/// GELU as exported by PyTorch: erf form, or the tanh approximation.
pub fn gelu(g: &mut GraphBuilder, x: &str, tanh: bool) -> Result<String, ModelError> {
    let half = g.scalar("half", 0.5)?;
    let one = g.scalar("one", 1.0)?;
    let inner = if tanh {
        let cube = g.scalar("three", 3.0)?;
        let c = g.scalar("gelu_c", 0.044_715)?;
        let k = g.scalar("sqrt_2_over_pi", (2.0 / std::f32::consts::PI).sqrt())?;
        let x3 = g.op("Pow", &[x, &cube], vec![]);
        let cx3 = g.op("Mul", &[&x3, &c], vec![]);
        let sum = g.op("Add", &[x, &cx3], vec![]);
        let scaled = g.op("Mul", &[&sum, &k], vec![]);
        g.op("Tanh", &[&scaled], vec![])
    } else {
        let inv_sqrt2 = g.scalar("inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2)?;
        let scaled = g.op("Mul", &[x, &inv_sqrt2], vec![]);
        g.op("Erf", &[&scaled], vec![])
    };
    let plus_one = g.op("Add", &[&inner, &one], vec![]);
    let gated = g.op("Mul", &[x, &plus_one], vec![]);
    Ok(g.op("Mul", &[&gated, &half], vec![]))
}

pub fn build(config: &serde_json::Value, weights: &Checkpoint) -> Result<ModelProto, ModelError> {
    let d = dims(config)?;
    let p = prefix(weights);
    let mut g = GraphBuilder::new();
    let batch_seq = [DimSpec::Named("batch"), DimSpec::Named("sequence")];
    let ids = g.input("input_ids", DataType::Int64, &batch_seq);
    let mask_in = g.input("attention_mask", DataType::Int64, &batch_seq);
    let types = g.input("token_type_ids", DataType::Int64, &batch_seq);

    let e = format!("{p}embeddings");
    let words = g.weight(
        &format!("{e}.word_embeddings.weight"),
        weights.get(&format!("{e}.word_embeddings.weight"))?,
    )?;
    let positions = g.weight(
        &format!("{e}.position_embeddings.weight"),
        weights.get(&format!("{e}.position_embeddings.weight"))?,
    )?;
    let type_table = g.weight(
        &format!("{e}.token_type_embeddings.weight"),
        weights.get(&format!("{e}.token_type_embeddings.weight"))?,
    )?;
    let word = g.op("Gather", &[&words, &ids], vec![attr_int("axis", 0)]);
    let kind = g.op("Gather", &[&type_table, &types], vec![attr_int("axis", 0)]);
    let seq = sequence_length(&mut g, &ids);
    let position = first_rows(&mut g, &positions, &seq)?;
    let sum = g.op("Add", &[&word, &kind], vec![]);
    let sum = g.op("Add", &[&sum, &position], vec![]);
    let mut x = layer_norm(
        &mut g,
        weights,
        &sum,
        &format!("{e}.LayerNorm"),
        ("weight", "bias"),
        d.eps,
    )?;

    // (1 - mask) · most-negative-float, as [b, 1, 1, s]: padded keys get no attention.
    let mask_f = g.op(
        "Cast",
        &[&mask_in],
        vec![attr_int("to", DataType::Float as i64)],
    );
    let one = g.scalar("one", 1.0)?;
    let inverted = g.op("Sub", &[&one, &mask_f], vec![]);
    let min = g.scalar("mask_min", f32::MIN)?;
    let additive = g.op("Mul", &[&inverted, &min], vec![]);
    let axes = g.ints("mask_axes", &[1, 2])?;
    let mask = g.op("Unsqueeze", &[&additive, &axes], vec![]);

    for layer in 0..d.layers {
        let l = format!("{p}encoder.layer.{layer}");
        let q = linear(
            &mut g,
            weights,
            &x,
            &format!("{l}.attention.self.query.weight"),
            Some(&format!("{l}.attention.self.query.bias")),
        )?;
        let k = linear(
            &mut g,
            weights,
            &x,
            &format!("{l}.attention.self.key.weight"),
            Some(&format!("{l}.attention.self.key.bias")),
        )?;
        let v = linear(
            &mut g,
            weights,
            &x,
            &format!("{l}.attention.self.value.weight"),
            Some(&format!("{l}.attention.self.value.bias")),
        )?;
        let (q, k, v) = (
            split_heads(&mut g, &q, d.heads, d.head_dim)?,
            split_heads(&mut g, &k, d.heads, d.head_dim)?,
            split_heads(&mut g, &v, d.heads, d.head_dim)?,
        );
        let context = attention(&mut g, (&q, &k, &v), &mask, d.head_dim)?;
        let context = merge_heads(&mut g, &context, d.hidden)?;
        let out = linear(
            &mut g,
            weights,
            &context,
            &format!("{l}.attention.output.dense.weight"),
            Some(&format!("{l}.attention.output.dense.bias")),
        )?;
        let residual = g.op("Add", &[&out, &x], vec![]);
        x = layer_norm(
            &mut g,
            weights,
            &residual,
            &format!("{l}.attention.output.LayerNorm"),
            ("weight", "bias"),
            d.eps,
        )?;
        let inner = linear(
            &mut g,
            weights,
            &x,
            &format!("{l}.intermediate.dense.weight"),
            Some(&format!("{l}.intermediate.dense.bias")),
        )?;
        let inner = gelu(&mut g, &inner, d.gelu_tanh)?;
        let out = linear(
            &mut g,
            weights,
            &inner,
            &format!("{l}.output.dense.weight"),
            Some(&format!("{l}.output.dense.bias")),
        )?;
        let residual = g.op("Add", &[&out, &x], vec![]);
        x = layer_norm(
            &mut g,
            weights,
            &residual,
            &format!("{l}.output.LayerNorm"),
            ("weight", "bias"),
            d.eps,
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
    Ok(g.finish("bert", OPSET, vec![super::producer()]))
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
    let vb = VarBuilder::from_tensors(weights.tensors().clone(), DType::F32, &Device::Cpu);
    let model = BertModel::load(vb, &parsed)?;
    Ok(model.forward(
        &inputs["input_ids"],
        &inputs["token_type_ids"],
        Some(&inputs["attention_mask"]),
    )?)
}

pub fn convert(
    config: &serde_json::Value,
    weights: &Checkpoint,
) -> Result<(ModelProto, Validation), ModelError> {
    let model = build(config, weights)?;
    let inputs = sample_inputs(config)?;
    let session = Session::new(&model, None, &Device::Cpu)?;
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

//! What the decoder families (GPT-2, Llama) share when built with a key/value cache: the graph's inputs
//! and outputs in the layout ONNX Runtime GenAI and Optimum use, and the two runs that prove a cached
//! graph decodes as its reference does (the prompt with an empty cache, then one token after it).
//!
//! Inputs: `input_ids` [batch_size, sequence_length] int64, `attention_mask`
//! [batch_size, total_sequence_length] int64 (1 for every cached and new token that is not padding),
//! `position_ids` [batch_size, sequence_length] int64, and for each layer i
//! `past_key_values.{i}.key` / `.value` [batch_size, kv_heads, past_sequence_length, head_dim] float32.
//! Outputs: `logits` [batch_size, sequence_length, vocab] and `present.{i}.key` / `.value`
//! [batch_size, kv_heads, total_sequence_length, head_dim], where total = past + sequence.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Tensor};

use super::transformer::LayerCache;
use crate::ModelError;
use crate::eval::streaming;
use crate::graph_builder::{DimSpec, GraphBuilder};
use crate::proto::{ModelProto, tensor_proto::DataType};

pub const BATCH: &str = "batch_size";
pub const SEQUENCE: &str = "sequence_length";
pub const PAST: &str = "past_sequence_length";
pub const TOTAL: &str = "total_sequence_length";

/// The cache's shape: one key and one value per layer, `kv_heads` × `head_dim` wide.
#[derive(Debug, Clone, Copy)]
pub struct CacheLayout {
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// The cache's graph inputs, and each layer's past and present names.
pub struct CacheInputs {
    pub attention_mask: String,
    pub position_ids: String,
    pub layers: Vec<LayerCache>,
}

/// Declares `attention_mask`, `position_ids` and the past inputs (after `input_ids`, in that order).
pub fn declare_inputs(g: &mut GraphBuilder, layout: CacheLayout) -> CacheInputs {
    let attention_mask = g.input(
        "attention_mask",
        DataType::Int64,
        &[DimSpec::Named(BATCH), DimSpec::Named(TOTAL)],
    );
    let position_ids = g.input(
        "position_ids",
        DataType::Int64,
        &[DimSpec::Named(BATCH), DimSpec::Named(SEQUENCE)],
    );
    let past_dims = [
        DimSpec::Named(BATCH),
        DimSpec::Fixed(layout.kv_heads as i64),
        DimSpec::Named(PAST),
        DimSpec::Fixed(layout.head_dim as i64),
    ];
    let layers = (0..layout.layers)
        .map(|i| {
            let key = g.input(
                &format!("past_key_values.{i}.key"),
                DataType::Float,
                &past_dims,
            );
            let value = g.input(
                &format!("past_key_values.{i}.value"),
                DataType::Float,
                &past_dims,
            );
            LayerCache {
                past_key: key,
                past_value: value,
                present_key: format!("present.{i}.key"),
                present_value: format!("present.{i}.value"),
            }
        })
        .collect();
    CacheInputs {
        attention_mask,
        position_ids,
        layers,
    }
}

/// Declares the present outputs (after `logits`).
pub fn declare_outputs(g: &mut GraphBuilder, cache: &CacheInputs, layout: CacheLayout) {
    let dims = [
        DimSpec::Named(BATCH),
        DimSpec::Fixed(layout.kv_heads as i64),
        DimSpec::Named(TOTAL),
        DimSpec::Fixed(layout.head_dim as i64),
    ];
    for layer in &cache.layers {
        g.output(&layer.present_key, DataType::Float, &dims);
        g.output(&layer.present_value, DataType::Float, &dims);
    }
}

/// A cached graph's two proving runs.
pub struct Decoded {
    /// The prompt's run with an empty cache: `logits` [b, s, vocab], the presents and the watched values.
    pub prefill: HashMap<String, Tensor>,
    /// The greedy next token of each sequence, [b, 1].
    pub next: Tensor,
    /// The next token's run on the prompt's cache: logits [b, 1, vocab].
    pub step_logits: Tensor,
    /// The prompt and the next token, [b, s + 1]: what the reference runs on.
    pub sequence: Tensor,
}

/// An `attention_mask` of ones, [b, n]: every cached and new token is real.
pub fn attention_mask(b: usize, n: usize, device: &Device) -> candle_core::Result<Tensor> {
    Tensor::ones((b, n), DType::I64, device)
}

/// `position_ids` from..to for each of `b` sequences, [b, to - from].
pub fn position_ids(
    b: usize,
    from: usize,
    to: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    Tensor::arange(from as i64, to as i64, device)?
        .unsqueeze(0)?
        .repeat((b, 1))
}

/// Runs `model` (streamed) on `prompt` [b, s] with an empty cache, then on each sequence's greedy next
/// token with the cache the first run returned; `watch` names values kept from the first run.
pub fn prefill_and_step(
    model: &ModelProto,
    base_dir: Option<&Path>,
    layout: CacheLayout,
    prompt: &Tensor,
    watch: &[String],
) -> Result<Decoded, ModelError> {
    let (b, s) = prompt.dims2()?;
    let mut inputs = HashMap::from([
        ("input_ids".to_owned(), prompt.clone()),
        (
            "attention_mask".to_owned(),
            attention_mask(b, s, &Device::Cpu)?,
        ),
        (
            "position_ids".to_owned(),
            position_ids(b, 0, s, &Device::Cpu)?,
        ),
    ]);
    let empty = Tensor::zeros(
        (b, layout.kv_heads, 0, layout.head_dim),
        DType::F32,
        &Device::Cpu,
    )?;
    for i in 0..layout.layers {
        inputs.insert(format!("past_key_values.{i}.key"), empty.clone());
        inputs.insert(format!("past_key_values.{i}.value"), empty.clone());
    }
    let prefill = streaming::run(model, base_dir, &inputs, watch)?;
    let next = prefill["logits"]
        .narrow(1, s - 1, 1)?
        .argmax_keepdim(D::Minus1)?
        .squeeze(D::Minus1)?
        .to_dtype(DType::I64)?;
    let mut inputs = HashMap::from([
        ("input_ids".to_owned(), next.clone()),
        (
            "attention_mask".to_owned(),
            attention_mask(b, s + 1, &Device::Cpu)?,
        ),
        (
            "position_ids".to_owned(),
            position_ids(b, s, s + 1, &Device::Cpu)?,
        ),
    ]);
    for i in 0..layout.layers {
        for part in ["key", "value"] {
            let present = prefill[&format!("present.{i}.{part}")].clone();
            inputs.insert(format!("past_key_values.{i}.{part}"), present);
        }
    }
    let step = streaming::run(model, base_dir, &inputs, &[])?;
    let sequence = Tensor::cat(&[prompt, &next], 1)?;
    Ok(Decoded {
        step_logits: step["logits"].clone(),
        prefill,
        next,
        sequence,
    })
}

/// Fills in the inputs of a cached graph's first step that `inputs` lacks, from its `input_ids` ([b, s]):
/// `attention_mask` of ones [b, s], `position_ids` 0..s, and every past key and value empty
/// ([b, kv_heads, 0, head_dim], the fixed dims the graph declares). Returns the names it filled in;
/// nothing for a graph without `input_ids` or for inputs already given.
pub fn complete_prompt_inputs(
    model: &ModelProto,
    inputs: &mut HashMap<String, Tensor>,
) -> Result<Vec<String>, ModelError> {
    use crate::proto::{tensor_shape_proto::dimension::Value, type_proto};
    let Some(ids) = inputs.get("input_ids").cloned() else {
        return Ok(Vec::new());
    };
    let Ok((b, s)) = ids.dims2() else {
        return Ok(Vec::new());
    };
    let Some(graph) = model.graph.as_ref() else {
        return Ok(Vec::new());
    };
    let mut derived = Vec::new();
    for input in &graph.input {
        let name = input.name.as_deref().unwrap_or("");
        if inputs.contains_key(name) {
            continue;
        }
        let value = match name {
            "attention_mask" => attention_mask(b, s, &Device::Cpu)?,
            "position_ids" => position_ids(b, 0, s, &Device::Cpu)?,
            past if past.starts_with("past_key_values.") => {
                let Some(type_proto::Value::TensorType(t)) =
                    input.r#type.as_ref().and_then(|t| t.value.as_ref())
                else {
                    continue;
                };
                let fixed: Vec<Option<usize>> = t
                    .shape
                    .iter()
                    .flat_map(|shape| &shape.dim)
                    .map(|d| match d.value {
                        Some(Value::DimValue(v)) if v > 0 => Some(v as usize),
                        _ => None,
                    })
                    .collect();
                let [_, Some(heads), _, Some(width)] = fixed.as_slice() else {
                    continue;
                };
                Tensor::zeros((b, *heads, 0, *width), DType::F32, &Device::Cpu)?
            }
            _ => continue,
        };
        derived.push(name.to_owned());
        inputs.insert(name.to_owned(), value);
    }
    Ok(derived)
}

/// "attention_mask, position_ids and 4 past keys and values of length 0", for reports.
pub fn summarize(derived: &[String]) -> String {
    let past = derived
        .iter()
        .filter(|n| n.starts_with("past_key_values."))
        .count();
    let mut named: Vec<&str> = derived
        .iter()
        .map(String::as_str)
        .filter(|n| !n.starts_with("past_key_values."))
        .collect();
    let past_text = format!("{past} past keys and values of length 0");
    if past > 0 {
        named.push(&past_text);
    }
    match named.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

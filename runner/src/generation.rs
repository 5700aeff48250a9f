//! Generating with a decoder's key/value cache (kiln's decoder layout, docs/formats.md): the prompt's
//! forward pass with an empty cache gives the first token (time to first token), then each step feeds
//! one token per sequence and the previous step's `present` values as the past (time per token). Greedy,
//! so the steps do what serving does and nothing random is timed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{D, DType, Device, Tensor};
use kiln_core::deployment::GenerationResult;
use kiln_onnx::convert::decoder::{attention_mask, position_ids};
use kiln_onnx::eval::Session;
use kiln_onnx::proto::ModelProto;
use kiln_onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use kiln_onnx::proto::type_proto;

use crate::engine::{EngineError, percentile};

/// Tokens generated after the first, each timed.
pub const GENERATED_TOKENS: usize = 16;
/// Rounds of prefill and steps; the first warms up and is not counted.
const ROUNDS: usize = 3;

/// A decoder's cache inputs, each with its fixed [kv_heads, head_dim], and its vocabulary.
pub struct CacheInputs {
    pasts: Vec<(String, usize, usize)>,
    vocab: usize,
}

fn fixed_dims(value: &kiln_onnx::proto::ValueInfoProto) -> Vec<Option<usize>> {
    let Some(type_proto::Value::TensorType(t)) =
        value.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Vec::new();
    };
    t.shape
        .iter()
        .flat_map(|s| &s.dim)
        .map(|d| match d.value {
            Some(DimValue::DimValue(v)) if v > 0 => Some(v as usize),
            _ => None,
        })
        .collect()
}

/// The cache layout of `model`, when it is a decoder kiln can generate with: inputs `input_ids`,
/// `attention_mask`, `position_ids` and `past_key_values.*` ([b, kv_heads, past, head_dim] with fixed
/// kv_heads and head_dim), a `logits` output with a fixed vocabulary.
pub fn cache_inputs(model: &ModelProto) -> Option<CacheInputs> {
    let graph = model.graph.as_ref()?;
    let named = |n: &str| graph.input.iter().any(|i| i.name.as_deref() == Some(n));
    if !(named("input_ids") && named("attention_mask") && named("position_ids")) {
        return None;
    }
    let mut pasts = Vec::new();
    for input in &graph.input {
        let name = input.name.clone().unwrap_or_default();
        if !name.starts_with("past_key_values.") {
            continue;
        }
        let [_, Some(heads), _, Some(width)] = fixed_dims(input)[..] else {
            return None;
        };
        pasts.push((name, heads, width));
    }
    let logits = graph
        .output
        .iter()
        .find(|o| o.name.as_deref() == Some("logits"))?;
    let vocab = (*fixed_dims(logits).last()?)?;
    (!pasts.is_empty()).then_some(CacheInputs { pasts, vocab })
}

/// Times generation at `batch` with a prompt of `prompt` tokens.
pub fn measure(
    session: &Session,
    cache: &CacheInputs,
    (batch, prompt): (usize, usize),
    device: &Device,
    cancel: &AtomicBool,
    failed: &dyn Fn(kiln_onnx::ModelError) -> EngineError,
) -> Result<GenerationResult, EngineError> {
    let ids: Vec<i64> = (0..batch * prompt)
        .map(|i| ((i * 7919 + 11) % cache.vocab) as i64)
        .collect();
    let prompt_ids = Tensor::from_vec(ids, (batch, prompt), device)?;
    let (mut first_token, mut steps) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let mut inputs = HashMap::from([
            ("input_ids".to_owned(), prompt_ids.clone()),
            (
                "attention_mask".to_owned(),
                attention_mask(batch, prompt, device)?,
            ),
            (
                "position_ids".to_owned(),
                position_ids(batch, 0, prompt, device)?,
            ),
        ]);
        for (name, heads, width) in &cache.pasts {
            let empty = Tensor::zeros((batch, *heads, 0, *width), DType::F32, device)?;
            inputs.insert(name.clone(), empty);
        }
        for step in 0..=GENERATED_TOKENS {
            // Tokens the cache holds once this step ran.
            let total = prompt + step;
            if cancel.load(Ordering::Relaxed) {
                return Err(EngineError::Device("cancelled".to_owned()));
            }
            let t0 = Instant::now();
            let outputs: HashMap<String, Tensor> =
                session.run(&inputs).map_err(failed)?.into_iter().collect();
            device.synchronize()?;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            if round > 0 {
                if step == 0 {
                    first_token.push(ms);
                } else {
                    steps.push(ms);
                }
            }
            let logits = &outputs["logits"];
            let last = logits.narrow(1, logits.dim(1)? - 1, 1)?;
            let next = last
                .argmax_keepdim(D::Minus1)?
                .squeeze(D::Minus1)?
                .to_dtype(DType::I64)?;
            inputs.insert("input_ids".to_owned(), next);
            inputs.insert(
                "attention_mask".to_owned(),
                attention_mask(batch, total + 1, device)?,
            );
            inputs.insert(
                "position_ids".to_owned(),
                position_ids(batch, total, total + 1, device)?,
            );
            for (name, _, _) in &cache.pasts {
                let present = name.replacen("past_key_values.", "present.", 1);
                let value = outputs.get(&present).ok_or_else(|| {
                    EngineError::Unsupported(format!("the decoder has no output {present:?}"))
                })?;
                inputs.insert(name.clone(), value.clone());
            }
        }
    }
    first_token.sort_by(f64::total_cmp);
    steps.sort_by(f64::total_cmp);
    let per_token_ms = percentile(&steps, 50.0);
    Ok(GenerationResult {
        prompt_tokens: prompt as i64,
        generated_tokens: GENERATED_TOKENS as i64,
        time_to_first_token_ms: percentile(&first_token, 50.0),
        per_token_ms,
        tokens_per_second: batch as f64 / (per_token_ms / 1000.0),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use prost::Message;

    use crate::device::DeviceInfo;
    use crate::engine::{Engine, Requested, Settings, benchmark};

    /// A converted GPT-2 with its cache is timed generating at each batch size; a model without a cache
    /// gets no generation numbers.
    #[test]
    fn a_decoder_is_timed_generating_and_other_models_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let sample = kiln_onnx::sample_models::gpt2(50, 16, 1, 2).unwrap();
        let weights = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors);
        let model = kiln_onnx::convert::gpt2::build_cached_into(
            &sample.config,
            &weights,
            kiln_onnx::graph_builder::GraphBuilder::new(),
        )
        .unwrap();
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let settings = Settings {
            warmup: 1,
            min_iterations: 2,
            max_iterations: 2,
            sequence_lengths: vec![6],
            ..Settings::default()
        };
        let info = DeviceInfo::cpu(settings.threads);
        let cancel = AtomicBool::new(false);
        let results = benchmark(
            &Engine::Kiln,
            &path,
            &candle_core::Device::Cpu,
            &info,
            "test",
            (&settings, &Requested::default()),
            &cancel,
        )
        .unwrap();
        assert_eq!(results.len(), 2);
        for r in &results {
            let g = r.generation.as_ref().unwrap_or_else(|| panic!("{r:?}"));
            assert_eq!(
                (g.prompt_tokens, g.generated_tokens),
                (6, super::GENERATED_TOKENS as i64)
            );
            assert!(
                g.time_to_first_token_ms > 0.0 && g.per_token_ms > 0.0,
                "{g:?}"
            );
            let expected = r.batch_size as f64 * 1000.0 / g.per_token_ms;
            assert!(
                (g.tokens_per_second - expected).abs() < 1e-9 * expected,
                "{g:?}"
            );
        }
        std::fs::write(
            &path,
            kiln_onnx::sample_models::mlp_graph(false).encode_to_vec(),
        )
        .unwrap();
        let results = benchmark(
            &Engine::Kiln,
            &path,
            &candle_core::Device::Cpu,
            &info,
            "test",
            (&settings, &Requested::default()),
            &cancel,
        )
        .unwrap();
        assert!(results.iter().all(|r| r.generation.is_none()));
    }
}

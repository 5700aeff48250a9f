//! Which transformer a checkpoint is, how its tensors are named, and the student made from it: the
//! teacher with fewer layers, each kept layer initialized from the teacher's (DistilBERT's recipe).

use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::convert::hf_config::{check_heads, f64_of, str_of, usize_of};

pub use crate::convert::Family;

/// The family config.json's `model_type` names.
pub fn family_of(config: &serde_json::Value) -> Result<Family, ModelError> {
    match str_of(config, "model_type") {
        Some("bert") => Ok(Family::Bert),
        Some("gpt2") => Ok(Family::Gpt2),
        Some("llama") => Ok(Family::Llama),
        other => Err(ModelError::Unsupported(format!(
            "distillation needs a BERT, GPT-2 or Llama checkpoint (config.json model_type), not {other:?}"
        ))),
    }
}

/// The config.json key holding the number of layers.
fn layers_key(family: Family, config: &serde_json::Value) -> &'static str {
    match family {
        Family::Gpt2 if config.get("n_layer").is_some() => "n_layer",
        _ => "num_hidden_layers",
    }
}

/// A decoder's tokens attend only to earlier ones (and so it can sample sequences); an encoder's to all.
pub fn is_causal(family: Family) -> bool {
    !matches!(family, Family::Bert)
}

/// Where the logits come from.
#[derive(Debug, Clone, PartialEq)]
pub enum LmHead {
    /// `hidden · Eᵀ` with the token embeddings: GPT-2, a tied Llama, and a bare BertModel (which has no
    /// head of its own: its logits are what an MLM head without its transform would compute).
    Tied,
    /// A separate `[vocab, hidden]` matrix (Llama's `lm_head.weight`).
    Separate(String),
    /// BERT's masked-LM head: dense, GELU, LayerNorm, then the tied embeddings and a bias.
    BertMlm,
}

/// A checkpoint's shape and tensor names, read from its config.json and tensor list.
#[derive(Debug, Clone)]
pub struct Architecture {
    pub family: Family,
    /// What the backbone's tensor names start with (`bert.`, `transformer.`, `model.` or nothing).
    pub prefix: String,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub positions: usize,
    pub eps: f64,
    /// Rotary base (Llama).
    pub theta: f64,
    /// BERT's `gelu` is the exact (erf) form; `gelu_new` and GPT-2's are the tanh approximation.
    pub exact_gelu: bool,
    pub head: LmHead,
}

impl Architecture {
    pub fn read(config: &serde_json::Value, weights: &Checkpoint) -> Result<Self, ModelError> {
        let family = family_of(config)?;
        let hidden = usize_of(config, &["hidden_size", "n_embd"])?;
        let heads = usize_of(config, &["num_attention_heads", "n_head"])?;
        let kv_heads = usize_of(config, &["num_key_value_heads"]).unwrap_or(heads);
        let head_dim = check_heads(hidden, heads)?;
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(ModelError::Conversion(format!(
                "{heads} attention heads do not group into {kv_heads} key/value heads"
            )));
        }
        let (prefix, head) = match family {
            Family::Bert => {
                let prefix = if weights.contains("bert.embeddings.word_embeddings.weight") {
                    "bert."
                } else {
                    ""
                };
                let head = if weights.contains("cls.predictions.transform.dense.weight") {
                    LmHead::BertMlm
                } else {
                    LmHead::Tied
                };
                (prefix, head)
            }
            Family::Gpt2 => {
                let prefix = if weights.contains("transformer.wte.weight") {
                    "transformer."
                } else {
                    ""
                };
                (prefix, LmHead::Tied)
            }
            Family::Llama => {
                let head = if weights.contains("lm_head.weight") {
                    LmHead::Separate("lm_head.weight".to_owned())
                } else {
                    LmHead::Tied
                };
                ("model.", head)
            }
        };
        let exact_gelu = match family {
            Family::Bert => str_of(config, "hidden_act").unwrap_or("gelu") == "gelu",
            _ => false,
        };
        Ok(Self {
            family,
            prefix: prefix.to_owned(),
            layers: usize_of(config, &["num_hidden_layers", "n_layer"])?,
            hidden,
            heads,
            kv_heads,
            head_dim,
            vocab: usize_of(config, &["vocab_size"])?,
            positions: usize_of(config, &["max_position_embeddings", "n_positions"])?,
            eps: f64_of(
                config,
                &["layer_norm_eps", "layer_norm_epsilon", "rms_norm_eps"],
                // Hugging Face's defaults when config.json leaves it out.
                Some(match family {
                    Family::Bert => 1e-12,
                    Family::Gpt2 => 1e-5,
                    Family::Llama => 1e-6,
                }),
            )?,
            theta: f64_of(config, &["rope_theta"], Some(10_000.0))?,
            exact_gelu,
            head,
        })
    }

    /// What layer `i`'s tensor names start with, e.g. `bert.encoder.layer.3.`.
    pub fn layer_prefix(&self, i: usize) -> String {
        let p = &self.prefix;
        match self.family {
            Family::Bert => format!("{p}encoder.layer.{i}."),
            Family::Gpt2 => format!("{p}h.{i}."),
            Family::Llama => format!("{p}layers.{i}."),
        }
    }

    /// The layer a tensor belongs to, and the rest of its name; None for embeddings, norms and heads.
    fn layer_of<'n>(&self, name: &'n str) -> Option<(usize, &'n str)> {
        let p = &self.prefix;
        let after = match self.family {
            Family::Bert => name.strip_prefix(&format!("{p}encoder.layer."))?,
            Family::Gpt2 => name.strip_prefix(&format!("{p}h."))?,
            Family::Llama => name.strip_prefix(&format!("{p}layers."))?,
        };
        let (index, rest) = after.split_once('.')?;
        Some((index.parse().ok()?, rest))
    }
}

/// How many layers the student has, or exactly which of the teacher's it keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StudentShape {
    /// `layers=N`: N layers spread evenly over the teacher's (see [`kept_layers`]).
    Layers(usize),
    /// `keep=I,J,…`: these teacher layers, in this order.
    Keep(Vec<usize>),
}

impl StudentShape {
    /// Parses the CLI's `--student` value: `layers=N` or `keep=I,J,…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let usage = "expected layers=N or keep=I,J,... (teacher layer indexes, from 0)";
        let (key, value) = text.split_once('=').ok_or_else(|| usage.to_owned())?;
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not a layer count or index; {usage}"))
        };
        match key.trim() {
            "layers" => Ok(Self::Layers(number(value)?)),
            "keep" => Ok(Self::Keep(
                value.split(',').map(number).collect::<Result<_, _>>()?,
            )),
            other => Err(format!("unknown student setting {other:?}; {usage}")),
        }
    }

    /// The teacher layers the student keeps, checked against the teacher's depth.
    pub fn kept(&self, teacher_layers: usize) -> Result<Vec<usize>, ModelError> {
        let bad = |why: String| Err(ModelError::Unsupported(why));
        match self {
            Self::Layers(n) if *n == 0 || *n >= teacher_layers => bad(format!(
                "a student needs 1 to {} layers (the teacher has {teacher_layers}), not {n}",
                teacher_layers.saturating_sub(1)
            )),
            Self::Layers(n) => Ok(kept_layers(teacher_layers, *n)),
            Self::Keep(list) => {
                if list.is_empty() || list.len() >= teacher_layers {
                    return bad(format!(
                        "keep= lists 1 to {} of the teacher's {teacher_layers} layers",
                        teacher_layers.saturating_sub(1)
                    ));
                }
                if let Some(i) = list.iter().find(|&&i| i >= teacher_layers) {
                    return bad(format!(
                        "the teacher has layers 0 to {}; there is no layer {i}",
                        teacher_layers - 1
                    ));
                }
                if list.windows(2).any(|w| w[0] >= w[1]) {
                    return bad("keep= lists layers in increasing order, each once".to_owned());
                }
                Ok(list.clone())
            }
        }
    }
}

/// Every k-th layer from the first, k = teacher / student (rounded down per layer): 12 → 6 keeps 0, 2,
/// 4, 6, 8, 10 as DistilBERT does; 4 → 2 keeps 0 and 2.
pub fn kept_layers(teacher_layers: usize, student_layers: usize) -> Vec<usize> {
    (0..student_layers)
        .map(|i| i * teacher_layers / student_layers)
        .collect()
}

/// The student's config.json and initial tensors: the teacher's, with only the kept layers, renumbered.
pub fn student_of(
    config: &serde_json::Value,
    architecture: &Architecture,
    teacher: &Checkpoint,
    kept: &[usize],
) -> Result<(serde_json::Value, BTreeMap<String, Tensor>), ModelError> {
    let renumber: HashMap<usize, usize> = kept.iter().enumerate().map(|(s, &t)| (t, s)).collect();
    let mut tensors = BTreeMap::new();
    for (name, _, _) in teacher.describe() {
        let student_name = match architecture.layer_of(&name) {
            None => name.clone(),
            Some((layer, rest)) => match renumber.get(&layer) {
                Some(&to) => format!("{}{rest}", architecture.layer_prefix(to)),
                None => continue,
            },
        };
        tensors.insert(student_name, teacher.get(&name)?);
    }
    let mut config = config.clone();
    let key = layers_key(architecture.family, &config);
    config[key] = serde_json::json!(kept.len());
    Ok((config, tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kth_layer_from_the_first() {
        assert_eq!(kept_layers(12, 6), [0, 2, 4, 6, 8, 10]);
        assert_eq!(kept_layers(4, 2), [0, 2]);
        assert_eq!(kept_layers(6, 4), [0, 1, 3, 4]);
        assert_eq!(kept_layers(32, 1), [0]);
    }

    #[test]
    fn student_settings_parse_and_are_checked() {
        assert_eq!(StudentShape::parse("layers=2"), Ok(StudentShape::Layers(2)));
        assert_eq!(
            StudentShape::parse("keep=0,3"),
            Ok(StudentShape::Keep(vec![0, 3]))
        );
        assert!(StudentShape::parse("layers").is_err());
        assert!(StudentShape::parse("depth=2").is_err());
        assert!(StudentShape::Layers(4).kept(4).is_err());
        assert!(StudentShape::Layers(0).kept(4).is_err());
        assert!(StudentShape::Keep(vec![2, 1]).kept(4).is_err());
        assert!(StudentShape::Keep(vec![0, 4]).kept(4).is_err());
        assert_eq!(StudentShape::Keep(vec![1, 3]).kept(4).unwrap(), [1, 3]);
    }

    #[test]
    fn the_student_keeps_the_chosen_layers_renumbered() {
        let sample = crate::sample_models::gpt2(32, 16, 4, 2).unwrap();
        let teacher = Checkpoint::from_tensors(sample.tensors.clone());
        let arch = Architecture::read(&sample.config, &teacher).unwrap();
        let (config, tensors) = student_of(&sample.config, &arch, &teacher, &[0, 2]).unwrap();
        assert_eq!(config["n_layer"], 2);
        let moved = tensors["transformer.h.1.attn.c_attn.weight"]
            .sub(&sample.tensors["transformer.h.2.attn.c_attn.weight"])
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(moved, 0.0);
        assert!(!tensors.keys().any(|n| n.starts_with("transformer.h.2.")));
        assert!(tensors.contains_key("transformer.wte.weight"));
    }
}

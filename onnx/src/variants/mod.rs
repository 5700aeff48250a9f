//! Compressed variants of an optimized fp32 model (fp16, int8 weight-only, magnitude-pruned), and their
//! validation against the original on the same generated inputs.

mod fp16;
pub mod fused;

pub use fp16::write_streamed as write_fp16_streamed;
pub mod inputs;
mod int8;
mod int8_dynamic;
pub mod opset21;
mod prune;
pub mod weight_only;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::ModelError;
use crate::eval::Session;
use crate::proto::ModelProto;
use crate::validate::{OutputComparison, compare};

/// The kinds of variant kiln makes, with the tolerance each must meet (relative L2 error against the
/// original, on every output).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VariantKind {
    /// Optimized, same precision.
    Fp32,
    /// fp32 with BERT-style attention and GELU fused into one operator each (ONNX Runtime's contrib
    /// `Attention`): faster on ONNX Runtime, for ONNX Runtime and kiln's evaluator only ([`fused`]).
    Fused,
    /// Weights and compute in float16, fp32 at the edges and in the numerically sensitive operators.
    Fp16,
    /// Per-channel symmetric int8 weights for MatMul/Gemm/Conv (DequantizeLinear before each).
    Int8,
    /// This fraction of each MatMul/Gemm/Conv weight set to zero, smallest magnitudes first.
    Pruned(f64),
    /// MatMul/Gemm on integers with activations quantized at run time (as ORT's quantize_dynamic).
    Int8Dynamic,
    /// MatMul weights block-quantized (int4 `MatMulNBits`, int4/int8 blocked `DequantizeLinear`), made
    /// from the model's files weight by weight ([`weight_only::write`]), never in memory.
    WeightOnly(weight_only::WeightOnly),
}

impl VariantKind {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "fp32" => VariantKind::Fp32,
            "fused" => VariantKind::Fused,
            "fp16" => VariantKind::Fp16,
            "int8" => VariantKind::Int8,
            "int8-dynamic" => VariantKind::Int8Dynamic,
            other if other.starts_with("int") => {
                VariantKind::WeightOnly(weight_only::WeightOnly::parse(other)?)
            }
            other => {
                let percent: u32 = other.strip_prefix("pruned-")?.parse().ok()?;
                if !(1..=99).contains(&percent) {
                    return None;
                }
                VariantKind::Pruned(f64::from(percent) / 100.0)
            }
        })
    }

    pub fn name(self) -> String {
        match self {
            VariantKind::Fp32 => "fp32".to_owned(),
            VariantKind::Fused => "fused".to_owned(),
            VariantKind::Fp16 => "fp16".to_owned(),
            VariantKind::Int8 => "int8".to_owned(),
            VariantKind::Int8Dynamic => "int8-dynamic".to_owned(),
            VariantKind::Pruned(s) => format!("pruned-{}", (s * 100.0).round() as u32),
            VariantKind::WeightOnly(how) => how.name(),
        }
    }

    /// Default tolerances (docs/formats.md); a push may override them.
    pub fn default_tolerance(self) -> f64 {
        match self {
            VariantKind::Fp32 | VariantKind::Fused => 1e-5,
            VariantKind::Fp16 => 1e-2,
            VariantKind::Int8 => 5e-2,
            VariantKind::Pruned(_) | VariantKind::Int8Dynamic => 1e-1,
            VariantKind::WeightOnly(how) if how.spec.bits == 8 => 5e-2,
            // Four bits move a decoder's logits by 0.1-0.3 in relative L2 (docs/formats.md); the
            // report's top-1 agreement says more about generation.
            VariantKind::WeightOnly(_) => 3.5e-1,
        }
    }

    /// Builds this variant from the optimized fp32 model.
    pub fn make(self, optimized: &ModelProto) -> Result<ModelProto, ModelError> {
        let mut model = match self {
            VariantKind::Fp32 => optimized.clone(),
            VariantKind::Fused => fused::fuse(optimized)?.0,
            VariantKind::Fp16 => fp16::convert(optimized)?,
            VariantKind::Int8 => int8::quantize(optimized)?,
            VariantKind::Pruned(sparsity) => prune::prune(optimized, sparsity)?,
            VariantKind::Int8Dynamic => int8_dynamic::quantize(optimized)?,
            VariantKind::WeightOnly(how) => {
                return Err(ModelError::Unsupported(format!(
                    "{} is made from the model's files (weight_only::write), not in memory",
                    how.name()
                )));
            }
        };
        unique_node_names(&mut model);
        Ok(model)
    }
}

/// Gives every node a name no other node has (ONNX Runtime refuses duplicates; the rewrites above add
/// nodes named after their outputs, which may meet an existing name).
pub(super) fn unique_node_names(model: &mut ModelProto) {
    let Some(graph) = model.graph.as_mut() else {
        return;
    };
    let mut seen = std::collections::HashSet::new();
    for (index, node) in graph.node.iter_mut().enumerate() {
        let name = node.name.clone().unwrap_or_default();
        if name.is_empty() || !seen.insert(name.clone()) {
            let mut candidate = format!("{name}_{index}");
            while !seen.insert(candidate.clone()) {
                candidate.push('_');
            }
            node.name = Some(candidate);
        }
    }
}

/// The variants a push gets unless it asks for others.
pub const DEFAULT_VARIANTS: &[&str] = &["fp32", "fp16", "int8"];

/// A decoder's (a model with a key/value cache) default variants: block-wise weight-only int8 and int4
/// are what serving an LLM uses, and they are made weight by weight whatever the model's size.
pub const DECODER_DEFAULT_VARIANTS: &[&str] = &["fp32", "fp16", "int8-b128", "int4"];

/// The variants a push of `model` gets unless it asks for others: [`DECODER_DEFAULT_VARIANTS`] for a
/// decoder, [`DEFAULT_VARIANTS`] otherwise, without `fp32` when every float weight is 16-bit (an fp32
/// copy would double the bytes and prove nothing new).
pub fn default_variants(model: &ModelProto) -> Vec<String> {
    use crate::proto::tensor_proto::DataType;
    let Some(graph) = model.graph.as_ref() else {
        return DEFAULT_VARIANTS.iter().map(|s| (*s).to_owned()).collect();
    };
    let decoder = graph.input.iter().any(|i| {
        i.name
            .as_deref()
            .is_some_and(|n| n.starts_with("past_key_values."))
    });
    let floats: Vec<i32> = graph
        .initializer
        .iter()
        .filter(|t| t.dims.iter().product::<i64>() >= 1024)
        .filter_map(|t| t.data_type)
        .filter(|&t| {
            [DataType::Float, DataType::Float16, DataType::Bfloat16]
                .iter()
                .any(|f| *f as i32 == t)
        })
        .collect();
    let sixteen_bit = !floats.is_empty() && floats.iter().all(|&t| t != DataType::Float as i32);
    // A scikit-learn model whose weights all live in ONNX-ML operators' attributes (trees, SVMs, linear
    // models) computes in fp32 whatever the variant: fp16 and int8 would only round its inputs. One with
    // float weights in initializers (an MLP, naive Bayes) is a network for this purpose.
    let float_weights = graph.initializer.iter().any(|t| {
        [
            DataType::Float,
            DataType::Float16,
            DataType::Bfloat16,
            DataType::Double,
        ]
        .iter()
        .any(|f| t.data_type == Some(*f as i32))
    });
    let classical = !float_weights
        && graph
            .node
            .iter()
            .any(|n| n.domain.as_deref() == Some("ai.onnx.ml"));
    if classical {
        return vec!["fp32".to_owned()];
    }
    let names = if decoder {
        DECODER_DEFAULT_VARIANTS
    } else {
        DEFAULT_VARIANTS
    };
    names
        .iter()
        .filter(|n| !(sixteen_bit && **n == "fp32"))
        .map(|n| (*n).to_owned())
        .collect()
}

/// How a variant compares with the original.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VariantValidation {
    pub engine: String,
    pub inputs: String,
    pub outputs: Vec<OutputComparison>,
    pub max_abs_error: f64,
    pub rel_l2_error: f64,
    /// Share of rows whose arg-max over the last axis agrees, for outputs that look like class scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top1_agreement: Option<f64>,
    /// Share of rows whose original arg-max is among the variant's five highest (more than five entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top5_agreement: Option<f64>,
    pub tolerance_rel_l2: f64,
    pub passed: bool,
}

/// Agreement over the last axis, when it has at least two entries: the share of rows whose arg-max is
/// the same (top-1), and, with more than five entries, the share whose original arg-max is among the
/// variant's five highest (top-5, how next-token agreement is read for a language model).
fn agreement(actual: &Tensor, expected: &Tensor) -> Result<Option<(f64, Option<f64>)>, ModelError> {
    let classes = *expected.dims().last().unwrap_or(&0);
    if expected.rank() < 2 || classes < 2 {
        return Ok(None);
    }
    let values = |t: &Tensor| -> Result<Vec<f32>, ModelError> {
        Ok(t.to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    let (a, e) = (values(actual)?, values(expected)?);
    let argmax = |row: &[f32]| {
        row.iter()
            .enumerate()
            .fold(0, |b, (i, v)| if *v > row[b] { i } else { b })
    };
    let rows = (e.len() / classes).max(1) as f64;
    let (mut top1, mut top5) = (0usize, 0usize);
    for (x, y) in a.chunks(classes).zip(e.chunks(classes)) {
        let wanted = argmax(y);
        top1 += usize::from(argmax(x) == wanted);
        // The original's choice is in the variant's top five when fewer than five entries beat it.
        top5 += usize::from(x.iter().filter(|v| **v > x[wanted]).count() < 5);
    }
    Ok(Some((
        top1 as f64 / rows,
        (classes > 5).then_some(top5 as f64 / rows),
    )))
}

/// The original model's outputs on the validation inputs, computed once and compared with every variant.
pub struct Reference {
    pub inputs: HashMap<String, Tensor>,
    /// Where the inputs came from and their shapes, for the validation report.
    pub description: String,
    pub outputs: Vec<(String, Tensor)>,
}

impl Reference {
    pub fn compute(
        original: &Session,
        inputs: HashMap<String, Tensor>,
        description: String,
    ) -> Result<Self, ModelError> {
        let outputs = original.run(&inputs)?;
        Ok(Self {
            inputs,
            description,
            outputs,
        })
    }

    /// The original's outputs with the model run streamed from its files (each weight read when a node
    /// needs it): for models too large to hold.
    pub fn compute_streamed(
        original: &ModelProto,
        base_dir: &std::path::Path,
        inputs: HashMap<String, Tensor>,
        description: String,
    ) -> Result<Self, ModelError> {
        let original = crate::optimize::tensor_outputs_only(original)?;
        let mut outputs = crate::eval::streaming::run(&original, Some(base_dir), &inputs, &[])?;
        let outputs = output_names(&original)
            .into_iter()
            .map(|name| {
                let value = outputs
                    .remove(&name)
                    .expect("streaming::run returns every output");
                (name, value)
            })
            .collect();
        Ok(Self {
            inputs,
            description,
            outputs,
        })
    }

    /// Runs `variant` on the reference inputs and judges it against `tolerance`.
    pub fn judge(
        &self,
        variant: &ModelProto,
        tolerance: f64,
    ) -> Result<VariantValidation, ModelError> {
        // Outputs that are no tensors (a classifier's ZipMap) are left out of both sides.
        let variant = crate::optimize::tensor_outputs_only(variant)?;
        let actual = Session::new(&variant, None, &Device::Cpu)?.run(&self.inputs)?;
        self.verdict(
            actual.into_iter().map(|(_, t)| t).collect(),
            "kiln evaluator (CPU)",
            tolerance,
        )
    }

    /// [`Reference::judge`] for a variant in files (external data under `base_dir`), run streamed.
    pub fn judge_streamed(
        &self,
        variant: &ModelProto,
        base_dir: &std::path::Path,
        tolerance: f64,
    ) -> Result<VariantValidation, ModelError> {
        let variant = crate::optimize::tensor_outputs_only(variant)?;
        let mut outputs = crate::eval::streaming::run(&variant, Some(base_dir), &self.inputs, &[])?;
        let actual = output_names(&variant)
            .iter()
            .map(|name| {
                outputs
                    .remove(name)
                    .expect("streaming::run returns every output")
            })
            .collect();
        self.verdict(actual, "kiln evaluator (CPU, streamed)", tolerance)
    }

    fn verdict(
        &self,
        actual: Vec<Tensor>,
        engine: &str,
        tolerance: f64,
    ) -> Result<VariantValidation, ModelError> {
        let mut outputs = Vec::new();
        let (mut top1, mut top5): (Option<f64>, Option<f64>) = (None, None);
        for ((name, e), a) in self.outputs.iter().zip(&actual) {
            outputs.push(compare(name, a, e)?);
            // A decoder's cached keys and values are no scores to agree on.
            if name.starts_with("present.") {
                continue;
            }
            if let Some((t1, t5)) = agreement(a, e)? {
                top1 = Some(top1.map_or(t1, |s: f64| s.min(t1)));
                if let Some(t5) = t5 {
                    top5 = Some(top5.map_or(t5, |s: f64| s.min(t5)));
                }
            }
        }
        let max_abs_error = crate::validate::worst(outputs.iter().map(|o| o.max_abs_error));
        let rel_l2_error = crate::validate::worst(outputs.iter().map(|o| o.rel_l2_error));
        let passed = outputs
            .iter()
            .all(|o| o.rel_l2_error <= tolerance && !o.max_abs_error.is_nan());
        Ok(VariantValidation {
            engine: engine.to_owned(),
            inputs: self.description.clone(),
            outputs,
            max_abs_error,
            rel_l2_error,
            top1_agreement: top1,
            top5_agreement: top5,
            tolerance_rel_l2: tolerance,
            passed,
        })
    }
}

fn output_names(model: &ModelProto) -> Vec<String> {
    model
        .graph
        .iter()
        .flat_map(|g| &g.output)
        .map(|o| o.name.clone().unwrap_or_default())
        .collect()
}

/// Runs both models on the same inputs and judges the variant against `tolerance` (one variant; a
/// pipeline making several computes the [`Reference`] once).
pub fn validate(
    original: &Session,
    variant: &ModelProto,
    inputs: &HashMap<String, Tensor>,
    description: &str,
    tolerance: f64,
) -> Result<VariantValidation, ModelError> {
    Reference::compute(original, inputs.clone(), description.to_owned())?.judge(variant, tolerance)
}

/// The MatMul/Gemm/Conv weight initializers and the axis that indexes their output channels.
pub(crate) fn weight_channels(model: &ModelProto) -> HashMap<String, usize> {
    let Some(graph) = model.graph.as_ref() else {
        return HashMap::new();
    };
    let inputs: std::collections::HashSet<&str> = graph
        .input
        .iter()
        .filter_map(|v| v.name.as_deref())
        .collect();
    // A weight a subgraph also reads keeps its name and type: the rewrites rename only the outer graph's
    // reads.
    let read_in_subgraphs = crate::optimize::usage::read_in_subgraphs(graph);
    let mut out = HashMap::new();
    for node in &graph.node {
        let Some(w) = node.input.get(1) else { continue };
        if read_in_subgraphs.contains(w) {
            continue;
        }
        let Some(t) = graph
            .initializer
            .iter()
            .find(|t| t.name.as_ref() == Some(w))
        else {
            continue;
        };
        if inputs.contains(w.as_str())
            || t.data_type != Some(crate::proto::tensor_proto::DataType::Float as i32)
            || t.dims.len() < 2
        {
            continue;
        }
        let trans_b = node
            .attribute
            .iter()
            .any(|a| a.name.as_deref() == Some("transB") && a.i == Some(1));
        let axis = match node.op_type.as_deref() {
            Some("MatMul") if t.dims.len() == 2 => 1,
            Some("Gemm") => usize::from(!trans_b),
            Some("Conv") => 0,
            _ => continue,
        };
        out.insert(w.clone(), axis);
    }
    out
}

#[cfg(test)]
mod tests;

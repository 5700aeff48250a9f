//! Inputs for validation, generated from a model's signature: random normal floats; token ids within the
//! embedding table they index; integer masks of ones, the last row of a batch padded at its end (boolean
//! masks, whose meaning varies between exporters, all true). Symbolic dims get 2 (the first) or 7 (the
//! others) unless the caller says otherwise (benchmarks choose the batch); a decoder's total sequence
//! length is its past plus its new tokens.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::ModelError;
use crate::proto::{
    ModelProto, tensor_proto::DataType, tensor_shape_proto::dimension::Value, type_proto,
};

/// Inputs kiln makes up are at most this many elements each (256 MiB of float32): a declared shape past it
/// would exhaust memory instead of proving anything.
pub const MAX_GENERATED_ELEMENTS: usize = 1 << 26;

/// The sizes [`reference_on_generated`] gives symbolic dims (batch, the others), in the order it tries
/// them: small first, then long enough for models that need a minimum length (a speech model's conv
/// front end over 512 samples).
pub const GENERATED_SIZES: [(usize, usize); 3] = [(2, 7), (1, 64), (1, 512)];

/// The original's outputs on inputs kiln generates: at the first of [`GENERATED_SIZES`] the model runs
/// on. Fails with the first size's error when it runs on none.
pub fn reference_on_generated(
    model: &ModelProto,
    original: &crate::eval::Session,
) -> Result<super::Reference, ModelError> {
    let mut first_error = None;
    for (batch, rest) in GENERATED_SIZES {
        let attempt = generate_shaped(model, batch, rest)
            .and_then(|(inputs, described)| super::Reference::compute(original, inputs, described));
        match attempt {
            Ok(reference) => return Ok(reference),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let sizes: Vec<String> = GENERATED_SIZES
        .iter()
        .map(|(batch, rest)| format!("batch {batch}, other symbolic dims {rest}"))
        .collect();
    Err(ModelError::Evaluation(format!(
        "the model does not run on the inputs kiln generated ({}): {}; push {} with inputs it accepts",
        sizes.join("; "),
        match first_error {
            Some(ModelError::Evaluation(message)) => message,
            other => other.map(|e| e.to_string()).unwrap_or_default(),
        },
        crate::convert::SAMPLE_INPUTS
    )))
}

/// The size of a symbolic dim at position `index` of an input. A decoder's cache dims relate: ONNX
/// Runtime GenAI's `total_sequence_length` is the past plus the new tokens, and Optimum names such dims
/// by the sum itself (`past_sequence_length + 1`), so a sum gets the sum of its terms' sizes.
fn symbolic_size(name: &str, index: usize, first: usize, rest: usize) -> usize {
    let term = |t: &str| t.trim().parse::<usize>().unwrap_or(rest);
    if name == crate::convert::decoder::TOTAL {
        2 * rest
    } else if name.contains('+') {
        name.split('+').map(term).sum()
    } else if index == 0 {
        first
    } else {
        rest
    }
}

/// An integer attention mask of a batch of two or more rows gets its last row padded at the end, as a
/// tokenizer pads a shorter sentence (1 a real token, 0 padding), so that a variant's handling of padding
/// is compared too: a mask of ones alone would not tell a variant that drops the mask from one that keeps
/// it. At the end, so that every query still sees a real key (the first), causal or not. Returns what was
/// done, None for any other input.
fn pad_last_row(name: &str, dims: &[usize], values: &mut [i64]) -> Option<String> {
    let &[rows, columns] = dims else {
        return None;
    };
    if rows < 2 || columns < 2 || !name.to_ascii_lowercase().contains("mask") {
        return None;
    }
    let padded = columns / 2;
    values[(rows - 1) * columns + columns - padded..].fill(0);
    Some(format!("{padded} of {columns} positions 0 at its end"))
}

/// Inputs for validating `model`: batch 2, other symbolic dims 7.
pub fn generate(model: &ModelProto) -> Result<(HashMap<String, Tensor>, String), ModelError> {
    generate_shaped(model, 2, 7)
}

/// Like [`generate`], with the first symbolic dim of each input (the batch) set to `first` and the other
/// symbolic dims (sequence lengths, image sizes) to `rest`.
pub fn generate_shaped(
    model: &ModelProto,
    first: usize,
    rest: usize,
) -> Result<(HashMap<String, Tensor>, String), ModelError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| ModelError::InvalidModel("no graph".to_owned()))?;
    let initializers: HashMap<&str, &crate::proto::TensorProto> = graph
        .initializer
        .iter()
        .filter_map(|t| Some((t.name.as_deref()?, t)))
        .collect();
    let mut out = HashMap::new();
    let mut described = Vec::new();
    for input in &graph.input {
        let name = input.name.clone().unwrap_or_default();
        if initializers.contains_key(name.as_str()) {
            continue;
        }
        let Some(type_proto::Value::TensorType(t)) =
            input.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Err(ModelError::Evaluation(format!(
                "input {name:?} is not a tensor"
            )));
        };
        let dims: Vec<usize> = t
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match &d.value {
                        Some(Value::DimValue(v)) if *v > 0 => *v as usize,
                        Some(Value::DimParam(name)) => symbolic_size(name, i, first, rest),
                        _ => {
                            if i == 0 {
                                first
                            } else {
                                rest
                            }
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let count = dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= MAX_GENERATED_ELEMENTS)
            .ok_or_else(|| {
                ModelError::Evaluation(format!(
                    "input {name:?} declares the shape {dims:?}, more than the {MAX_GENERATED_ELEMENTS} \
                     elements kiln generates for one validation input; push sample_inputs.safetensors \
                     with smaller inputs"
                ))
            })?;
        let elem = t.elem_type.unwrap_or(0);
        // How the input differs from the kind's default, for the validation report.
        let mut note = String::new();
        let tensor = if elem == DataType::Float as i32 {
            Tensor::randn(0f32, 1.0, dims.clone(), &Device::Cpu)?
        } else if elem == DataType::Int64 as i32 || elem == DataType::Int32 as i32 {
            // Ids index the table a Gather reads them into (through the Cast that widens a 16-bit
            // table); anything else (masks) is ones.
            let table = |value: &str| {
                initializers.get(value).copied().or_else(|| {
                    let cast = graph.node.iter().find(|n| {
                        n.op_type.as_deref() == Some("Cast")
                            && n.output.first().map(String::as_str) == Some(value)
                    })?;
                    initializers.get(cast.input.first()?.as_str()).copied()
                })
            };
            let rows = graph.node.iter().find_map(|n| {
                (n.op_type.as_deref() == Some("Gather") && n.input.get(1) == Some(&name))
                    .then(|| table(&n.input[0]).and_then(|t| t.dims.first().copied()))
                    .flatten()
            });
            let mut values: Vec<i64> = match rows {
                Some(rows) => (0..count)
                    .map(|i| (i as i64 * 7919 + 11) % rows.max(1))
                    .collect(),
                None => vec![1; count],
            };
            if rows.is_none()
                && let Some(padding) = pad_last_row(&name, &dims, &mut values)
            {
                note = format!(" (the last row padded: {padding})");
            }
            Tensor::from_vec(values, dims.clone(), &Device::Cpu)?
        } else if elem == DataType::Bool as i32 {
            Tensor::ones(dims.clone(), DType::U8, &Device::Cpu)?
        } else {
            return Err(ModelError::Evaluation(format!(
                "cannot generate input {name:?} of element type {elem}"
            )));
        };
        described.push(format!("{name} {dims:?}{note}"));
        out.insert(name, tensor);
    }
    Ok((out, format!("generated: {}", described.join(", "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masks_last_row_is_padded_at_its_end_and_nothing_else_is() {
        let mut mask = vec![1i64; 2 * 7];
        let done = pad_last_row("attention_mask", &[2, 7], &mut mask);
        assert_eq!(done.as_deref(), Some("3 of 7 positions 0 at its end"));
        assert_eq!(mask, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);

        // One row (the first is never padded), a mask of another rank, or an input that is no mask: ones.
        for (name, dims) in [
            ("attention_mask", vec![1, 7]),
            ("attention_mask", vec![2, 1, 7]),
            ("lengths", vec![2, 7]),
        ] {
            let mut values = vec![1i64; dims.iter().product()];
            assert_eq!(pad_last_row(name, &dims, &mut values), None);
            assert!(values.iter().all(|&v| v == 1));
        }
    }
}

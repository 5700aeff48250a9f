//! fp16 from a 16-bit checkpoint, and for models too large to hold. A converted bf16 (or fp16)
//! checkpoint keeps its weights 16-bit and widens each with a Cast to fp32; the fp16 variant stores
//! them as fp16 instead and drops the Casts ([`widen_cast_weights`]: bf16's wider range is clamped to
//! fp16's ±65504 like any fp32 weight). [`write_streamed`] makes the whole variant from the model's
//! files, one weight at a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use super::{FP16_MAX, convert_with, to_half};
use crate::ModelError;
use crate::eval::tensor_io;
use crate::external_data::ExternalDataWriter;
use crate::proto::{ModelProto, TensorProto, tensor_proto::DataLocation, tensor_proto::DataType};

fn is_external(t: &TensorProto) -> bool {
    t.data_location == Some(DataLocation::External as i32)
}

/// Makes each 16-bit initializer that only a `Cast(to=FLOAT)` reads a float initializer read directly.
/// Inline ones are decoded to fp32 at once; external ones only change their declared type (their bytes
/// stay 16-bit until [`write_streamed`] converts them), and their originals are returned by name.
pub(super) fn widen_cast_weights(
    model: &mut ModelProto,
) -> Result<HashMap<String, TensorProto>, ModelError> {
    let mut originals = HashMap::new();
    let Some(graph) = model.graph.as_mut() else {
        return Ok(originals);
    };
    let mut readers: HashMap<String, usize> = HashMap::new();
    for node in &graph.node {
        for input in &node.input {
            *readers.entry(input.clone()).or_default() += 1;
        }
    }
    let mut in_subgraphs = crate::optimize::usage::read_in_subgraphs(graph);
    in_subgraphs.extend(graph.output.iter().filter_map(|o| o.name.clone()));
    let sixteen = [DataType::Float16 as i32, DataType::Bfloat16 as i32];
    let mut renamed: HashMap<String, String> = HashMap::new();
    let index: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((t.name.clone()?, i)))
        .collect();
    graph.node.retain(|node| {
        let widens = node.op_type.as_deref() == Some("Cast")
            && node
                .attribute
                .iter()
                .any(|a| a.name.as_deref() == Some("to") && a.i == Some(DataType::Float as i64));
        let (Some(weight), Some(output)) = (node.input.first(), node.output.first()) else {
            return true;
        };
        let qualifies = widens
            && index
                .get(weight)
                .is_some_and(|&i| sixteen.contains(&graph.initializer[i].data_type.unwrap_or(0)))
            && readers.get(weight) == Some(&1)
            && !in_subgraphs.contains(weight)
            && !in_subgraphs.contains(output);
        if qualifies {
            renamed.insert(output.clone(), weight.clone());
        }
        !qualifies
    });
    for node in &mut graph.node {
        for input in &mut node.input {
            if let Some(weight) = renamed.get(input) {
                *input = weight.clone();
            }
        }
    }
    for weight in renamed.values() {
        let tensor = &mut graph.initializer[index[weight]];
        if is_external(tensor) {
            originals.insert(weight.clone(), tensor.clone());
            tensor.data_type = Some(DataType::Float as i32);
        } else {
            let wide = tensor_io::from_proto(tensor, None, &Device::Cpu)?.to_dtype(DType::F32)?;
            *tensor = tensor_io::to_proto(weight, &wide)?;
        }
    }
    Ok(originals)
}

/// Writes the fp16 variant of the model at `source` (its external data beside it) as
/// `out_dir/model.onnx` and `model.onnx.data`, converting each weight as it is written: the graph is
/// rewritten as [`super::convert`] rewrites it, with the external weights' data deferred to here.
pub fn write_streamed(source: &Path, out_dir: &Path) -> Result<Vec<(String, PathBuf)>, ModelError> {
    let base_dir = source.parent().unwrap_or(Path::new("."));
    let mut model = crate::model_check::decode(std::fs::read(source)?.into())?;
    let mut sources = widen_cast_weights(&mut model)?;
    for tensor in model.graph.iter().flat_map(|g| &g.initializer) {
        if is_external(tensor) {
            let name = tensor.name.clone().unwrap_or_default();
            sources.entry(name).or_insert_with(|| tensor.clone());
        }
    }
    let defer = |t: &TensorProto| -> Result<TensorProto, ModelError> {
        if is_external(t) {
            Ok(TensorProto {
                data_type: Some(DataType::Float16 as i32),
                ..t.clone()
            })
        } else {
            to_half(t)
        }
    };
    let mut variant = convert_with(&model, &defer)?;
    drop(model);
    let data_file = "model.onnx.data";
    let mut data = ExternalDataWriter::create(out_dir, data_file)?;
    let graph = variant
        .graph
        .as_mut()
        .ok_or_else(|| ModelError::InvalidModel("the model has no graph".to_owned()))?;
    for tensor in &mut graph.initializer {
        if !is_external(tensor) {
            continue;
        }
        let name = tensor.name.clone().unwrap_or_default();
        // fp32 copies that fp32-only slots read are named after their weight.
        let original = sources
            .get(&name)
            .or_else(|| name.strip_suffix(".fp32").and_then(|n| sources.get(n)))
            .ok_or_else(|| {
                ModelError::InvalidModel(format!("initializer {name:?} has no source data"))
            })?;
        let target = tensor.data_type.unwrap_or(0);
        let raw = if [DataType::Float16 as i32, DataType::Float as i32].contains(&target) {
            let value = tensor_io::from_proto(original, Some(base_dir), &Device::Cpu)?
                .to_dtype(DType::F32)?;
            let value = if target == DataType::Float16 as i32 {
                value.clamp(-FP16_MAX, FP16_MAX)?.to_dtype(DType::F16)?
            } else {
                value
            };
            tensor_io::to_raw(&value)?.1
        } else {
            // Integer tables (positions) are copied as they are.
            tensor_io::read_external(original, Some(base_dir))?.to_vec()
        };
        tensor.raw_data = None;
        data.append(tensor, &raw)?;
    }
    super::super::unique_node_names(&mut variant);
    let mut files = crate::model_writer::write(&mut variant, out_dir, "model.onnx", u64::MAX)?;
    files.push(data.finish());
    Ok(files)
}

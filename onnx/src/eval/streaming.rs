//! One run of a model too large to hold: each initializer is read from the file when the first node
//! that needs it runs, and every value (initializers included) is dropped after the last node that
//! reads it, so a run holds a few weights and the activations, never the model. Used to prove a
//! converted large model; [`Session`](super::Session) keeps weights resident for repeated runs.
//!
//! Graphs with subgraphs (If, Loop, Scan) are refused: their bodies read outer values by name, which a
//! last-use count over the top-level nodes cannot see.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::node::Node;
use super::{ops, tensor_io};
use crate::ModelError;
use crate::proto::{ModelProto, TensorProto};

/// Runs `model` once on `inputs`; returns its outputs and the values named in `watch` (hidden states a
/// caller compares layer by layer), by name.
pub fn run(
    model: &ModelProto,
    base_dir: Option<&Path>,
    inputs: &HashMap<String, Tensor>,
    watch: &[String],
) -> Result<HashMap<String, Tensor>, ModelError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| ModelError::InvalidModel("the model has no graph".to_owned()))?;
    let opset = crate::model_check::ai_onnx_opset(model).unwrap_or(1);
    let initializers: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_deref().unwrap_or(""), t))
        .collect();
    let mut kept: Vec<&str> = graph
        .output
        .iter()
        .map(|o| o.name.as_deref().unwrap_or(""))
        .collect();
    kept.extend(watch.iter().map(String::as_str));
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (index, node) in graph.node.iter().enumerate() {
        if node
            .attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
        {
            return Err(ModelError::Unsupported(format!(
                "node {index} ({}) has a subgraph, which a streamed run does not follow",
                node.op_type.as_deref().unwrap_or("")
            )));
        }
        for input in &node.input {
            last_use.insert(input.as_str(), index);
        }
    }
    let mut values: HashMap<String, Tensor> = HashMap::new();
    for input in &graph.input {
        let name = input.name.as_deref().unwrap_or("");
        if initializers.contains_key(name) {
            continue;
        }
        let value = inputs
            .get(name)
            .ok_or_else(|| ModelError::Evaluation(format!("input {name:?} was not given")))?;
        values.insert(name.to_owned(), super::held(value)?);
    }
    let types = super::graph::element_types(graph, &HashMap::new());
    // No limit here: the caller proves its own converted model, whose size it knows.
    let unlimited = super::run_memory::RunMemory::default();
    for (index, proto) in graph.node.iter().enumerate() {
        let mut args = Vec::with_capacity(proto.input.len());
        for name in &proto.input {
            if name.is_empty() {
                args.push(None);
                continue;
            }
            if !values.contains_key(name) {
                let tensor = initializers
                    .get(name.as_str())
                    .ok_or_else(|| ModelError::Evaluation(format!("{name:?} is not defined")))?;
                let decoded = tensor_io::from_proto(tensor, base_dir, &Device::Cpu)?;
                values.insert(name.clone(), decoded);
            }
            args.push(values.get(name).cloned());
        }
        let types_of = |names: &[String]| -> Vec<Option<i32>> {
            names.iter().map(|n| types.get(n).copied()).collect()
        };
        let (input_types, output_types) = (types_of(&proto.input), types_of(&proto.output));
        let node = Node::new(proto, opset)
            .with_input_types(&input_types)
            .with_output_types(&output_types);
        let op = ops::lookup(node.domain(), node.op_type())
            .ok_or_else(|| ModelError::UnsupportedOp(node.op_type().to_owned()))?;
        let outputs = op(&node, &args)
            .and_then(|outputs| super::narrow_integers::wrapped(&node, &args, outputs, &unlimited))
            .map_err(|e| {
                ModelError::Evaluation(format!("node {index} ({}): {e}", node.op_type()))
            })?;
        drop(args);
        for (name, value) in proto.output.iter().zip(outputs) {
            let read = last_use.contains_key(name.as_str()) || kept.contains(&name.as_str());
            if !name.is_empty() && read {
                values.insert(name.clone(), value);
            }
        }
        for name in &proto.input {
            if last_use.get(name.as_str()) == Some(&index) && !kept.contains(&name.as_str()) {
                values.remove(name);
            }
        }
    }
    kept.iter()
        .map(|name| {
            let value = values
                .get(*name)
                .cloned()
                .ok_or_else(|| ModelError::Evaluation(format!("{name:?} was not computed")))?;
            Ok(((*name).to_owned(), value))
        })
        .collect()
}

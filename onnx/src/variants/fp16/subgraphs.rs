//! fp16 inside subgraphs (If branches, Loop and Scan bodies): once the outer graph computes in fp16, a
//! body that read an fp32 value, held fp32 initializers or built fp32 constants would mix types. Each
//! body gets the outer graph's treatment: float initializers, constants and declared types narrowed,
//! reads of renamed outer values renamed, fp32-only operators wrapped in Casts.

use std::collections::HashSet;

use super::{fp32_slots, narrow_constants, non_float_values, push_between_casts, to_half};
use crate::ModelError;
use crate::proto::{GraphProto, NodeProto, ValueInfoProto, tensor_proto::DataType, type_proto};

/// Converts every subgraph of `node`. `rename` maps an outer value's name to its fp16 name,
/// `non_float` holds outer values known to be integers, `half` outer values held in fp16.
pub(super) fn convert_all(
    node: &mut NodeProto,
    opset: i64,
    rename: &dyn Fn(&str) -> String,
    non_float: &HashSet<String>,
    half: &HashSet<String>,
) -> Result<(), ModelError> {
    for attribute in &mut node.attribute {
        if let Some(graph) = attribute.g.as_mut() {
            convert(graph, opset, rename, non_float, half)?;
        }
        for graph in &mut attribute.graphs {
            convert(graph, opset, rename, non_float, half)?;
        }
    }
    Ok(())
}

fn narrow_declared_type(value: &mut ValueInfoProto) {
    if let Some(type_proto::Value::TensorType(t)) =
        value.r#type.as_mut().and_then(|t| t.value.as_mut())
        && t.elem_type == Some(DataType::Float as i32)
    {
        t.elem_type = Some(DataType::Float16 as i32);
    }
}

fn convert(
    graph: &mut GraphProto,
    opset: i64,
    outer_rename: &dyn Fn(&str) -> String,
    outer_non_float: &HashSet<String>,
    outer_half: &HashSet<String>,
) -> Result<(), ModelError> {
    let mut non_float = non_float_values(graph);
    non_float.extend(outer_non_float.iter().cloned());
    // Names the body defines shadow nothing (ONNX names are unique across scopes), but only names it
    // does not define are outer reads to rename.
    let local: HashSet<String> = graph
        .input
        .iter()
        .filter_map(|v| v.name.clone())
        .chain(graph.initializer.iter().filter_map(|t| t.name.clone()))
        .chain(graph.node.iter().flat_map(|n| n.output.iter().cloned()))
        .collect();
    let rename = |name: &str| -> String {
        if local.contains(name) {
            name.to_owned()
        } else {
            outer_rename(name)
        }
    };
    let mut half = outer_half.clone();
    for t in &mut graph.initializer {
        if t.data_type == Some(DataType::Float as i32) {
            *t = to_half(t)?;
            half.extend(t.name.clone());
        }
    }
    graph.input.iter_mut().for_each(narrow_declared_type);
    graph.output.iter_mut().for_each(narrow_declared_type);
    graph.value_info.clear(); // their float types would be stale
    let mut nodes = Vec::with_capacity(graph.node.len());
    for mut node in std::mem::take(&mut graph.node) {
        for input in node.input.iter_mut().filter(|i| !i.is_empty()) {
            *input = rename(input);
        }
        if narrow_constants(&mut node)? {
            half.extend(node.output.iter().cloned());
        }
        convert_all(&mut node, opset, &rename, &non_float, &half)?;
        // Every float value of a body is fp16 now (its initializers included), so every one in an
        // fp32 slot is widened.
        let slots = fp32_slots(&node, opset, &non_float);
        push_between_casts(
            node,
            (&slots.0, &slots.1),
            &non_float,
            &HashSet::new(),
            &mut nodes,
        );
    }
    graph.node = nodes;
    Ok(())
}

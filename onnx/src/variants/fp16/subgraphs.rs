//! fp16 inside subgraphs (If branches, Loop and Scan bodies): once the outer graph computes in fp16, a
//! body that read an fp32 value, held fp32 initializers or built fp32 constants would mix types. Each
//! body gets the outer graph's treatment: float initializers, constants and declared types narrowed,
//! reads of renamed outer values renamed, fp32-only operators wrapped in Casts.

use std::collections::HashSet;

use super::{FP32_ONLY_INPUTS, KEEP_FP32, cast, narrow_constants, non_float_values, to_half};
use crate::ModelError;
use crate::proto::{GraphProto, NodeProto, ValueInfoProto, tensor_proto::DataType, type_proto};

/// Converts every subgraph of `node`. `rename` maps an outer value's name to its fp16 name,
/// `non_float` holds outer values known to be integers, `half` outer values held in fp16.
pub(super) fn convert_all(
    node: &mut NodeProto,
    rename: &dyn Fn(&str) -> String,
    non_float: &HashSet<String>,
    half: &HashSet<String>,
) -> Result<(), ModelError> {
    for attribute in &mut node.attribute {
        if let Some(graph) = attribute.g.as_mut() {
            convert(graph, rename, non_float, half)?;
        }
        for graph in &mut attribute.graphs {
            convert(graph, rename, non_float, half)?;
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
        convert_all(&mut node, &rename, &non_float, &half)?;
        widen_where_needed(node, &non_float, &half, &mut nodes);
    }
    graph.node = nodes;
    Ok(())
}

/// Pushes `node` onto `nodes`, between Casts when it must compute in fp32: a kept operator's data
/// input and its outputs, and fp16 values in slots ONNX wants fp32 (parameters of kept operators,
/// Resize's scales).
fn widen_where_needed(
    mut node: NodeProto,
    non_float: &HashSet<String>,
    half: &HashSet<String>,
    nodes: &mut Vec<NodeProto>,
) {
    let op = node.op_type.clone().unwrap_or_default();
    let kept = KEEP_FP32.contains(&op.as_str())
        && node.input.first().is_some_and(|i| !non_float.contains(i));
    let slots: Vec<usize> = if kept {
        (1..node.input.len()).collect()
    } else {
        FP32_ONLY_INPUTS
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, slots)| slots.to_vec())
            .unwrap_or_default()
    };
    let tag = nodes.len();
    for (slot, input) in node.input.iter_mut().enumerate() {
        let widen = (kept && slot == 0 && !input.is_empty())
            || (slots.contains(&slot) && half.contains(input.as_str()));
        if widen {
            let wide = format!("{input}.fp32.{tag}.{slot}");
            nodes.push(cast(input, &wide, DataType::Float));
            *input = wide;
        }
    }
    if !kept {
        nodes.push(node);
        return;
    }
    let mut after = Vec::new();
    for output in node.output.iter_mut().filter(|o| !o.is_empty()) {
        let narrow = output.clone();
        *output = format!("{narrow}.fp32");
        after.push(cast(output, &narrow, DataType::Float16));
    }
    nodes.push(node);
    nodes.extend(after);
}

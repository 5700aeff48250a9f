//! Evaluates nodes whose inputs are all constant (initializers, Constant nodes, earlier folds) once, with
//! kiln's evaluator, and stores their results as initializers. Shape arithmetic on constant tensors
//! (Shape/Gather/Unsqueeze/Concat chains) collapses this way too.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use super::Pass;
use crate::ModelError;
use crate::eval::node::Node;
use crate::eval::{ops, tensor_io};
use crate::proto::{ModelProto, TensorProto, tensor_proto::DataType};

/// Results up to this size may be larger than their inputs (shape arithmetic, small tables).
const SMALL_RESULT_BYTES: usize = 1024;
/// The element types the evaluator holds exactly, so a folded result can be written back as the same type.
const FAITHFUL_TYPES: &[DataType] = &[
    DataType::Float,
    DataType::Float16,
    DataType::Int64,
    DataType::Bool,
];

/// The type a node declares for its output by attribute (Constant, ConstantOfShape, EyeLike), when it does.
fn declared_type(node: &crate::proto::NodeProto) -> Option<i32> {
    let attribute = |name: &str| {
        node.attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
    };
    match node.op_type.as_deref()? {
        "Constant" | "ConstantOfShape" => attribute("value")
            .and_then(|a| a.t.as_ref())
            .and_then(|t| t.data_type),
        "EyeLike" => attribute("dtype").and_then(|a| a.i).map(|t| t as i32),
        _ => None,
    }
}

pub struct FoldConstants;

/// Operators whose result is boolean (held as u8 by the evaluator).
const BOOLEAN_RESULTS: &[&str] = &[
    "Equal",
    "Greater",
    "Less",
    "GreaterOrEqual",
    "LessOrEqual",
    "Not",
    "And",
    "Or",
    "Xor",
    "IsNaN",
    "IsInf",
];

/// The ONNX type to write a folded result as, or `None` when the evaluator's dtype cannot say it
/// faithfully (int32 inputs, for one, come back as int64).
fn result_type(
    op: &str,
    node: &crate::proto::NodeProto,
    tensor: &Tensor,
    input_types: &[i32],
) -> Option<DataType> {
    let cast_to = node
        .attribute
        .iter()
        .find(|a| a.name.as_deref() == Some("to"))
        .and_then(|a| a.i);
    let narrow_ints = input_types.iter().any(|&t| {
        ![
            DataType::Float as i32,
            DataType::Float16 as i32,
            DataType::Int64 as i32,
            DataType::Bool as i32,
        ]
        .contains(&t)
    });
    match tensor.dtype() {
        DType::F32 if op != "Cast" || cast_to == Some(DataType::Float as i64) => {
            Some(DataType::Float)
        }
        DType::F16 if op != "Cast" || cast_to == Some(DataType::Float16 as i64) => {
            Some(DataType::Float16)
        }
        DType::I64
            if (op == "Cast" && cast_to == Some(DataType::Int64 as i64))
                || (op != "Cast" && !narrow_ints) =>
        {
            Some(DataType::Int64)
        }
        DType::U8 if BOOLEAN_RESULTS.contains(&op) || cast_to == Some(DataType::Bool as i64) => {
            Some(DataType::Bool)
        }
        _ => None,
    }
}

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "fold-constants"
    }

    fn run(&self, model: &mut ModelProto) -> Result<bool, ModelError> {
        let opset = crate::model_check::ai_onnx_opset(model).unwrap_or(1);
        let Some(graph) = model.graph.as_mut() else {
            return Ok(false);
        };
        let overridable: std::collections::HashSet<String> =
            graph.input.iter().filter_map(|v| v.name.clone()).collect();
        let mut types: HashMap<String, i32> = HashMap::new();
        let mut values: HashMap<String, Tensor> = HashMap::new();
        let device = Device::Cpu;
        for t in &graph.initializer {
            let name = t.name.clone().unwrap_or_default();
            if !overridable.contains(&name) {
                types.insert(name, t.data_type.unwrap_or(0));
            }
        }
        let usage = super::usage::Usage::of(graph);
        let mut folded: Vec<usize> = Vec::new();
        let mut new_initializers: Vec<TensorProto> = Vec::new();
        for (index, proto) in graph.node.iter().enumerate() {
            let op = proto.op_type.as_deref().unwrap_or("");
            let domain = proto.domain.as_deref().unwrap_or("");
            let Some(f) = ops::lookup(domain, op) else {
                continue;
            };
            if declared_type(proto).is_some_and(|t| !FAITHFUL_TYPES.iter().any(|f| *f as i32 == t))
            {
                continue;
            }
            let has_subgraph = proto
                .attribute
                .iter()
                .any(|a| a.g.is_some() || !a.graphs.is_empty());
            let inputs: Vec<&String> = proto.input.iter().filter(|n| !n.is_empty()).collect();
            if has_subgraph
                || proto.output.len() != 1
                || !inputs.iter().all(|n| types.contains_key(*n))
            {
                continue;
            }
            let mut args = Vec::with_capacity(proto.input.len());
            let mut ok = true;
            for name in &proto.input {
                if name.is_empty() {
                    args.push(None);
                    continue;
                }
                if !values.contains_key(name) {
                    let Some(t) = graph
                        .initializer
                        .iter()
                        .chain(new_initializers.iter())
                        .find(|t| t.name.as_deref() == Some(name))
                    else {
                        ok = false;
                        break;
                    };
                    match tensor_io::from_proto(t, None, &device) {
                        Ok(v) => {
                            values.insert(name.clone(), v);
                        }
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                }
                args.push(values.get(name).cloned());
            }
            if !ok {
                continue;
            }
            let Ok(mut out) = f(&Node::new(proto, opset), &args) else {
                continue;
            };
            let result = out.remove(0);
            let bytes = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
            let input_bytes: usize = args.iter().flatten().map(bytes).sum();
            // Folding must not inflate the model: no expanded constants, no weights widened by a Cast or
            // a DequantizeLinear (which would also undo a quantized model's structure).
            if op != "Constant" && bytes(&result) > input_bytes.max(SMALL_RESULT_BYTES) {
                continue;
            }
            // Nor duplicate weights: a large result computed from an initializer other nodes still read
            // (GPT-2's head, a Transpose of the tied embedding) would keep both copies.
            let shared = proto.input.iter().any(|n| {
                !n.is_empty() && usage.reader_count(n) > 1 && usage.initializers.contains(n)
            });
            if shared && bytes(&result) > SMALL_RESULT_BYTES {
                continue;
            }
            let input_types: Vec<i32> = inputs.iter().map(|n| types[*n]).collect();
            let Some(onnx_type) = result_type(op, proto, &result, &input_types) else {
                continue;
            };
            let name = proto.output[0].clone();
            let Ok(mut stored) = tensor_io::to_proto(&name, &result) else {
                continue;
            };
            stored.data_type = Some(onnx_type as i32);
            types.insert(name.clone(), onnx_type as i32);
            values.insert(name, result);
            new_initializers.push(stored);
            folded.push(index);
        }
        if folded.is_empty() {
            return Ok(false);
        }
        let mut index = 0;
        graph.node.retain(|_| {
            index += 1;
            !folded.contains(&(index - 1))
        });
        graph.initializer.extend(new_initializers);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::tests::{mlp, outputs_match};

    #[test]
    fn a_constant_subgraph_becomes_one_initializer() {
        let before = mlp(false);
        let mut after = before.clone();
        let count = |m: &ModelProto| {
            m.graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .filter(|n| {
                    n.op_type.as_deref() == Some("Constant") || n.op_type.as_deref() == Some("Sqrt")
                })
                .count()
        };
        assert!(count(&before) > 0);
        assert!(FoldConstants.run(&mut after).unwrap());
        assert_eq!(count(&after), 0);
        outputs_match(&before, &after);
    }

    /// An int32 Constant would come back from the evaluator as int64: it stays a node.
    #[test]
    fn constants_of_types_the_evaluator_widens_are_left_alone() {
        let mut model = mlp(false);
        let graph = model.graph.as_mut().unwrap();
        graph.node.insert(
            0,
            crate::proto::NodeProto {
                op_type: Some("Constant".into()),
                output: vec!["int32_constant".into()],
                attribute: vec![crate::proto::AttributeProto {
                    name: Some("value".into()),
                    r#type: Some(4),
                    t: Some(crate::proto::TensorProto {
                        data_type: Some(DataType::Int32 as i32),
                        dims: vec![1],
                        int32_data: vec![7],
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        FoldConstants.run(&mut model).unwrap();
        let graph = model.graph.as_ref().unwrap();
        assert!(
            graph
                .node
                .iter()
                .any(|n| n.output.first().map(String::as_str) == Some("int32_constant"))
        );
        assert!(
            graph
                .initializer
                .iter()
                .all(|t| t.name.as_deref() != Some("int32_constant"))
        );
    }
}

//! Fuses MatMul + Add into Gemm where Gemm's contract holds: a 2-D left operand (known from the graph
//! input's declared shape or from 2-D producers), a 2-D constant right operand, and a constant bias that
//! broadcasts over the rows.

use std::collections::HashMap;

use super::Pass;
use super::usage::Usage;
use crate::ModelError;
use crate::proto::{ModelProto, NodeProto, type_proto};

pub struct FuseMatMulAdd;

/// Ranks known for certain without shape inference.
fn known_ranks(graph: &crate::proto::GraphProto) -> HashMap<String, usize> {
    let mut ranks = HashMap::new();
    for input in &graph.input {
        if let Some(type_proto::Value::TensorType(t)) =
            input.r#type.as_ref().and_then(|t| t.value.as_ref())
            && let Some(shape) = &t.shape
        {
            ranks.insert(input.name.clone().unwrap_or_default(), shape.dim.len());
        }
    }
    for t in &graph.initializer {
        ranks.insert(t.name.clone().unwrap_or_default(), t.dims.len());
    }
    for node in &graph.node {
        let first = node.input.first().and_then(|i| ranks.get(i)).copied();
        let rank = match node.op_type.as_deref().unwrap_or("") {
            "Flatten" | "Gemm" => Some(2),
            "Relu" | "Sigmoid" | "Tanh" | "Erf" | "Neg" | "Sqrt" | "Exp" | "Clip" | "LeakyRelu"
            | "HardSigmoid" | "HardSwish" | "Softmax" => first,
            "MatMul" => match (first, node.input.get(1).and_then(|i| ranks.get(i))) {
                (Some(2), Some(2)) => Some(2),
                _ => None,
            },
            _ => None,
        };
        if let (Some(rank), Some(output)) = (rank, node.output.first()) {
            ranks.insert(output.clone(), rank);
        }
    }
    ranks
}

impl Pass for FuseMatMulAdd {
    fn name(&self) -> &'static str {
        "fuse-matmul-add"
    }

    fn run(&self, model: &mut ModelProto) -> Result<bool, ModelError> {
        // Before opset 7, Gemm's bias needs an explicit `broadcast` attribute.
        let opset = crate::model_check::ai_onnx_opset(model).unwrap_or(1);
        if opset < 7 {
            return Ok(false);
        }
        let Some(graph) = model.graph.as_mut() else {
            return Ok(false);
        };
        let mut changed = false;
        loop {
            let usage = Usage::of(graph);
            let ranks = known_ranks(graph);
            let initializer_dims = |name: &str| {
                graph
                    .initializer
                    .iter()
                    .find(|t| t.name.as_deref() == Some(name))
                    .map(|t| t.dims.clone())
            };
            let found = graph.node.iter().enumerate().find_map(|(mi, mm)| {
                if mm.op_type.as_deref() != Some("MatMul")
                    || !super::in_default_domain(mm)
                    || mm.input.len() != 2
                {
                    return None;
                }
                let (a, b) = (&mm.input[0], &mm.input[1]);
                let b_dims = initializer_dims(b)?;
                if ranks.get(a) != Some(&2) || b_dims.len() != 2 {
                    return None;
                }
                let y = mm.output.first()?;
                if !usage.only_read_by_one(y) {
                    return None;
                }
                let ai = usage.readers[y][0];
                let add = &graph.node[ai];
                if add.op_type.as_deref() != Some("Add")
                    || !super::in_default_domain(add)
                    || add.input.len() != 2
                {
                    return None;
                }
                let c = if &add.input[0] == y {
                    &add.input[1]
                } else {
                    &add.input[0]
                };
                let c_dims = initializer_dims(c)?;
                let n = b_dims[1];
                let broadcasts = match c_dims.as_slice() {
                    [len] => *len == n || *len == 1,
                    [1, len] => *len == n || *len == 1,
                    _ => false,
                };
                broadcasts.then(|| {
                    (
                        mi,
                        ai,
                        a.clone(),
                        b.clone(),
                        c.clone(),
                        add.output[0].clone(),
                    )
                })
            });
            let Some((mi, ai, a, b, c, out)) = found else {
                break;
            };
            graph.node[mi] = NodeProto {
                name: graph.node[mi].name.clone(),
                op_type: Some("Gemm".to_owned()),
                input: vec![a, b, c],
                output: vec![out],
                ..Default::default()
            };
            graph.node.remove(ai);
            changed = true;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::tests::{mlp, outputs_match};

    #[test]
    fn matmul_and_bias_become_gemm() {
        let before = mlp(false);
        let mut after = before.clone();
        assert!(FuseMatMulAdd.run(&mut after).unwrap());
        let ops: Vec<&str> = after
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .filter_map(|n| n.op_type.as_deref())
            .collect();
        assert!(ops.contains(&"Gemm") && !ops.contains(&"MatMul"), "{ops:?}");
        outputs_match(&before, &after);
    }

    /// A MatMul of another domain is a different operator that happens to share the name.
    #[test]
    fn a_matmul_of_another_domain_is_left_alone() {
        let mut model = mlp(false);
        for node in &mut model.graph.as_mut().unwrap().node {
            if node.op_type.as_deref() == Some("MatMul") {
                node.domain = Some("org.example.custom".into());
            }
        }
        assert!(!FuseMatMulAdd.run(&mut model).unwrap());
    }
}

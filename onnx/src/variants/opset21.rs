//! Moving a model's default-domain opset up to 21, which blocked `DequantizeLinear` needs. Only what
//! changed meaning on the way is rewritten: the Reduce operators (but ReduceSum) took `axes` as an
//! attribute until opset 18 and as an input since. Operators whose meaning changed otherwise (DFT and
//! GridSample at 20) are refused, naming them; every other change between 13 and 21 only added types or
//! optional attributes and inputs.

use std::collections::HashSet;

use crate::ModelError;
use crate::proto::{
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, tensor_proto::DataType,
};

pub const OPSET: i64 = 21;
/// Opset 21 needs IR 10.
const IR_VERSION: i64 = 10;

/// Operators that took `axes` as an attribute before opset 18 and as the second input from 18.
const AXES_BECAME_INPUT: &[&str] = &[
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
];

/// Operators whose meaning changed before 21 in ways a rewrite here does not follow, with the opset.
const CHANGED: &[(&str, i64)] = &[("DFT", 20), ("GridSample", 20)];

/// Upgrades `model` in place. Models with subgraphs or below opset 13 are refused (their older
/// operators changed in more ways than this follows).
pub fn upgrade(model: &mut ModelProto) -> Result<(), ModelError> {
    let from = crate::model_check::ai_onnx_opset(model).unwrap_or(1);
    if from >= OPSET {
        return Ok(());
    }
    if from < 13 {
        return Err(ModelError::Unsupported(format!(
            "the model declares opset {from}; blocked DequantizeLinear needs opset {OPSET}, and kiln \
             upgrades models from opset 13 on"
        )));
    }
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| ModelError::InvalidModel("the model has no graph".to_owned()))?;
    let in_default = |n: &NodeProto| {
        n.domain
            .as_deref()
            .is_none_or(|d| d.is_empty() || d == "ai.onnx")
    };
    if graph.node.iter().any(|n| {
        n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
    }) {
        return Err(ModelError::Unsupported(
            "a model with subgraphs (If, Loop, Scan) is not upgraded to opset 21".to_owned(),
        ));
    }
    if let Some((op, at)) = graph.node.iter().filter(|n| in_default(n)).find_map(|n| {
        let op = n.op_type.as_deref().unwrap_or("");
        CHANGED
            .iter()
            .find(|(o, at)| *o == op && *at > from)
            .copied()
    }) {
        return Err(ModelError::Unsupported(format!(
            "{op} changed meaning at opset {at}; the model (opset {from}) is not upgraded to {OPSET}"
        )));
    }
    let mut taken: HashSet<String> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.clone())
        .collect();
    let mut added = Vec::new();
    for (index, node) in graph.node.iter_mut().enumerate() {
        let op = node.op_type.as_deref().unwrap_or("");
        if !in_default(node) || !AXES_BECAME_INPUT.contains(&op) {
            continue;
        }
        let Some(position) = node
            .attribute
            .iter()
            .position(|a| a.name.as_deref() == Some("axes"))
        else {
            continue;
        };
        let axes = node.attribute.remove(position).ints;
        let mut name = format!("{op}_{index}.axes");
        while !taken.insert(name.clone()) {
            name.push('_');
        }
        added.push(TensorProto {
            name: Some(name.clone()),
            dims: vec![axes.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            int64_data: axes,
            ..Default::default()
        });
        node.input.truncate(1);
        node.input.push(name);
    }
    graph.initializer.extend(added);
    for import in &mut model.opset_import {
        if import
            .domain
            .as_deref()
            .is_none_or(|d| d.is_empty() || d == "ai.onnx")
        {
            import.version = Some(OPSET);
        }
    }
    if !model
        .opset_import
        .iter()
        .any(|i| i.domain.as_deref().is_none_or(str::is_empty))
    {
        model.opset_import.push(OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        });
    }
    model.ir_version = Some(model.ir_version.unwrap_or(IR_VERSION).max(IR_VERSION));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph_builder::{DimSpec, GraphBuilder, attr_int, attr_ints};

    fn reduce_model(op: &str) -> ModelProto {
        let mut g = GraphBuilder::new();
        let x = g.input(
            "x",
            DataType::Float,
            &[DimSpec::Fixed(2), DimSpec::Fixed(3)],
        );
        g.op_into(
            op,
            &[&x],
            vec![attr_ints("axes", &[-1]), attr_int("keepdims", 1)],
            "y",
        );
        g.output(
            "y",
            DataType::Float,
            &[DimSpec::Fixed(2), DimSpec::Fixed(1)],
        );
        g.finish("reduce", 17, vec![])
    }

    #[test]
    fn reduce_axes_move_from_attribute_to_input_and_compute_the_same() {
        use candle_core::{Device, Tensor};
        let before = reduce_model("ReduceMean");
        let mut after = before.clone();
        upgrade(&mut after).unwrap();
        assert_eq!(crate::model_check::ai_onnx_opset(&after), Some(21));
        assert_eq!(after.ir_version, Some(10));
        let node = &after.graph.as_ref().unwrap().node[0];
        assert!(
            node.attribute
                .iter()
                .all(|a| a.name.as_deref() != Some("axes"))
        );
        assert_eq!(node.input.len(), 2);
        let x = Tensor::new(&[[1f32, 2., 3.], [4., 5., 9.]], &Device::Cpu).unwrap();
        let inputs = std::collections::HashMap::from([("x".to_owned(), x)]);
        let run = |m: &ModelProto| {
            crate::eval::Session::new(m, None, &Device::Cpu)
                .unwrap()
                .run(&inputs)
                .unwrap()[0]
                .1
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(run(&before), run(&after));
    }

    #[test]
    fn an_operator_that_changed_meaning_is_refused_by_name() {
        let mut model = reduce_model("GridSample");
        let err = upgrade(&mut model).unwrap_err().to_string();
        assert!(
            err.contains("GridSample changed meaning at opset 20"),
            "{err}"
        );
    }
}

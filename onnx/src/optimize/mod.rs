//! Graph optimization passes on the ONNX protobuf types. Each pass is its own module with its own tests,
//! rewrites a model in place and reports what it changed; [`optimize`] runs them in a fixed order until
//! nothing changes, so optimizing twice gives the same bytes.

mod batchnorm_fold;
mod constant_folding;
mod dead_code;
mod gemm_fusion;
mod identity;
pub(crate) mod usage;

use prost::Message;
use serde::Serialize;

use crate::ModelError;
use crate::proto::ModelProto;

/// What one pass changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub pass: &'static str,
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub bytes_before: usize,
    pub bytes_after: usize,
}

/// A rewrite of a model.
pub trait Pass {
    fn name(&self) -> &'static str;
    /// Rewrites `model`; returns whether anything changed.
    fn run(&self, model: &mut ModelProto) -> Result<bool, ModelError>;
}

/// The passes, in the order they run.
pub fn passes() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(identity::EliminateIdentity),
        Box::new(constant_folding::FoldConstants),
        Box::new(batchnorm_fold::FoldBatchNormIntoConv),
        Box::new(gemm_fusion::FuseMatMulAdd),
        Box::new(dead_code::EliminateDeadCode),
    ]
}

/// Removes nodes and initializers nothing reads (after a rewrite outside the passes).
pub fn remove_dead_code(model: &mut ModelProto) -> Result<bool, ModelError> {
    dead_code::EliminateDeadCode.run(model)
}

/// Whether a graph output is a tensor (or says nothing of its type), not a sequence or a map.
fn is_tensor(output: &crate::proto::ValueInfoProto) -> bool {
    matches!(
        output.r#type.as_ref().and_then(|t| t.value.as_ref()),
        None | Some(crate::proto::type_proto::Value::TensorType(_))
    )
}

/// Removes the graph outputs that are not tensors (a sequence, a map: skl2onnx's ZipMap) and the nodes
/// only they needed, for an engine that serves tensors alone.
pub fn remove_non_tensor_outputs(model: &mut ModelProto) -> Result<(), ModelError> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(());
    };
    let before = graph.output.len();
    graph.output.retain(is_tensor);
    if graph.output.len() != before {
        remove_dead_code(model)?;
    }
    Ok(())
}

/// `model` with only its tensor outputs (see [`remove_non_tensor_outputs`]): borrowed when every output
/// is a tensor, so that only a model with a ZipMap is copied.
pub fn tensor_outputs_only(
    model: &ModelProto,
) -> Result<std::borrow::Cow<'_, ModelProto>, ModelError> {
    if model.graph.iter().flat_map(|g| &g.output).all(is_tensor) {
        return Ok(std::borrow::Cow::Borrowed(model));
    }
    let mut pruned = model.clone();
    remove_non_tensor_outputs(&mut pruned)?;
    Ok(std::borrow::Cow::Owned(pruned))
}

/// Whether a node is a standard ONNX operator: the passes match operators by name, and another domain
/// (ONNX Runtime's NHWC copies, a custom domain) may reuse a name with other semantics.
pub(crate) fn in_default_domain(node: &crate::proto::NodeProto) -> bool {
    matches!(node.domain.as_deref(), None | Some("" | "ai.onnx"))
}

fn node_count(model: &ModelProto) -> usize {
    model.graph.as_ref().map_or(0, |g| g.node.len())
}

/// Runs every pass (repeating the sequence while any pass changes the model, at most 4 rounds) and
/// reports each pass's total effect.
pub fn optimize(model: &mut ModelProto) -> Result<Vec<PassReport>, ModelError> {
    let passes = passes();
    let mut reports: Vec<PassReport> = passes
        .iter()
        .map(|p| PassReport {
            pass: p.name(),
            nodes_before: 0,
            nodes_after: 0,
            bytes_before: 0,
            bytes_after: 0,
        })
        .collect();
    for round in 0..4 {
        let mut changed = false;
        for (pass, report) in passes.iter().zip(&mut reports) {
            let (nodes, bytes) = (node_count(model), model.encoded_len());
            if round == 0 {
                report.nodes_before = nodes;
                report.bytes_before = bytes;
            }
            changed |= pass.run(model)?;
            report.nodes_after = node_count(model);
            report.bytes_after = model.encoded_len();
        }
        if !changed {
            break;
        }
    }
    Ok(reports)
}

#[cfg(test)]
pub(crate) mod tests {
    //! The check that a rewrite changed no output.
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};

    use crate::eval::Session;
    use crate::proto::ModelProto;
    pub use crate::sample_models::{cnn_graph as cnn, mlp_graph as mlp};

    /// Both models give the same outputs (relative L2 below 1e-5) on random inputs with batch 2.
    pub fn outputs_match(a: &ModelProto, b: &ModelProto) {
        let graph = a.graph.as_ref().unwrap();
        let shape: Vec<usize> = match graph.input[0]
            .r#type
            .as_ref()
            .and_then(|t| t.value.as_ref())
        {
            Some(crate::proto::type_proto::Value::TensorType(t)) => t
                .shape
                .as_ref()
                .unwrap()
                .dim
                .iter()
                .map(|d| match &d.value {
                    Some(crate::proto::tensor_shape_proto::dimension::Value::DimValue(v)) => {
                        *v as usize
                    }
                    _ => 2,
                })
                .collect(),
            _ => panic!("tensor input"),
        };
        let inputs = HashMap::from([(
            graph.input[0].name.clone().unwrap(),
            Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap(),
        )]);
        let run = |m: &ModelProto| {
            Session::new(m, None, &Device::Cpu)
                .unwrap()
                .run(&inputs)
                .unwrap()
        };
        let (x, y) = (run(a), run(b));
        let c = crate::validate::compare("out", &y[0].1, &x[0].1).unwrap();
        assert!(c.rel_l2_error < 1e-5, "{c:?}");
    }

    /// A name only a branch reads (an initializer, an Identity's and a Constant's outputs) stays
    /// defined through every pass, and the model computes what it computed.
    #[test]
    fn subgraphs_keep_their_outer_reads_through_every_pass() {
        use crate::eval::control_flow::tests::{if_inputs, if_model, run};
        let before = if_model();
        let mut after = before.clone();
        super::optimize(&mut after).unwrap();
        for cond in [true, false] {
            let (x, y) = (
                run(&before, &if_inputs(cond)).unwrap(),
                run(&after, &if_inputs(cond)).unwrap(),
            );
            let c = crate::validate::compare("y", &y[0], &x[0]).unwrap();
            assert!(c.max_abs_error == 0.0, "cond {cond}: {c:?}");
        }
        let graph = after.graph.as_ref().unwrap();
        assert!(
            graph
                .node
                .iter()
                .any(|n| n.op_type.as_deref() == Some("If"))
        );
        assert!(
            graph
                .initializer
                .iter()
                .any(|t| t.name.as_deref() == Some("b_else"))
        );
    }
}

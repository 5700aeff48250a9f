//! The operators whose attributes are graphs: `If`, `Loop` and `Scan`. Unlike [`super::ops`], they run
//! subgraphs, so they receive a [`Call`]: the node, its prepared subgraphs, the run's [`Execution`] (with
//! its iteration budget) and the scope the subgraphs read outer values from.

mod loop_op;
mod scan;
#[cfg(test)]
pub(crate) mod tests;

use candle_core::{DType, Device, Tensor};

use super::graph::{Execution, PreparedGraph, Scope};
use super::node::{self, Node};
use super::run_memory::{Kept, tensor_bytes};
use super::tensor_io;
use crate::ModelError;
use crate::proto::{GraphProto, ValueInfoProto, tensor_shape_proto::dimension, type_proto};

/// Everything a control-flow operator needs to run its subgraphs.
pub struct Call<'a> {
    pub execution: &'a Execution<'a>,
    pub node: &'a Node<'a>,
    pub subgraphs: &'a [(String, PreparedGraph)],
    pub scope: &'a Scope<'a>,
}

impl Call<'_> {
    /// The subgraph held by attribute `name`.
    fn body(&self, name: &str) -> Result<(&GraphProto, &PreparedGraph), ModelError> {
        let graph = self.node.graph(name);
        let prepared = self
            .subgraphs
            .iter()
            .find(|(attribute, _)| attribute == name)
            .map(|(_, p)| p);
        match (graph, prepared) {
            (Some(g), Some(p)) => Ok((g, p)),
            _ => Err(ModelError::Evaluation(format!(
                "the graph attribute {name:?} is missing"
            ))),
        }
    }

    /// Runs the subgraph of attribute `name` on positional `inputs`, seeing this node's scope.
    fn run_body(&self, name: &str, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ModelError> {
        let (graph, prepared) = self.body(name)?;
        self.execution
            .run_subgraph(graph, prepared, inputs, self.scope)
    }

    fn device(&self) -> &Device {
        self.execution.device
    }

    /// What this node keeps between its body runs, counted in the run's memory until dropped.
    fn kept(&self) -> Kept<'_> {
        self.execution.memory().kept()
    }

    /// Per-iteration values stacked along a new first axis, refused first where the stacked copy would
    /// not fit beside them; with no iteration, an empty tensor of the type and shape the body declares
    /// for that output.
    fn stack_iterations(
        &self,
        values: &[Tensor],
        declared: Option<&ValueInfoProto>,
    ) -> Result<Tensor, ModelError> {
        let bytes: u128 = values.iter().map(|v| u128::from(tensor_bytes(v))).sum();
        self.execution.memory().has_room(bytes)?;
        stack_iterations(values, declared, self.device())
    }
}

pub type ControlFn = fn(&Call<'_>, &[Option<Tensor>]) -> Result<Vec<Tensor>, ModelError>;

/// The control-flow operator for a node, when it is one (default `ai.onnx` domain only).
pub fn lookup(domain: &str, op_type: &str) -> Option<ControlFn> {
    if !(domain.is_empty() || domain == "ai.onnx") {
        return None;
    }
    Some(match op_type {
        "If" => if_,
        "Loop" => loop_op::loop_,
        "Scan" => scan::scan,
        _ => return None,
    })
}

/// The operators [`lookup`] knows (beside [`super::ops::registered`]).
pub const CONTROL_FLOW_OPS: &[&str] = &["If", "Loop", "Scan"];

/// A one-element tensor read as a boolean (a condition).
fn truth(tensor: &Tensor, what: &str) -> Result<bool, ModelError> {
    if tensor.elem_count() != 1 {
        return Err(ModelError::Evaluation(format!(
            "{what} must hold one element, not {:?}",
            tensor.dims()
        )));
    }
    let value = tensor
        .flatten_all()?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?[0];
    Ok(value != 0.0)
}

/// A boolean scalar as the evaluator holds booleans (u8).
fn boolean(value: bool, device: &Device) -> Result<Tensor, ModelError> {
    Ok(Tensor::new(u8::from(value), device)?)
}

/// Per-iteration values stacked along a new first axis; with no iteration, an empty tensor of the
/// type and shape the body declares for that output.
fn stack_iterations(
    values: &[Tensor],
    declared: Option<&ValueInfoProto>,
    device: &Device,
) -> Result<Tensor, ModelError> {
    if !values.is_empty() {
        return Ok(Tensor::stack(values, 0)?);
    }
    let tensor_type = declared
        .and_then(|v| v.r#type.as_ref())
        .and_then(|t| t.value.as_ref())
        .and_then(|v| match v {
            type_proto::Value::TensorType(t) => Some(t),
            _ => None,
        });
    let dtype = tensor_type
        .and_then(|t| t.elem_type)
        .and_then(tensor_io::dtype_of)
        .unwrap_or(DType::F32);
    let mut shape = vec![0usize];
    if let Some(dims) = tensor_type.and_then(|t| t.shape.as_ref()) {
        shape.extend(dims.dim.iter().map(|d| match d.value {
            Some(dimension::Value::DimValue(v)) => usize::try_from(v).unwrap_or(0),
            _ => 0,
        }));
    }
    Ok(Tensor::zeros(shape, dtype, device)?)
}

/// If: runs `then_branch` or `else_branch` by the condition; the branch's outputs are the node's.
fn if_(call: &Call<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>, ModelError> {
    let cond = truth(node::required(inputs, 0)?, "If's condition")?;
    let branch = if cond { "then_branch" } else { "else_branch" };
    let outputs = call.run_body(branch, Vec::new())?;
    if outputs.len() != call.node.output_count() {
        return Err(ModelError::Evaluation(format!(
            "{branch} computes {} outputs and the node declares {}",
            outputs.len(),
            call.node.output_count()
        )));
    }
    Ok(outputs)
}

//! kiln's ONNX evaluator: a graph interpreter on candle tensors whose operators each live in their own
//! module with their own tests ([`ops`]), looked up by name, and told the opset the model declares (ONNX
//! changed several operators' inputs and attributes between opsets; the evaluator honours each).
//!
//! Initializers are decoded once per [`Session`] and stay resident on its device, so repeated runs (a
//! benchmark) measure inference, not weight uploads.

pub mod float8;
pub mod node;
pub mod ops;
pub mod tensor_io;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::ModelError;
use crate::proto::{GraphProto, ModelProto};
use node::Node;

/// A model ready to run: graph, resident weights, declared opset.
pub struct Session {
    graph: GraphProto,
    initializers: HashMap<String, Tensor>,
    opset: i64,
    device: Device,
}

impl Session {
    /// Prepares a model; `base_dir` is the model's folder, for external data.
    pub fn new(
        model: &ModelProto,
        base_dir: Option<&Path>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let graph = model
            .graph
            .clone()
            .ok_or_else(|| ModelError::InvalidModel("the model has no graph".to_owned()))?;
        let opset = crate::model_check::ai_onnx_opset(model).ok_or_else(|| {
            ModelError::InvalidModel("the model imports no ai.onnx opset".to_owned())
        })?;
        let mut initializers = HashMap::new();
        for tensor in &graph.initializer {
            let name = tensor.name.clone().unwrap_or_default();
            initializers.insert(name, tensor_io::from_proto(tensor, base_dir, device)?);
        }
        let unsupported = ops::unsupported_ops(model);
        if !unsupported.is_empty() {
            return Err(ModelError::UnsupportedOp(unsupported.join(", ")));
        }
        Ok(Self {
            graph,
            initializers,
            opset,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the graph on named inputs; returns the graph outputs in declaration order.
    pub fn run(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, ModelError> {
        let mut values: HashMap<&str, Tensor> = HashMap::new();
        for input in &self.graph.input {
            let name = input.name.as_deref().unwrap_or("");
            if self.initializers.contains_key(name) {
                continue;
            }
            let value = inputs
                .get(name)
                .ok_or_else(|| ModelError::Evaluation(format!("input {name:?} was not given")))?;
            values.insert(name, value.to_device(&self.device)?);
        }
        for (index, proto) in self.graph.node.iter().enumerate() {
            let node = Node::new(proto, self.opset);
            let op = ops::lookup(node.domain(), node.op_type()).expect("checked in Session::new");
            let args = proto
                .input
                .iter()
                .map(|name| {
                    if name.is_empty() {
                        return Ok(None);
                    }
                    values
                        .get(name.as_str())
                        .or_else(|| self.initializers.get(name))
                        .cloned()
                        .map(Some)
                        .ok_or_else(|| ModelError::Evaluation(format!("{name:?} is not defined")))
                })
                .collect::<Result<Vec<_>, ModelError>>()?;
            let outputs = op(&node, &args).map_err(|e| {
                let detail = match e {
                    ModelError::Evaluation(m) => m,
                    other => other.to_string(),
                };
                ModelError::Evaluation(format!("node {index} ({}): {detail}", node.op_type()))
            })?;
            for (name, value) in proto.output.iter().zip(outputs) {
                if !name.is_empty() {
                    // Some operators build small tensors (constants, shapes) on the CPU; on a GPU session they
                    // move to the device so that the next operator sees one device.
                    let value = if value.device().same_device(&self.device) {
                        value
                    } else {
                        value.to_device(&self.device)?
                    };
                    values.insert(name, value);
                }
            }
        }
        self.graph
            .output
            .iter()
            .map(|output| {
                let name = output.name.clone().unwrap_or_default();
                let value = values
                    .get(name.as_str())
                    .or_else(|| self.initializers.get(&name))
                    .cloned()
                    .ok_or_else(|| {
                        ModelError::Evaluation(format!("output {name:?} was not computed"))
                    })?;
                Ok((name, value))
            })
            .collect()
    }
}

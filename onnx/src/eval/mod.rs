//! kiln's ONNX evaluator: a graph interpreter on candle tensors whose operators each live in their own
//! module with their own tests ([`ops`]), looked up by name, and told the opset the model declares (ONNX
//! changed several operators' inputs and attributes between opsets; the evaluator honours each).
//!
//! Initializers are decoded once per [`Session`] and stay resident on its device, so repeated runs (a
//! benchmark) measure inference, not weight uploads.
//!
//! [`graph`] runs a graph over nested scopes, so the control-flow operators ([`control_flow`]: If,
//! Loop, Scan) run their subgraphs with the values of every enclosing graph visible by name. Subgraph
//! nesting and loop iterations per run are capped ([`graph::MAX_NESTING`], [`graph::ITERATION_BUDGET`]):
//! a hostile model fails with an error that says so.

pub mod control_flow;
pub mod derived;
pub mod float8;
pub mod graph;
mod liveness;
pub mod narrow_integers;
pub mod node;
pub mod ops;
mod output_bound;
pub mod profile;
pub(crate) mod run_memory;
pub mod streaming;
pub mod tensor_io;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};

use crate::ModelError;
use crate::proto::{GraphProto, ModelProto};
use graph::{Execution, PreparedGraph, Scope};

/// A model ready to run: graph, resident weights (subgraphs' included), declared opset.
pub struct Session {
    graph: GraphProto,
    prepared: PreparedGraph,
    opset: i64,
    device: Device,
    iteration_budget: u64,
    /// The bytes a run's values may hold together (`None`: no limit).
    memory_limit: Option<u64>,
    /// Set from another thread to stop the runs in progress.
    stop: Option<Arc<AtomicBool>>,
}

impl Session {
    /// Prepares a model; `base_dir` is the model's folder, for external data. Fails naming every
    /// operator kiln lacks, in the graph or in any subgraph.
    pub fn new(
        model: &ModelProto,
        base_dir: Option<&Path>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let graph = model
            .graph
            .clone()
            .ok_or_else(|| ModelError::InvalidModel("the model has no graph".to_owned()))?;
        // A model of other domains only (an ai.onnx.ml classifier) has no default-domain node for the
        // opset to matter to; its operators are reported below as ones kiln cannot run.
        let opset = crate::model_check::ai_onnx_opset(model).unwrap_or(1);
        let mut unsupported = BTreeSet::new();
        let support = ops::OpSupport::new(model);
        let mut prepared = PreparedGraph::new(
            &graph,
            base_dir,
            device,
            0,
            &support,
            &mut unsupported,
            &HashMap::new(),
        )?;
        if !unsupported.is_empty() {
            let names: Vec<String> = unsupported.into_iter().collect();
            return Err(ModelError::UnsupportedOp(names.join(", ")));
        }
        prepared.fold_constants(
            &graph,
            &Execution::new(opset, device, graph::ITERATION_BUDGET),
            model.ir_version.unwrap_or(0) >= 4,
        );
        Ok(Self {
            graph,
            prepared,
            opset,
            device: device.clone(),
            iteration_budget: graph::ITERATION_BUDGET,
            memory_limit: None,
            stop: None,
        })
    }

    /// Caps the Loop and Scan body runs of each [`Session::run`] (default [`graph::ITERATION_BUDGET`]).
    pub fn with_iteration_budget(mut self, budget: u64) -> Self {
        self.iteration_budget = budget;
        self
    }

    /// Refuses a run whose values would hold more than `bytes` together ([`ModelError::MemoryLimit`]),
    /// counted from the inputs on; `None` lifts the limit.
    pub fn with_memory_limit(mut self, bytes: Option<u64>) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Stops a run, before its next node starts, once `stop` is set ([`ModelError::Stopped`]); it stays
    /// set until the caller clears it. A node already running finishes first: a Loop's or Scan's body is
    /// stopped between its nodes, but one operator's work is not cut short.
    pub fn with_stop_flag(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the graph on named inputs; returns the graph outputs in declaration order.
    pub fn run(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, ModelError> {
        self.run_with(inputs, None)
    }

    /// [`Session::run`], adding each node's time to `profile`.
    pub fn run_profiled(
        &self,
        inputs: &HashMap<String, Tensor>,
        profile: &std::cell::RefCell<profile::OpProfile>,
    ) -> Result<Vec<(String, Tensor)>, ModelError> {
        self.run_with(inputs, Some(profile))
    }

    fn run_with(
        &self,
        inputs: &HashMap<String, Tensor>,
        profile: Option<&std::cell::RefCell<profile::OpProfile>>,
    ) -> Result<Vec<(String, Tensor)>, ModelError> {
        let mut values = HashMap::new();
        for input in &self.graph.input {
            let name = input.name.as_deref().unwrap_or("");
            if self.prepared.initializers().contains_key(name) {
                continue;
            }
            let value = inputs
                .get(name)
                .ok_or_else(|| ModelError::Evaluation(format!("input {name:?} was not given")))?;
            values.insert(name.to_owned(), held(value)?.to_device(&self.device)?);
        }
        let scope = Scope::new(values, self.prepared.initializers(), None);
        let mut execution = Execution::new(self.opset, &self.device, self.iteration_budget)
            .with_memory_limit(self.memory_limit)
            .with_stop_flag(self.stop.as_deref());
        if let Some(profile) = profile {
            execution = execution.with_profile(profile);
        }
        let outputs = execution.run(&self.graph, &self.prepared, scope)?;
        Ok(self
            .graph
            .output
            .iter()
            .map(|o| o.name.clone().unwrap_or_default())
            .zip(outputs)
            .collect())
    }
}

/// An input in the type the evaluator holds values of its ONNX type in (`tensor_io::dtype_of`: the
/// integer types as i64), so that it meets initializers and constants of the same ONNX type.
pub(super) fn held(value: &Tensor) -> Result<Tensor, ModelError> {
    use candle_core::DType;
    Ok(match value.dtype() {
        DType::I32 | DType::I16 | DType::U32 => value.to_dtype(DType::I64)?,
        _ => value.clone(),
    })
}

//! One run of a graph over a [`Scope`]: each node's inputs looked up, the node run, its outputs kept
//! until their last reader, the run's iteration budget and memory shared with its subgraphs' runs.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::PreparedGraph;
use crate::ModelError;
use crate::eval::control_flow;
use crate::eval::derived::DerivedCache;
use crate::eval::narrow_integers;
use crate::eval::node::Node;
use crate::eval::ops;
use crate::eval::output_bound;
use crate::eval::profile::OpProfile;
use crate::eval::run_memory::{RunMemory, tensor_bytes};
use crate::proto::GraphProto;

/// The values visible while a graph runs: its own, then its initializers, then the enclosing scopes'.
pub struct Scope<'a> {
    values: HashMap<String, Tensor>,
    initializers: &'a HashMap<String, Tensor>,
    outer: Option<&'a Scope<'a>>,
}

impl<'a> Scope<'a> {
    pub fn new(
        values: HashMap<String, Tensor>,
        initializers: &'a HashMap<String, Tensor>,
        outer: Option<&'a Scope<'a>>,
    ) -> Self {
        Self {
            values,
            initializers,
            outer,
        }
    }

    /// The value `name` has here (the innermost definition wins, as ONNX's scoping says).
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.values
            .get(name)
            .or_else(|| self.initializers.get(name))
            .or_else(|| self.outer.and_then(|o| o.get(name)))
    }
}

/// One run's settings and the iteration budget it shares across every loop.
pub struct Execution<'a> {
    pub opset: i64,
    pub device: &'a Device,
    budget: Cell<u64>,
    initial_budget: u64,
    profile: Option<&'a RefCell<OpProfile>>,
    /// What the run's values hold, its subgraphs' included.
    memory: RunMemory,
    /// Set from outside to stop the run before its next node.
    stop: Option<&'a AtomicBool>,
}

impl<'a> Execution<'a> {
    pub fn new(opset: i64, device: &'a Device, iteration_budget: u64) -> Self {
        Self {
            opset,
            device,
            budget: Cell::new(iteration_budget),
            initial_budget: iteration_budget,
            profile: None,
            memory: RunMemory::default(),
            stop: None,
        }
    }

    /// Stops the run, its subgraphs' runs included, before the next node once `stop` is set.
    pub fn with_stop_flag(mut self, stop: Option<&'a AtomicBool>) -> Self {
        self.stop = stop;
        self
    }

    /// Refuses the run once its values would hold more than `bytes` together.
    pub fn with_memory_limit(mut self, bytes: Option<u64>) -> Self {
        self.memory = RunMemory::new(bytes);
        self
    }

    /// Times every node of the run into `profile`. On a GPU a node's time is its launch, not its
    /// kernel's (candle's CUDA calls do not wait).
    pub fn with_profile(mut self, profile: &'a RefCell<OpProfile>) -> Self {
        self.profile = Some(profile);
        self
    }

    /// What the run's values hold, against its limit.
    pub(crate) fn memory(&self) -> &RunMemory {
        &self.memory
    }

    fn stopped(&self) -> bool {
        self.stop.is_some_and(|stop| stop.load(Ordering::Relaxed))
    }

    /// Takes one body run from the budget; `op` names the operator in the error.
    pub fn spend_iteration(&self, op: &str) -> Result<(), ModelError> {
        // Checked here too: a body whose nodes were all folded away runs no node to check it.
        if self.stopped() {
            return Err(ModelError::Stopped);
        }
        let left = self.budget.get();
        if left == 0 {
            return Err(ModelError::Evaluation(format!(
                "{op} ran past kiln's evaluator's budget of {} loop iterations per run",
                self.initial_budget
            )));
        }
        self.budget.set(left - 1);
        Ok(())
    }

    /// Runs `graph` in `scope` (whose own values hold the graph's inputs); returns its outputs in
    /// declaration order.
    pub fn run(
        &self,
        graph: &GraphProto,
        prepared: &PreparedGraph,
        mut scope: Scope<'_>,
    ) -> Result<Vec<Tensor>, ModelError> {
        // What this graph's run counted and has not let go: its inputs, then each value a node makes.
        let mut counted: u64 = scope.values.values().map(tensor_bytes).sum();
        self.memory.hold(counted)?;
        for (index, proto) in graph.node.iter().enumerate() {
            if prepared.folded.contains(&index) {
                continue;
            }
            if self.stopped() {
                return Err(ModelError::Stopped);
            }
            let (input_types, output_types) = prepared.types_of(index);
            let mut node = Node::new(proto, self.opset)
                .with_input_types(input_types)
                .with_output_types(output_types);
            if let Some(slot) = prepared.derived.get(index) {
                node = node.with_derived(DerivedCache {
                    slot,
                    constants: &prepared.constants,
                });
            }
            let args =
                proto
                    .input
                    .iter()
                    .map(|name| {
                        if name.is_empty() {
                            return Ok(None);
                        }
                        scope.get(name).cloned().map(Some).ok_or_else(|| {
                            ModelError::Evaluation(format!("{name:?} is not defined"))
                        })
                    })
                    .collect::<Result<Vec<_>, ModelError>>()?;
            if self.memory.is_limited()
                && let Some(bound) = output_bound::bound(&node, &args)
            {
                self.memory.has_room(bound.total())?;
            }
            let started = self.profile.map(|_| Instant::now());
            let room = self.memory.for_node();
            let outputs = self
                .run_node(&node, &args, prepared.subgraphs_of(index), &scope)
                .map_err(|e| {
                    let detail = match e {
                        // Passed up whole, so that a caller tells a run too large for its limit, or
                        // stopped, from a model that fails (a Loop's body refused within the node, say).
                        ModelError::MemoryLimit { .. } | ModelError::Stopped => return e,
                        ModelError::Evaluation(m) => m,
                        other => other.to_string(),
                    };
                    ModelError::Evaluation(format!("node {index} ({}): {detail}", node.op_type()))
                })?;
            drop(room);
            if let (Some(profile), Some(started)) = (self.profile, started) {
                profile
                    .borrow_mut()
                    .record(node.op_type(), started.elapsed());
            }
            for (name, value) in proto.output.iter().zip(outputs) {
                if !name.is_empty() {
                    // Some operators build small tensors (constants, shapes) on the CPU; on a GPU session they
                    // move to the device so that the next operator sees one device.
                    let value = if value.device().same_device(self.device) {
                        value
                    } else {
                        value.to_device(self.device)?
                    };
                    let bytes = tensor_bytes(&value);
                    self.memory.hold(bytes)?;
                    counted += bytes;
                    scope.values.insert(name.clone(), value);
                }
            }
            for name in prepared.released.get(index).map_or(&[][..], Vec::as_slice) {
                if let Some(value) = scope.values.remove(name) {
                    let bytes = tensor_bytes(&value);
                    self.memory.let_go(bytes);
                    counted = counted.saturating_sub(bytes);
                }
            }
        }
        // The outputs are counted again where the caller keeps them (a subgraph's in its node's scope).
        self.memory.let_go(counted);
        graph
            .output
            .iter()
            .map(|output| {
                let name = output.name.as_deref().unwrap_or("");
                scope.get(name).cloned().ok_or_else(|| {
                    ModelError::Evaluation(format!("output {name:?} was not computed"))
                })
            })
            .collect()
    }

    pub(super) fn run_node(
        &self,
        node: &Node<'_>,
        args: &[Option<Tensor>],
        subgraphs: &[(String, PreparedGraph)],
        scope: &Scope<'_>,
    ) -> Result<Vec<Tensor>, ModelError> {
        if let Some(op) = control_flow::lookup(node.domain(), node.op_type()) {
            let call = control_flow::Call {
                execution: self,
                node,
                subgraphs,
                scope,
            };
            return op(&call, args);
        }
        let op = ops::lookup(node.domain(), node.op_type())
            .ok_or_else(|| ModelError::UnsupportedOp(node.op_type().to_owned()))?;
        narrow_integers::wrapped(node, args, op(node, args)?, &self.memory)
    }

    /// Runs a subgraph with positional `inputs` bound to its declared inputs, seeing `outer`.
    pub fn run_subgraph(
        &self,
        graph: &GraphProto,
        prepared: &PreparedGraph,
        inputs: Vec<Tensor>,
        outer: &Scope<'_>,
    ) -> Result<Vec<Tensor>, ModelError> {
        if inputs.len() != graph.input.len() {
            return Err(ModelError::Evaluation(format!(
                "the subgraph declares {} inputs and is given {}",
                graph.input.len(),
                inputs.len()
            )));
        }
        let values = graph
            .input
            .iter()
            .map(|v| v.name.clone().unwrap_or_default())
            .zip(inputs)
            .collect();
        self.run(
            graph,
            prepared,
            Scope::new(values, &prepared.initializers, Some(outer)),
        )
    }
}

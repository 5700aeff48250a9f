//! Runs one graph (the model's, or a subgraph of If, Loop or Scan) over a [`Scope`]: the values the graph
//! computes, its own initializers, and, by ONNX's lexical scoping, every value of the graphs enclosing it.
//!
//! Everything that does not change between runs is prepared once ([`PreparedGraph`]): initializers are
//! decoded (subgraphs' too), operators are checked to exist, and subgraph nesting is bounded, so a hostile
//! model fails at preparation and not deep in a run.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use candle_core::{Device, Tensor, TensorId};

use super::control_flow;
use super::derived::DerivedSlot;
use super::liveness;
use super::node::Node;
use super::{ops, tensor_io};
use crate::ModelError;
use crate::proto::GraphProto;

mod element_types;
mod execution;
pub(crate) use element_types::element_types;
pub use execution::{Execution, Scope};

/// How deep subgraphs may nest (an If inside a Loop body is depth 2). Real exports nest a few levels;
/// the cap keeps recursion on the stack bounded for any model.
pub const MAX_NESTING: usize = 16;

/// Body runs one [`Session::run`](super::Session::run) may make by default, over every Loop and Scan,
/// nested ones included, so a trip count of 2^62 or a condition that never turns false ends with an
/// error (a million runs of a small body take seconds).
pub const ITERATION_BUDGET: u64 = 1 << 20;

/// A node's inputs' and outputs' ONNX element types, where known.
type NodeTypes = (Vec<Option<i32>>, Vec<Option<i32>>);

/// What a graph needs at run time besides its protobuf: decoded initializers and its nodes' subgraphs.
pub struct PreparedGraph {
    initializers: HashMap<String, Tensor>,
    /// Per node, the ONNX element types of its inputs and outputs where the graph declares them (inputs,
    /// outputs, value_info, initializers) or they follow from those ([`element_types`]): looked up once
    /// here, not by name at every node of every run.
    node_types: Vec<NodeTypes>,
    /// Node index → (attribute name, prepared subgraph) for each GRAPH attribute of that node.
    subgraphs: HashMap<usize, Vec<(String, PreparedGraph)>>,
    /// Nodes computed once, when the session was made ([`PreparedGraph::fold_constants`]): their outputs
    /// are among the initializers and runs skip them.
    folded: HashSet<usize>,
    /// The initializers' identities: what a node derives from them is kept between runs.
    constants: HashSet<TensorId>,
    /// One slot per node for what it derives from its constant operands.
    derived: Vec<DerivedSlot>,
    /// Per node, the values a run lets go of once it has run ([`liveness::releases`]).
    released: Vec<Vec<String>>,
}

/// Operators whose outputs are not a function of their inputs alone: never computed ahead.
const NOT_FOLDED: &[&str] = &[
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
    "Dropout",
];

/// A node is computed ahead only when each of its inputs is this small (shapes, scalars, the values of a
/// ConstantOfShape or a Range): a Cast or Transpose of a weight would keep a second copy of it resident.
const FOLDED_INPUT_ELEMENTS: usize = 4096;

/// The most elements the nodes computed ahead may hold together (512 MiB of f32): they stay resident
/// between runs, where a run lets go of its values after their last reader. Past it, left to the runs.
const FOLDED_ELEMENTS: usize = 1 << 27;

impl PreparedGraph {
    /// Decodes `graph`'s initializers and prepares its subgraphs; adds operators kiln lacks to
    /// `unsupported` rather than failing at the first, so the error names them all.
    pub fn new(
        graph: &GraphProto,
        base_dir: Option<&Path>,
        device: &Device,
        depth: usize,
        support: &ops::OpSupport<'_>,
        unsupported: &mut BTreeSet<String>,
        outer_types: &HashMap<String, i32>,
    ) -> Result<Self, ModelError> {
        if depth > MAX_NESTING {
            return Err(ModelError::Unsupported(format!(
                "subgraphs nest deeper than {MAX_NESTING} levels, kiln's evaluator's cap"
            )));
        }
        let mut initializers = HashMap::new();
        for tensor in &graph.initializer {
            let name = tensor.name.clone().unwrap_or_default();
            initializers.insert(name, tensor_io::from_proto(tensor, base_dir, device)?);
        }
        let types = element_types(graph, outer_types);
        let mut subgraphs = HashMap::new();
        for (index, node) in graph.node.iter().enumerate() {
            let (domain, op) = (
                node.domain.as_deref().unwrap_or(""),
                node.op_type.as_deref().unwrap_or(""),
            );
            let is_control_flow = control_flow::lookup(domain, op).is_some();
            if let Some(name) = support.unsupported(domain, op, is_control_flow) {
                unsupported.insert(name);
            }
            let mut prepared = Vec::new();
            for attribute in &node.attribute {
                if !attribute.graphs.is_empty() {
                    return Err(ModelError::Unsupported(format!(
                        "{op}'s attribute {:?} holds a list of graphs",
                        attribute.name.as_deref().unwrap_or("")
                    )));
                }
                if let Some(sub) = &attribute.g {
                    let name = attribute.name.clone().unwrap_or_default();
                    let sub = Self::new(
                        sub,
                        base_dir,
                        device,
                        depth + 1,
                        support,
                        unsupported,
                        &types,
                    )?;
                    prepared.push((name, sub));
                }
            }
            if !prepared.is_empty() {
                subgraphs.insert(index, prepared);
            }
        }
        let constants = initializers.values().map(Tensor::id).collect();
        Ok(Self {
            initializers,
            node_types: graph
                .node
                .iter()
                .map(|node| {
                    let of =
                        |names: &[String]| names.iter().map(|n| types.get(n).copied()).collect();
                    (of(&node.input), of(&node.output))
                })
                .collect(),
            subgraphs,
            folded: HashSet::new(),
            constants,
            derived: graph.node.iter().map(|_| DerivedSlot::default()).collect(),
            released: liveness::releases(graph, &HashSet::new()),
        })
    }

    /// Computes once the nodes of `graph` and of its subgraphs whose inputs are all small constants:
    /// initializers or outputs of nodes computed so (weights a model makes with ConstantOfShape, shape
    /// arithmetic, a branch's Constant nodes), as ONNX Runtime does when it loads a model. A node that
    /// fails is left to the runs, which report its error as before; control flow and operators with
    /// randomness are never computed ahead, nor a node reading an initializer a run may override: one
    /// the graph also takes as an input, in a subgraph, or in a model graph when
    /// `initializers_overridable` (IR version 4 on; before it every initializer was listed among the
    /// inputs and was a constant, as ONNX Runtime reads such models).
    pub fn fold_constants(
        &mut self,
        graph: &GraphProto,
        execution: &Execution<'_>,
        initializers_overridable: bool,
    ) {
        let mut held = 0usize;
        self.fold(graph, execution, initializers_overridable, &mut held);
    }

    /// [`Self::fold_constants`] with `held` elements already computed ahead (in enclosing graphs).
    fn fold(
        &mut self,
        graph: &GraphProto,
        execution: &Execution<'_>,
        initializers_overridable: bool,
        held: &mut usize,
    ) {
        let no_initializers = HashMap::new();
        let scope = Scope::new(HashMap::new(), &no_initializers, None);
        let inputs: HashSet<&str> = if initializers_overridable {
            graph
                .input
                .iter()
                .filter_map(|v| v.name.as_deref())
                .collect()
        } else {
            HashSet::new()
        };
        for (index, proto) in graph.node.iter().enumerate() {
            let (domain, op) = (
                proto.domain.as_deref().unwrap_or(""),
                proto.op_type.as_deref().unwrap_or(""),
            );
            let small_constants = proto.input.iter().all(|name| {
                name.is_empty()
                    || (!inputs.contains(name.as_str())
                        && self
                            .initializers
                            .get(name)
                            .is_some_and(|t| t.elem_count() <= FOLDED_INPUT_ELEMENTS))
            });
            let foldable = matches!(domain, "" | "ai.onnx")
                && !NOT_FOLDED.contains(&op)
                && control_flow::lookup(domain, op).is_none()
                && !self.subgraphs.contains_key(&index)
                && !proto.output.is_empty()
                && small_constants;
            if !foldable {
                continue;
            }
            let args: Vec<Option<Tensor>> = proto
                .input
                .iter()
                .map(|name| self.initializers.get(name).cloned())
                .collect();
            let (inputs, outputs) = self.types_of(index);
            let node = Node::new(proto, execution.opset)
                .with_input_types(inputs)
                .with_output_types(outputs);
            let Ok(outputs) = execution.run_node(&node, &args, &[], &scope) else {
                continue;
            };
            let size = outputs.iter().map(Tensor::elem_count).sum::<usize>();
            let named = proto.output.iter().filter(|n| !n.is_empty()).count();
            if outputs.len() < named || held.saturating_add(size) > FOLDED_ELEMENTS {
                continue;
            }
            let on_device: Result<Vec<Tensor>, _> = outputs
                .into_iter()
                .map(|value| value.to_device(execution.device))
                .collect();
            let Ok(values) = on_device else {
                continue;
            };
            *held += size;
            for (name, value) in proto.output.iter().zip(values) {
                if !name.is_empty() {
                    self.initializers.insert(name.clone(), value);
                }
            }
            self.folded.insert(index);
        }
        self.constants = self.initializers.values().map(Tensor::id).collect();
        self.released = liveness::releases(graph, &self.folded);
        for (&index, subgraphs) in &mut self.subgraphs {
            let Some(node) = graph.node.get(index) else {
                continue;
            };
            for (name, prepared) in subgraphs {
                let body = node
                    .attribute
                    .iter()
                    .find(|a| a.name.as_deref() == Some(name.as_str()))
                    .and_then(|a| a.g.as_ref());
                if let Some(body) = body {
                    prepared.fold(body, execution, true, held);
                }
            }
        }
    }

    /// The element types of node `index`'s inputs and outputs, in order, where the graph tells them.
    pub(super) fn types_of(&self, index: usize) -> (&[Option<i32>], &[Option<i32>]) {
        self.node_types
            .get(index)
            .map_or((&[][..], &[][..]), |(inputs, outputs)| (inputs, outputs))
    }

    pub fn initializers(&self) -> &HashMap<String, Tensor> {
        &self.initializers
    }

    fn subgraphs_of(&self, node: usize) -> &[(String, PreparedGraph)] {
        self.subgraphs.get(&node).map_or(&[], Vec::as_slice)
    }
}

pub(super) fn declared_types(graph: &GraphProto) -> HashMap<String, i32> {
    use crate::proto::type_proto;
    let values = graph
        .input
        .iter()
        .chain(&graph.value_info)
        .chain(&graph.output);
    let mut types: HashMap<String, i32> = values
        .filter_map(|v| {
            let Some(type_proto::Value::TensorType(tensor)) =
                v.r#type.as_ref().and_then(|t| t.value.as_ref())
            else {
                return None;
            };
            Some((v.name.clone()?, tensor.elem_type?))
        })
        .collect();
    for tensor in &graph.initializer {
        if let (Some(name), Some(data_type)) = (&tensor.name, tensor.data_type) {
            types.insert(name.clone(), data_type);
        }
    }
    types
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};

    use crate::eval::Session;
    use crate::graph_builder::{DimSpec, GraphBuilder, attr_int};
    use crate::proto::tensor_proto::DataType;

    #[test]
    fn small_constant_subgraphs_are_computed_once_and_dropout_and_weights_never() {
        let mut g = GraphBuilder::new();
        let x = g.input(
            "x",
            DataType::Float,
            &[DimSpec::Fixed(2), DimSpec::Fixed(3)],
        );
        // ones(2, 3) made at run time, then doubled: both computed when the session is made.
        let shape = g.ints("shape", &[2, 3]).unwrap();
        let ones = g.op("ConstantOfShape", &[&shape], vec![]);
        let one = g.scalar("one", 1.0).unwrap();
        let ones = g.op("Add", &[&ones, &one], vec![]);
        let twos = g.op("Add", &[&ones, &ones], vec![]);
        // Dropout is never computed ahead (a training-mode run must draw its mask), nor a Cast of a large
        // weight (it would keep a second copy resident).
        let kept = g.op("Dropout", &[&twos], vec![]);
        let big = g
            .weight(
                "big",
                &Tensor::zeros(5000, candle_core::DType::F32, &Device::Cpu).unwrap(),
            )
            .unwrap();
        let cast = g.op(
            "Cast",
            &[&big],
            vec![attr_int("to", DataType::Double as i64)],
        );
        g.op_into("Add", &[&x, &kept], vec![], "y");
        g.op_into("Shape", &[&cast], vec![], "cast_shape");
        g.output(
            "y",
            DataType::Float,
            &[DimSpec::Fixed(2), DimSpec::Fixed(3)],
        );
        g.output("cast_shape", DataType::Int64, &[DimSpec::Fixed(1)]);
        let model = g.finish("folding", 17, vec![]);
        let session = Session::new(&model, None, &Device::Cpu).unwrap();
        let mut folded: Vec<usize> = session.prepared.folded.iter().copied().collect();
        folded.sort_unstable();
        assert_eq!(
            folded,
            vec![0, 1, 2],
            "ConstantOfShape and the two Adds on it"
        );
        let x = Tensor::new(&[[1f32, 2., 3.], [4., 5., 6.]], &Device::Cpu).unwrap();
        let out = session.run(&HashMap::from([("x".to_owned(), x)])).unwrap();
        assert_eq!(
            out[0].1.to_vec2::<f32>().unwrap(),
            [[3., 4., 5.], [6., 7., 8.]]
        );
        assert_eq!(out[1].1.to_vec1::<i64>().unwrap(), [5000]);
    }

    /// A Loop body's Constant and the node on it are computed once, when the session is made; a node
    /// reading the body's input is not, though the body also has an initializer of that name (the
    /// input, given at each iteration, is what the node reads).
    #[test]
    fn subgraph_constants_are_computed_once_but_not_nodes_on_a_shadowed_input() {
        use crate::eval::control_flow::tests::{body, floats, graph_attr, model, node, value};
        use crate::proto::{
            AttributeProto, GraphProto, TensorProto, attribute_proto::AttributeType,
        };
        let constant = AttributeProto {
            name: Some("value".to_owned()),
            r#type: Some(AttributeType::Tensor as i32),
            t: Some(floats("value", &[2.0, 2.0])),
            ..Default::default()
        };
        let loop_body = body(
            vec![
                node("Constant", &[], &["k"], vec![constant]),
                node("Mul", &["k", "one"], &["two"], vec![]),
                node("Add", &["acc", "two"], &["acc_out"], vec![]),
                node("Identity", &["cond_in"], &["cond_out"], vec![]),
            ],
            vec![floats("one", &[1.0, 1.0]), floats("acc", &[100.0, 100.0])],
            vec![
                value("i", DataType::Int64),
                value("cond_in", DataType::Bool),
                value("acc", DataType::Float),
            ],
            vec![
                value("cond_out", DataType::Bool),
                value("acc_out", DataType::Float),
            ],
        );
        let graph = GraphProto {
            node: vec![node(
                "Loop",
                &["m", "", "x"],
                &["y"],
                vec![graph_attr("body", loop_body)],
            )],
            initializer: vec![TensorProto {
                name: Some("m".to_owned()),
                data_type: Some(DataType::Int64 as i32),
                int64_data: vec![3],
                ..Default::default()
            }],
            input: vec![value("x", DataType::Float)],
            output: vec![value("y", DataType::Float)],
            ..Default::default()
        };
        let session = Session::new(&model(graph, 17), None, &Device::Cpu).unwrap();
        let body = &session.prepared.subgraphs[&0][0].1;
        let mut folded: Vec<usize> = body.folded.iter().copied().collect();
        folded.sort_unstable();
        assert_eq!(folded, vec![0, 1], "the Constant and the Mul on it");
        let x = Tensor::new(&[1f32, -1.0], &Device::Cpu).unwrap();
        let out = session.run(&HashMap::from([("x".to_owned(), x)])).unwrap();
        assert_eq!(out[0].1.to_vec1::<f32>().unwrap(), [7.0, 5.0]);
    }
}

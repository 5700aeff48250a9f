//! Who reads which value: the facts every pass needs to rewrite a graph safely.

use std::collections::{HashMap, HashSet};

use crate::proto::GraphProto;

pub struct Usage {
    /// Value name → indices of the nodes reading it.
    pub readers: HashMap<String, Vec<usize>>,
    /// Value name → index of the node producing it.
    pub producer: HashMap<String, usize>,
    pub graph_outputs: HashSet<String>,
    pub initializers: HashSet<String>,
}

impl Usage {
    pub fn of(graph: &GraphProto) -> Self {
        let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
        let mut producer = HashMap::new();
        for (i, node) in graph.node.iter().enumerate() {
            for input in node.input.iter().filter(|n| !n.is_empty()) {
                readers.entry(input.clone()).or_default().push(i);
            }
            // Subgraphs (If, Loop, Scan) may read outer values by name: count their reads too.
            for attribute in &node.attribute {
                for sub in attribute.g.iter().chain(attribute.graphs.iter()) {
                    for name in subgraph_reads(sub) {
                        readers.entry(name).or_default().push(i);
                    }
                }
            }
            for output in node.output.iter().filter(|n| !n.is_empty()) {
                producer.insert(output.clone(), i);
            }
        }
        Self {
            readers,
            producer,
            graph_outputs: graph.output.iter().filter_map(|o| o.name.clone()).collect(),
            initializers: graph
                .initializer
                .iter()
                .filter_map(|t| t.name.clone())
                .collect(),
        }
    }

    pub fn reader_count(&self, name: &str) -> usize {
        self.readers.get(name).map_or(0, Vec::len)
    }

    /// Read by exactly one node and not a graph output.
    pub fn only_read_by_one(&self, name: &str) -> bool {
        self.reader_count(name) == 1 && !self.graph_outputs.contains(name)
    }
}

/// Every name a subgraph reads (its own values included: a superset of its outer reads).
pub(crate) fn subgraph_reads(graph: &GraphProto) -> Vec<String> {
    let mut names = Vec::new();
    for node in &graph.node {
        names.extend(node.input.iter().filter(|n| !n.is_empty()).cloned());
        for attribute in &node.attribute {
            for sub in attribute.g.iter().chain(attribute.graphs.iter()) {
                names.extend(subgraph_reads(sub));
            }
        }
    }
    names.extend(graph.output.iter().filter_map(|o| o.name.clone()));
    names
}

/// Renames every read of `from` to `to` (in nodes and graph outputs' producers stay as they are).
/// Every name read inside the subgraphs of `graph`'s nodes.
pub(crate) fn read_in_subgraphs(graph: &GraphProto) -> std::collections::HashSet<String> {
    graph
        .node
        .iter()
        .flat_map(|n| &n.attribute)
        .flat_map(|a| a.g.iter().chain(a.graphs.iter()))
        .flat_map(subgraph_reads)
        .collect()
}

pub fn rename_reads(graph: &mut GraphProto, from: &str, to: &str) {
    for node in &mut graph.node {
        for input in &mut node.input {
            if input == from {
                *input = to.to_owned();
            }
        }
    }
}

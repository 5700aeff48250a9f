//! When a run may let go of each value it computed: right after the last node that reads it. A run that
//! held every value to its end kept a whole network's activations resident; released, an activation's
//! buffer goes back to the allocator while it is still in cache, and the next operator's output is
//! made in it.

use std::collections::{HashMap, HashSet};

use crate::proto::GraphProto;

/// For each node of `graph`, the values that no node after it reads: those a run releases once the
/// node has run. Nodes in `skipped` (computed ahead, never run) read nothing. A node with subgraphs
/// reads every name its subgraphs mention (a body reads its enclosing graphs' values by name). The
/// graph's outputs are never released.
pub fn releases<'g>(graph: &'g GraphProto, skipped: &HashSet<usize>) -> Vec<Vec<String>> {
    let mut last_reader: HashMap<&'g str, usize> = HashMap::new();
    for (index, node) in graph.node.iter().enumerate() {
        if skipped.contains(&index) {
            continue;
        }
        let mut read = |name: &'g str| {
            if !name.is_empty() {
                last_reader.insert(name, index);
            }
        };
        for name in &node.input {
            read(name);
        }
        for attribute in &node.attribute {
            if let Some(body) = &attribute.g {
                mentioned(body, &mut |name| read(name));
            }
        }
        // A value no later node reads is released by the node that made it.
        for name in &node.output {
            last_reader.entry(name).or_insert(index);
        }
    }
    for output in &graph.output {
        last_reader.remove(output.name.as_deref().unwrap_or(""));
    }
    let mut released = vec![Vec::new(); graph.node.len()];
    for (name, index) in last_reader {
        released[index].push(name.to_owned());
    }
    released
}

/// Every value name `graph` and the graphs nested in it read or return.
fn mentioned<'a>(graph: &'a GraphProto, read: &mut dyn FnMut(&'a str)) {
    for node in &graph.node {
        for name in &node.input {
            read(name);
        }
        for attribute in &node.attribute {
            if let Some(body) = &attribute.g {
                mentioned(body, read);
            }
        }
    }
    for output in &graph.output {
        read(output.name.as_deref().unwrap_or(""));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::releases;
    use crate::proto::{AttributeProto, GraphProto, NodeProto, ValueInfoProto};

    fn node(inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn value(name: &str) -> ValueInfoProto {
        ValueInfoProto {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_value_goes_after_its_last_reader_and_outputs_stay() {
        let graph = GraphProto {
            node: vec![
                node(&["x"], &["a"]),
                node(&["a"], &["b", "unused"]),
                node(&["a", "b"], &["y"]),
            ],
            output: vec![value("y")],
            ..Default::default()
        };
        let mut released = releases(&graph, &HashSet::new());
        released.iter_mut().for_each(|names| names.sort());
        assert_eq!(
            released,
            vec![
                vec!["x".to_string()],
                vec!["unused".into()],
                vec!["a".into(), "b".into()]
            ]
        );
    }

    #[test]
    fn a_subgraph_keeps_what_it_reads_from_outside_alive() {
        let body = GraphProto {
            node: vec![node(&["outer"], &["inner"])],
            output: vec![value("inner")],
            ..Default::default()
        };
        let mut looping = node(&["n"], &["z"]);
        looping.attribute.push(AttributeProto {
            name: Some("body".into()),
            g: Some(body),
            ..Default::default()
        });
        let graph = GraphProto {
            node: vec![node(&["x"], &["outer"]), looping, node(&["z"], &["y"])],
            output: vec![value("y")],
            ..Default::default()
        };
        let released = releases(&graph, &HashSet::new());
        assert!(released[1].contains(&"outer".to_string()));
        assert!(!released[0].contains(&"outer".to_string()));
    }

    #[test]
    fn nodes_computed_ahead_read_nothing() {
        let graph = GraphProto {
            node: vec![node(&["x"], &["a"]), node(&["x"], &["c"])],
            output: vec![value("a")],
            ..Default::default()
        };
        let released = releases(&graph, &HashSet::from([1]));
        assert_eq!(released[0], vec!["x".to_string()]);
    }
}

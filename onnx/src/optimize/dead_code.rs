//! Removes nodes whose outputs nobody reads, and initializers no node reads.

use std::collections::HashSet;

use super::Pass;
use super::usage::Usage;
use crate::ModelError;
use crate::proto::ModelProto;

pub struct EliminateDeadCode;

impl Pass for EliminateDeadCode {
    fn name(&self) -> &'static str {
        "eliminate-dead-code"
    }

    fn run(&self, model: &mut ModelProto) -> Result<bool, ModelError> {
        let Some(graph) = model.graph.as_mut() else {
            return Ok(false);
        };
        let (nodes, initializers) = (graph.node.len(), graph.initializer.len());
        // Walking backwards, a node is live when a later live node or a graph output reads it.
        let mut live: HashSet<String> =
            graph.output.iter().filter_map(|o| o.name.clone()).collect();
        let mut keep = vec![false; graph.node.len()];
        let usage = Usage::of(graph);
        for (i, node) in graph.node.iter().enumerate().rev() {
            if node.output.iter().any(|o| live.contains(o)) {
                keep[i] = true;
                live.extend(node.input.iter().filter(|n| !n.is_empty()).cloned());
                // Values a subgraph reads are live too.
                for (name, readers) in &usage.readers {
                    if readers.contains(&i) {
                        live.insert(name.clone());
                    }
                }
            }
        }
        let mut index = 0;
        graph.node.retain(|_| {
            index += 1;
            keep[index - 1]
        });
        graph
            .initializer
            .retain(|t| t.name.as_ref().is_some_and(|n| live.contains(n)));
        let kept: HashSet<String> = graph
            .initializer
            .iter()
            .filter_map(|t| t.name.clone())
            .collect();
        // Inputs that merely declared a removed initializer (IR < 4 style) go with it.
        graph.input.retain(|v| {
            let name = v.name.as_deref().unwrap_or("");
            !usage.initializers.contains(name) || kept.contains(name)
        });
        Ok(graph.node.len() != nodes || graph.initializer.len() != initializers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::tests::{mlp, outputs_match};

    #[test]
    fn a_dangling_branch_and_its_weights_go() {
        let before = mlp(false);
        let mut after = before.clone();
        let graph = after.graph.as_mut().unwrap();
        let mut extra = graph.node[0].clone();
        extra.output = vec!["unused".to_owned()];
        graph.node.push(extra);
        let initializers = graph.initializer.len();
        assert!(EliminateDeadCode.run(&mut after).unwrap());
        assert_eq!(
            after.graph.as_ref().unwrap().node.len(),
            before.graph.as_ref().unwrap().node.len()
        );
        assert_eq!(
            after.graph.as_ref().unwrap().initializer.len(),
            initializers
        );
        outputs_match(&before, &after);
    }
}

//! Removes Identity nodes and inference-time Dropout (whose mask output nobody reads).

use super::Pass;
use super::usage::{Usage, rename_reads};
use crate::ModelError;
use crate::proto::ModelProto;

pub struct EliminateIdentity;

fn has_subgraph(node: &crate::proto::NodeProto) -> bool {
    node.attribute
        .iter()
        .any(|a| a.g.is_some() || !a.graphs.is_empty())
}

impl Pass for EliminateIdentity {
    fn name(&self) -> &'static str {
        "eliminate-identity"
    }

    fn run(&self, model: &mut ModelProto) -> Result<bool, ModelError> {
        let Some(graph) = model.graph.as_mut() else {
            return Ok(false);
        };
        let mut changed = false;
        loop {
            let usage = Usage::of(graph);
            let candidate = graph.node.iter().enumerate().find_map(|(i, node)| {
                let op = node.op_type.as_deref()?;
                let removable = match op {
                    "Identity" => true,
                    // Dropout is the identity at inference unless its mask is read.
                    "Dropout" => node.output.get(1).is_none_or(|m| {
                        m.is_empty()
                            || usage.reader_count(m) == 0 && !usage.graph_outputs.contains(m)
                    }),
                    _ => false,
                };
                let (input, output) = (node.input.first()?, node.output.first()?);
                if !removable || !super::in_default_domain(node) || input.is_empty() {
                    return None;
                }
                let readers_ok = usage
                    .readers
                    .get(output)
                    .is_none_or(|r| r.iter().all(|&n| !has_subgraph(&graph.node[n])));
                if !readers_ok {
                    return None;
                }
                if usage.graph_outputs.contains(output) {
                    // The output's name must survive: give it to the producer of the input instead, when
                    // that producer's output is read by nothing else and is no graph output itself.
                    let producer = *usage.producer.get(input)?;
                    let movable =
                        usage.only_read_by_one(input) && !usage.graph_outputs.contains(input);
                    return movable.then_some((i, Some(producer)));
                }
                Some((i, None))
            });
            let Some((index, producer)) = candidate else {
                break;
            };
            let node = graph.node.remove(index);
            let (input, output) = (node.input[0].clone(), node.output[0].clone());
            match producer {
                Some(p) => {
                    let p = if p > index { p - 1 } else { p };
                    for o in &mut graph.node[p].output {
                        if *o == input {
                            *o = output.clone();
                        }
                    }
                }
                None => rename_reads(graph, &output, &input),
            }
            changed = true;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::tests::{mlp, outputs_match};

    #[test]
    fn identity_and_dropout_go_and_the_outputs_stay() {
        let before = mlp(true);
        let mut after = before.clone();
        assert!(EliminateIdentity.run(&mut after).unwrap());
        let ops: Vec<&str> = after
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .filter_map(|n| n.op_type.as_deref())
            .collect();
        assert!(
            !ops.contains(&"Identity") && !ops.contains(&"Dropout"),
            "{ops:?}"
        );
        outputs_match(&before, &after);
    }
}

//! The per-operator profile of evaluator runs.

use std::collections::HashMap;
use std::time::Duration;

/// Where one or more runs spent their time, by operator: what a profile of kiln's engine starts from
/// (`examples/profile_ops.rs`). A node's time includes its subgraphs' (an If's branch), whose nodes are
/// counted under their own operators too.
#[derive(Debug, Default, Clone)]
pub struct OpProfile {
    pub by_op: HashMap<String, OpTime>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct OpTime {
    pub calls: u64,
    pub total: Duration,
}

impl OpProfile {
    pub(super) fn record(&mut self, op: &str, took: Duration) {
        let entry = self.by_op.entry(op.to_owned()).or_default();
        entry.calls += 1;
        entry.total += took;
    }

    /// The operators by time spent, most first.
    pub fn ranked(&self) -> Vec<(&str, OpTime)> {
        let mut ranked: Vec<(&str, OpTime)> =
            self.by_op.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        ranked.sort_by(|a, b| b.1.total.cmp(&a.1.total).then(a.0.cmp(b.0)));
        ranked
    }
}

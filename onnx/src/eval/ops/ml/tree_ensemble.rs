//! TreeEnsemble (ai.onnx.ml opset 5): decision trees whose leaves add weights to targets, aggregated over
//! the trees. Nodes and leaves are parallel attribute arrays; a node's true and false branches each name
//! either another node or a leaf.

use candle_core::{DType, Tensor};

use super::super::super::node::{Node, required};
use super::super::super::tensor_io;
use super::scores::PostTransform;
use super::scores::evaluation;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// How a branch compares its feature with its threshold (shared with the opset 1-3 ensembles).
#[derive(Clone, Copy)]
pub(super) enum Comparison {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

impl Comparison {
    /// IEEE comparisons: a NaN feature fails all but `Neq`.
    pub(super) fn holds(self, x: f64, threshold: f64) -> bool {
        match self {
            Self::Leq => x <= threshold,
            Self::Lt => x < threshold,
            Self::Gte => x >= threshold,
            Self::Gt => x > threshold,
            Self::Eq => x == threshold,
            Self::Neq => x != threshold,
        }
    }
}

/// How a node compares its feature (`nodes_modes`).
#[derive(Clone, Copy)]
enum Mode {
    Compare(Comparison),
    Member,
}

impl Mode {
    fn of(code: f64) -> Result<Self, ModelError> {
        Ok(Mode::Compare(match code as i64 {
            0 => Comparison::Leq,
            1 => Comparison::Lt,
            2 => Comparison::Gte,
            3 => Comparison::Gt,
            4 => Comparison::Eq,
            5 => Comparison::Neq,
            6 => return Ok(Mode::Member),
            other => return Err(evaluation(format!("TreeEnsemble node mode {other}"))),
        }))
    }
}

struct Tree {
    modes: Vec<Mode>,
    splits: Vec<f64>,
    features: Vec<usize>,
    /// (index, is_leaf) for each node's true and false branch.
    branches: Vec<[(usize, bool); 2]>,
    missing_tracks_true: Vec<bool>,
    /// The set each MEMBER node tests, in node order (empty for the others).
    members: Vec<Vec<f64>>,
    leaf_weights: Vec<f64>,
    leaf_targets: Vec<usize>,
}

/// A tensor attribute's values in f64, when the node has it.
pub(super) fn tensor_attr(node: &Node<'_>, name: &str) -> Result<Option<Vec<f64>>, ModelError> {
    node.tensor(name)
        .map(|t| {
            let t = tensor_io::from_proto(t, None, &candle_core::Device::Cpu)?;
            Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
        })
        .transpose()
}

fn indices(node: &Node<'_>, name: &str, bound: usize) -> Result<Vec<usize>, ModelError> {
    node.ints(name)
        .unwrap_or_default()
        .into_iter()
        .map(|i| {
            usize::try_from(i)
                .ok()
                .filter(|&i| i < bound)
                .ok_or_else(|| evaluation(format!("TreeEnsemble {name} {i} is out of range")))
        })
        .collect()
}

/// The sets of `membership_values`, NaN-delimited, handed to the MEMBER nodes in node order.
fn member_sets(modes: &[Mode], values: &[f64]) -> Result<Vec<Vec<f64>>, ModelError> {
    let mut sets = values.split(|v| v.is_nan());
    modes
        .iter()
        .map(|mode| match mode {
            Mode::Member => sets.next().map(<[f64]>::to_vec).ok_or_else(|| {
                evaluation("TreeEnsemble has fewer membership sets than MEMBER nodes")
            }),
            _ => Ok(Vec::new()),
        })
        .collect()
}

impl Tree {
    fn parse(node: &Node<'_>, features: usize) -> Result<Self, ModelError> {
        let splits = tensor_attr(node, "nodes_splits")?.unwrap_or_default();
        let count = splits.len();
        let modes = tensor_attr(node, "nodes_modes")?
            .unwrap_or_default()
            .into_iter()
            .map(Mode::of)
            .collect::<Result<Vec<_>, _>>()?;
        let leaf_weights = tensor_attr(node, "leaf_weights")?.unwrap_or_default();
        let leaves = leaf_weights.len();
        let n_targets = usize::try_from(node.int("n_targets", 1)).unwrap_or(0);
        let leaf_targets = indices(node, "leaf_targetids", n_targets)?;
        let side = |ids: &str, leafs: &str| -> Result<Vec<(usize, bool)>, ModelError> {
            let ids = node.ints(ids).unwrap_or_default();
            let leafs = node.ints(leafs).unwrap_or_default();
            ids.iter()
                .zip(&leafs)
                .map(|(&id, &leaf)| {
                    let bound = if leaf != 0 { leaves } else { count };
                    usize::try_from(id)
                        .ok()
                        .filter(|&i| i < bound)
                        .map(|i| (i, leaf != 0))
                        .ok_or_else(|| {
                            evaluation(format!("TreeEnsemble branch {id} is out of range"))
                        })
                })
                .collect()
        };
        let (trues, falses) = (
            side("nodes_truenodeids", "nodes_trueleafs")?,
            side("nodes_falsenodeids", "nodes_falseleafs")?,
        );
        let tracks = node.ints("nodes_missing_value_tracks_true");
        let missing_tracks_true = (0..count)
            .map(|i| {
                tracks
                    .as_ref()
                    .and_then(|t| t.get(i))
                    .is_some_and(|&v| v != 0)
            })
            .collect();
        let members = member_sets(
            &modes,
            &tensor_attr(node, "membership_values")?.unwrap_or_default(),
        )?;
        let tree = Tree {
            features: indices(node, "nodes_featureids", features)?,
            branches: trues.into_iter().zip(falses).map(|(t, f)| [t, f]).collect(),
            modes,
            splits,
            missing_tracks_true,
            members,
            leaf_targets,
            leaf_weights,
        };
        let n = tree.splits.len();
        if [tree.modes.len(), tree.features.len(), tree.branches.len()] != [n, n, n]
            || tree.leaf_targets.len() != leaves
        {
            return Err(evaluation(
                "TreeEnsemble's node or leaf attributes differ in length",
            ));
        }
        Ok(tree)
    }

    fn goes_true(&self, node: usize, row: &[f64]) -> bool {
        let (x, split) = (row[self.features[node]], self.splits[node]);
        if x.is_nan() && self.missing_tracks_true[node] {
            return true;
        }
        match self.modes[node] {
            Mode::Compare(comparison) => comparison.holds(x, split),
            Mode::Member => self.members[node].contains(&x),
        }
    }

    /// The leaf a row reaches from `root`; a walk longer than the node count is a cycle.
    fn leaf(&self, root: usize, row: &[f64]) -> Result<usize, ModelError> {
        let [t, f] = self.branches[root];
        // A root whose both branches are the same leaf is a tree of one leaf.
        if t == f && t.1 {
            return Ok(t.0);
        }
        let mut at = root;
        for _ in 0..=self.splits.len() {
            let (next, is_leaf) = self.branches[at][usize::from(!self.goes_true(at, row))];
            if is_leaf {
                return Ok(next);
            }
            at = next;
        }
        Err(evaluation("TreeEnsemble's branches form a cycle"))
    }
}

/// Y[n, target] aggregates (`aggregate_function`: 0 average, 1 sum, 2 min, 3 max) the weights of the
/// leaves X[n] reaches, then `post_transform` (0 none, 1 softmax, 2 logistic, 3 softmax-zero, 4 probit:
/// over a row of two or more targets; one target only by probit, as ONNX Runtime applies it).
pub fn tree_ensemble(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let &[rows, features] = x.dims() else {
        return Err(evaluation("TreeEnsemble needs a 2-D X"));
    };
    let transform = match node.int("post_transform", 0) {
        0 => PostTransform::None,
        1 => PostTransform::Softmax,
        2 => PostTransform::Logistic,
        3 => PostTransform::SoftmaxZero,
        4 => PostTransform::Probit,
        other => {
            return Err(evaluation(format!(
                "TreeEnsemble post_transform {other} is none of 0 to 4"
            )));
        }
    };
    let tree = Tree::parse(node, features)?;
    let roots = indices(node, "tree_roots", tree.splits.len())?;
    let targets = usize::try_from(node.int("n_targets", 1)).unwrap_or(0);
    let aggregate = node.int("aggregate_function", 1);
    let start = match aggregate {
        0 | 1 => 0.0,
        2 => f64::MAX,
        3 => f64::MIN,
        other => {
            return Err(evaluation(format!(
                "TreeEnsemble aggregate_function {other}"
            )));
        }
    };
    let cells = rows
        .checked_mul(targets)
        .filter(|&c| c as u64 <= crate::model_check::MAX_ELEMENTS)
        .ok_or_else(|| evaluation("TreeEnsemble's output is too large"))?;
    let mut out = vec![start; cells];
    let data = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    for (row, result) in data
        .chunks(features.max(1))
        .zip(out.chunks_mut(targets.max(1)))
    {
        for &root in &roots {
            let leaf = tree.leaf(root, row)?;
            let (w, cell) = (
                tree.leaf_weights[leaf],
                &mut result[tree.leaf_targets[leaf]],
            );
            *cell = match aggregate {
                0 => *cell + w / roots.len() as f64,
                1 => *cell + w,
                2 => cell.min(w),
                _ => cell.max(w),
            };
        }
    }
    // Rounded to f32 only where a transform runs (several targets, or PROBIT), as ONNX Runtime's are.
    if transform != PostTransform::None && (targets > 1 || transform == PostTransform::Probit) {
        let mut scores: Vec<f32> = out.iter().map(|&v| v as f32).collect();
        if targets > 1 {
            scores
                .chunks_mut(targets)
                .for_each(|row| transform.apply(row));
        } else if transform == PostTransform::Probit {
            scores
                .iter_mut()
                .for_each(|s| *s = super::scores::probit(*s));
        }
        out = scores.into_iter().map(f64::from).collect();
    }
    Ok(vec![
        Tensor::from_vec(out, (rows, targets), x.device())?.to_dtype(x.dtype())?,
    ])
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::super::DOMAIN;
    use crate::eval::ops::testing::{f32s, flat, int, ints, run_in};
    use crate::eval::tensor_io;
    use crate::proto::AttributeProto;

    fn tensor(name: &str, values: &[f32], dtype: DType) -> AttributeProto {
        let t = Tensor::from_vec(values.to_vec(), values.len(), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        AttributeProto {
            name: Some(name.to_owned()),
            t: Some(tensor_io::to_proto(name, &t).unwrap()),
            r#type: Some(4),
            ..Default::default()
        }
    }

    #[test]
    fn one_split_sends_rows_to_two_leaves() {
        // x[0] <= 1 → leaf 0 (target 0, weight 5), else leaf 1 (target 1, weight 7).
        let attributes = || {
            vec![
                tensor("nodes_splits", &[1.0], DType::F32),
                tensor("nodes_modes", &[0.0], DType::U8),
                ints("nodes_featureids", &[0]),
                ints("nodes_truenodeids", &[0]),
                ints("nodes_trueleafs", &[1]),
                ints("nodes_falsenodeids", &[1]),
                ints("nodes_falseleafs", &[1]),
                ints("leaf_targetids", &[0, 1]),
                tensor("leaf_weights", &[5.0, 7.0], DType::F32),
                ints("tree_roots", &[0]),
                int("n_targets", 2),
            ]
        };
        let out = run_in(
            DOMAIN,
            "TreeEnsemble",
            attributes(),
            &[f32s(&[0.5, 2.0], &[2, 1])],
        );
        assert_eq!(flat(&out[0]), vec![5.0, 0.0, 0.0, 7.0]);
        let mut softmax = attributes();
        softmax.push(int("post_transform", 1));
        let out = run_in(
            DOMAIN,
            "TreeEnsemble",
            softmax,
            &[f32s(&[0.5, 2.0], &[2, 1])],
        );
        let expected = [0.993_307_2, 0.006_692_851, 0.000_911_051_2, 0.999_089];
        let got = flat(&out[0]);
        assert!(
            got.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6),
            "{got:?}"
        );
    }
}

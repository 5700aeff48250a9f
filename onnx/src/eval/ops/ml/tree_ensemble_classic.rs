//! TreeEnsembleClassifier and TreeEnsembleRegressor (ai.onnx.ml opsets 1 and 3: what skl2onnx writes for
//! decision trees, random forests and gradient boosting), computed as ONNX Runtime computes them on one
//! thread: trees in their order, each leaf's weights in theirs, base values and `post_transform` after.
//! Nodes are named by (tree id, node id); a tree is a run of equal `nodes_treeids` whose first node is
//! its root.

use std::collections::HashMap;

use candle_core::Tensor;

use super::super::super::node::{Node, required};
use super::scores::{PostTransform, SecondClass, evaluation, int_labels};
use super::tree_ensemble::{Comparison, tensor_attr};
use crate::ModelError;

/// X read in f64 (see [`super::scores::Rows`]).
type Rows = super::scores::Rows<f64>;

type Out = Result<Vec<Tensor>, ModelError>;

/// A node: a branch comparing its feature, or a leaf.
#[derive(Clone, Copy)]
enum Mode {
    Branch(Comparison),
    Leaf,
}

impl Mode {
    fn of(name: &str) -> Result<Self, ModelError> {
        Ok(Self::Branch(match name {
            "BRANCH_LEQ" => Comparison::Leq,
            "BRANCH_LT" => Comparison::Lt,
            "BRANCH_GTE" => Comparison::Gte,
            "BRANCH_GT" => Comparison::Gt,
            "BRANCH_EQ" => Comparison::Eq,
            "BRANCH_NEQ" => Comparison::Neq,
            "LEAF" => return Ok(Self::Leaf),
            other => return Err(evaluation(format!("tree node mode {other:?}"))),
        }))
    }
}

struct TreeNode {
    mode: Mode,
    feature: usize,
    value: f64,
    /// Indices into the node list.
    children: [usize; 2],
    missing_tracks_true: bool,
    /// (target or class, weight) in the model's order.
    weights: Vec<(usize, f64)>,
}

/// Every tree's nodes, and the roots in tree order.
struct Forest {
    nodes: Vec<TreeNode>,
    roots: Vec<usize>,
}

/// A float list attribute, or its `_as_tensor` twin (double, for a model of double X): thresholds and
/// weights are compared and summed in f64, which holds either exactly.
fn floats(node: &Node<'_>, name: &str) -> Result<Vec<f64>, ModelError> {
    match tensor_attr(node, &format!("{name}_as_tensor"))? {
        Some(values) => Ok(values),
        None => Ok(node
            .floats(name)
            .unwrap_or_default()
            .into_iter()
            .map(f64::from)
            .collect()),
    }
}

fn ints(node: &Node<'_>, name: &str) -> Vec<i64> {
    node.ints(name).unwrap_or_default()
}

/// Where each (tree id, node id) sits in the node list.
type Places = HashMap<(i64, i64), usize>;

fn place(places: &Places, op: &str, tree: i64, id: i64) -> Result<usize, ModelError> {
    places
        .get(&(tree, id))
        .copied()
        .ok_or_else(|| evaluation(format!("{op}: tree {tree} has no node {id}")))
}

/// The first node of each run of equal tree ids: the trees' roots, in order. A tree whose nodes are not
/// listed together is an error, as in ONNX Runtime.
fn roots(op: &str, trees: &[i64]) -> Result<Vec<usize>, ModelError> {
    let roots: Vec<usize> = (0..trees.len())
        .filter(|&i| i == 0 || trees[i - 1] != trees[i])
        .collect();
    let mut seen = std::collections::HashSet::new();
    if !roots.iter().all(|&r| seen.insert(trees[r])) {
        return Err(evaluation(format!(
            "{op}: a tree's nodes are not listed together"
        )));
    }
    Ok(roots)
}

impl Forest {
    /// `prefix` names the weights' attributes: `target` (regressor) or `class` (classifier).
    fn parse(
        node: &Node<'_>,
        prefix: &str,
        outputs: usize,
        features: usize,
    ) -> Result<Self, ModelError> {
        let trees = ints(node, "nodes_treeids");
        let (mut nodes, places) = Self::nodes(node, &trees, features)?;
        Self::attach_weights(node, prefix, outputs, &places, &mut nodes)?;
        Ok(Self {
            nodes,
            roots: roots(node.op_type(), &trees)?,
        })
    }

    /// The nodes in attribute order, their branches resolved to places in that order.
    fn nodes(
        node: &Node<'_>,
        trees: &[i64],
        features: usize,
    ) -> Result<(Vec<TreeNode>, Places), ModelError> {
        let op = node.op_type();
        let values = floats(node, "nodes_values")?;
        let count = values.len();
        let ids = ints(node, "nodes_nodeids");
        let (feature_ids, trues, falses) = (
            ints(node, "nodes_featureids"),
            ints(node, "nodes_truenodeids"),
            ints(node, "nodes_falsenodeids"),
        );
        let modes = node.strings("nodes_modes").unwrap_or_default();
        if [
            trees.len(),
            ids.len(),
            feature_ids.len(),
            trues.len(),
            falses.len(),
            modes.len(),
        ] != [count; 6]
        {
            return Err(evaluation(format!(
                "{op}'s node attributes differ in length"
            )));
        }
        let mut places = Places::with_capacity(count);
        for (i, key) in trees.iter().zip(&ids).enumerate() {
            if places.insert((*key.0, *key.1), i).is_some() {
                return Err(evaluation(format!("{op} lists node {key:?} twice")));
            }
        }
        let tracks = ints(node, "nodes_missing_value_tracks_true");
        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            let mode = Mode::of(&modes[i])?;
            let leaf = matches!(mode, Mode::Leaf);
            let feature = usize::try_from(feature_ids[i])
                .ok()
                .filter(|&f| leaf || f < features)
                .ok_or_else(|| {
                    evaluation(format!(
                        "{op}: feature {} is outside X's {features}",
                        feature_ids[i]
                    ))
                })?;
            let children = if leaf {
                [i, i]
            } else {
                [
                    place(&places, op, trees[i], trues[i])?,
                    place(&places, op, trees[i], falses[i])?,
                ]
            };
            nodes.push(TreeNode {
                mode,
                feature,
                value: values[i],
                children,
                missing_tracks_true: tracks.get(i) == Some(&1),
                weights: Vec::new(),
            });
        }
        Ok((nodes, places))
    }

    /// Each weight given to its node (a leaf), in attribute order.
    fn attach_weights(
        node: &Node<'_>,
        prefix: &str,
        outputs: usize,
        places: &Places,
        nodes: &mut [TreeNode],
    ) -> Result<(), ModelError> {
        let op = node.op_type();
        let (w_trees, w_nodes, w_ids) = (
            ints(node, &format!("{prefix}_treeids")),
            ints(node, &format!("{prefix}_nodeids")),
            ints(node, &format!("{prefix}_ids")),
        );
        let weights = floats(node, &format!("{prefix}_weights"))?;
        if [w_nodes.len(), w_ids.len(), weights.len()] != [w_trees.len(); 3] {
            return Err(evaluation(format!(
                "{op}'s {prefix} attributes differ in length"
            )));
        }
        for k in 0..w_trees.len() {
            let at = place(places, op, w_trees[k], w_nodes[k])?;
            let target = usize::try_from(w_ids[k])
                .ok()
                .filter(|&t| t < outputs)
                .ok_or_else(|| {
                    evaluation(format!(
                        "{op}: {prefix} id {} is not below {outputs}",
                        w_ids[k]
                    ))
                })?;
            nodes[at].weights.push((target, weights[k]));
        }
        Ok(())
    }

    /// The leaf a row reaches from `root`; a walk longer than the node count is a cycle.
    fn leaf(&self, root: usize, row: &[f64]) -> Result<&TreeNode, ModelError> {
        let mut at = &self.nodes[root];
        for _ in 0..=self.nodes.len() {
            let Mode::Branch(comparison) = at.mode else {
                return Ok(at);
            };
            let x = row[at.feature];
            let goes_true = comparison.holds(x, at.value) || (at.missing_tracks_true && x.is_nan());
            at = &self.nodes[at.children[usize::from(!goes_true)]];
        }
        Err(evaluation("a tree's branches form a cycle"))
    }
}

/// Per output: the sum of the weights reached (in tree order), and whether any was.
fn sums(forest: &Forest, row: &[f64], outputs: usize) -> Result<(Vec<f64>, Vec<bool>), ModelError> {
    let (mut sum, mut has) = (vec![0f64; outputs], vec![false; outputs]);
    for &root in &forest.roots {
        for &(target, w) in &forest.leaf(root, row)?.weights {
            sum[target] += w;
            has[target] = true;
        }
    }
    Ok((sum, has))
}

/// Y [rows, n_targets]: the leaves' weights aggregated (`aggregate_function` SUM, AVERAGE, MIN, MAX)
/// plus `base_values`. One target is transformed only by PROBIT, as ONNX Runtime does.
pub fn tree_ensemble_regressor(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = Rows::of(required(inputs, 0)?, "TreeEnsembleRegressor")?;
    let targets = usize::try_from(node.int("n_targets", 1))
        .ok()
        .filter(|&t| t >= 1)
        .ok_or_else(|| evaluation("TreeEnsembleRegressor n_targets must be 1 or more"))?;
    super::scores::cells(x.rows, targets, "TreeEnsembleRegressor")?;
    let forest = Forest::parse(node, "target", targets, x.features)?;
    let aggregate = node
        .string("aggregate_function")
        .unwrap_or_else(|| "SUM".to_owned());
    let base = floats(node, "base_values")?;
    let transform = PostTransform::of(node)?;
    let trees = forest.roots.len() as f64;
    let mut y = Vec::with_capacity(x.rows * targets);
    for i in 0..x.rows {
        let row = x.row(i);
        let mut out = vec![0f64; targets];
        let mut has = vec![false; targets];
        for &root in &forest.roots {
            let leaf = forest.leaf(root, row)?;
            // One target: a leaf gives its first weight alone.
            let weights = if targets == 1 {
                &leaf.weights[..leaf.weights.len().min(1)]
            } else {
                &leaf.weights
            };
            for &(t, w) in weights {
                out[t] = match aggregate.as_str() {
                    "MIN" if has[t] => out[t].min(w),
                    "MAX" if has[t] => out[t].max(w),
                    "MIN" | "MAX" => w,
                    _ => out[t] + w,
                };
                has[t] = true;
            }
        }
        for t in 0..targets {
            let b = match base.len() {
                n if n == targets => base[t],
                1 if targets == 1 => base[0],
                _ => 0.0,
            };
            let reached = if has[t] || targets == 1 { out[t] } else { 0.0 };
            out[t] = match aggregate.as_str() {
                "SUM" => reached + b,
                "AVERAGE" => reached / trees + b,
                "MIN" | "MAX" => reached + b,
                other => {
                    return Err(evaluation(format!(
                        "TreeEnsembleRegressor aggregate_function {other:?} is none of SUM, \
                         AVERAGE, MIN, MAX"
                    )));
                }
            };
            // Of several targets, ONNX Runtime writes 0 for one no leaf gave a weight, base or not.
            if targets > 1 && !has[t] {
                out[t] = 0.0;
            }
        }
        // The output is f32 whatever X was; the transforms run in f32, as in ONNX Runtime.
        let mut out: Vec<f32> = out.into_iter().map(|v| v as f32).collect();
        if targets > 1 {
            transform.apply(&mut out);
        } else if transform == PostTransform::Probit {
            out[0] = super::scores::probit(out[0]);
        }
        y.extend(out);
    }
    Ok(vec![Tensor::from_vec(y, (x.rows, targets), &x.device)?])
}

/// Y [rows]: each row's label; Z [rows, classes]: its scores. The weights reached are summed per class
/// (`aggregate_function` does not apply) with `base_values`. Two classes follow ONNX Runtime's binary
/// rules: one class's weights alone (gradient boosting) make a score s written as two, and the label
/// is the second when s passes 0.5 (all weights positive) or 0.
pub fn tree_ensemble_classifier(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = Rows::of(required(inputs, 0)?, "TreeEnsembleClassifier")?;
    let labels = int_labels(node, "classlabels_int64s", "classlabels_strings")?;
    let classes = labels.len();
    if classes < 2 {
        return Err(evaluation(format!(
            "TreeEnsembleClassifier has {classes} class labels: it needs two or more"
        )));
    }
    super::scores::cells(x.rows, classes, "TreeEnsembleClassifier")?;
    let forest = Forest::parse(node, "class", classes, x.features)?;
    let base = floats(node, "base_values")?;
    let transform = PostTransform::of(node)?;
    let class_weights = floats(node, "class_weights")?;
    let all_positive = class_weights.iter().all(|&w| w >= 0.0);
    let binary = classes == 2 && {
        let ids = ints(node, "class_ids");
        !ids.is_empty() && ids.iter().all(|&id| id == ids[0])
    };
    let (mut y, mut z) = (
        Vec::with_capacity(x.rows),
        Vec::with_capacity(x.rows * classes),
    );
    for i in 0..x.rows {
        let (mut sum, mut has) = sums(&forest, x.row(i), classes)?;
        let (label, mut scores, second) = if classes > 2 {
            for (k, &b) in base.iter().enumerate().take(classes) {
                sum[k] = if has[k] { sum[k] + b } else { b };
                has[k] = true;
            }
            let best = (0..classes)
                .filter(|&k| has[k])
                .fold(None, |best: Option<usize>, k| match best {
                    Some(b) if sum[b] >= sum[k] => Some(b),
                    _ => Some(k),
                })
                .ok_or_else(|| evaluation("TreeEnsembleClassifier scored no class"))?;
            let scores = (0..classes)
                .map(|k| if has[k] { sum[k] as f32 } else { 0.0 })
                .collect();
            (labels[best], scores, SecondClass::Single)
        } else {
            binary_scores(&mut sum, &mut has, &base, binary, all_positive, &labels)
        };
        transform.write(&mut scores, second);
        if scores.len() != classes {
            return Err(evaluation(
                "TreeEnsembleClassifier: ONNX Runtime leaves this form's second score unwritten \
                 (one class scored, PROBIT or no second class)",
            ));
        }
        y.push(label);
        z.extend(scores);
    }
    Ok(vec![
        Tensor::from_vec(y, x.rows, &x.device)?,
        Tensor::from_vec(z, (x.rows, classes), &x.device)?,
    ])
}

/// Two classes' label and scores from their sums, as ONNX Runtime's classifier aggregator has them.
fn binary_scores(
    sum: &mut [f64],
    has: &mut [bool],
    base: &[f64],
    binary: bool,
    all_positive: bool,
    labels: &[i64],
) -> (i64, Vec<f32>, SecondClass) {
    let mut second = SecondClass::Single;
    let mut both = true;
    match base.len() {
        // As ONNX Runtime reads it: the second score becomes base[1] plus the first's sum.
        2 if has[1] => {
            sum[1] = base[1] + sum[0];
            sum[0] = -sum[1];
        }
        2 => {
            sum[0] += base[0];
            sum[1] += base[1];
        }
        1 => {
            sum[0] += base[0];
            both = has[1];
        }
        0 => {
            second = SecondClass::Negated;
            both = has[1];
        }
        _ => {}
    }
    let score = |k: usize| if has[k] { sum[k] } else { 0.0 };
    let positive = if both && has[1] { sum[1] } else { score(0) };
    let (label, second) = if binary {
        match (all_positive, positive) {
            (true, p) if p > 0.5 => (labels[1], SecondClass::Complement),
            (true, _) => (labels[0], SecondClass::Complement),
            (false, p) if p > 0.0 => (labels[1], SecondClass::Negated),
            (false, _) => (labels[0], SecondClass::Negated),
        }
    } else {
        // ONNX Runtime answers 1 or 0 here, not the labels at those places.
        (i64::from(positive > 0.0), second)
    };
    let scores = if both {
        vec![score(0) as f32, score(1) as f32]
    } else {
        vec![score(0) as f32]
    };
    (label, scores, second)
}

#[cfg(test)]
mod tests {
    use candle_core::Tensor;

    use super::super::DOMAIN;
    use crate::eval::ops::testing::{f32s, flat, floats, ints, run_in, string, strings};
    use crate::proto::AttributeProto;

    /// Two trees of one split each on feature 0 (at 1.0 and at 3.0), their four leaves weighted
    /// 1, 2 and 10, 20 for `prefix` id 0.
    fn two_stumps(prefix: &str) -> Vec<AttributeProto> {
        vec![
            ints("nodes_treeids", &[0, 0, 0, 1, 1, 1]),
            ints("nodes_nodeids", &[0, 1, 2, 0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0, 0, 0, 0]),
            floats("nodes_values", &[1.0, 0.0, 0.0, 3.0, 0.0, 0.0]),
            strings(
                "nodes_modes",
                &["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"],
            ),
            ints("nodes_truenodeids", &[1, 0, 0, 1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0, 2, 0, 0]),
            ints(&format!("{prefix}_treeids"), &[0, 0, 1, 1]),
            ints(&format!("{prefix}_nodeids"), &[1, 2, 1, 2]),
            ints(&format!("{prefix}_ids"), &[0, 0, 0, 0]),
            floats(&format!("{prefix}_weights"), &[1.0, 2.0, 10.0, 20.0]),
        ]
    }

    #[test]
    fn a_regressor_sums_or_averages_the_trees_then_adds_its_base() {
        let x = || f32s(&[0.5, 2.0, 4.0], &[3, 1]);
        let mut sum = two_stumps("target");
        sum.push(floats("base_values", &[100.0]));
        let out = run_in(DOMAIN, "TreeEnsembleRegressor", sum, &[x()]);
        assert_eq!(flat(&out[0]), vec![111.0, 112.0, 122.0]);
        let mut average = two_stumps("target");
        average.extend([
            floats("base_values", &[100.0]),
            string("aggregate_function", "AVERAGE"),
        ]);
        let out = run_in(DOMAIN, "TreeEnsembleRegressor", average, &[x()]);
        assert_eq!(flat(&out[0]), vec![105.5, 106.0, 111.0]);
    }

    #[test]
    fn a_binary_classifier_of_one_score_writes_both_and_labels_by_its_sign() {
        // Gradient boosting's form: every weight on class 0, some negative, a base, LOGISTIC.
        let mut attributes = two_stumps("class");
        attributes[10] = floats("class_weights", &[1.0, 2.0, 10.0, -20.0]);
        attributes.extend([
            ints("classlabels_int64s", &[4, 9]),
            floats("base_values", &[-10.0]),
            string("post_transform", "LOGISTIC"),
        ]);
        let out = run_in(
            DOMAIN,
            "TreeEnsembleClassifier",
            attributes,
            &[f32s(&[0.5, 4.0], &[2, 1])],
        );
        // Scores 1 and -28: labels 9 and 4; [logistic(-s), logistic(s)].
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![9, 4]);
        let z = flat(&out[1]);
        assert!((z[1] - 0.731_058_6).abs() < 1e-6 && (z[0] + z[1] - 1.0).abs() < 1e-6);
        assert!(z[3] < 1e-6, "{z:?}");
    }

    #[test]
    fn a_leaf_naming_no_feature_of_x_is_still_a_leaf() {
        let mut attributes = two_stumps("target");
        attributes[2] = ints("nodes_featureids", &[0, 99, 99, 0, 99, 99]);
        let x = Some(Tensor::new(&[[0.5f32]], &candle_core::Device::Cpu).unwrap());
        let out = run_in(DOMAIN, "TreeEnsembleRegressor", attributes, &[x]);
        assert_eq!(flat(&out[0]), vec![11.0]);
    }
}

//! LinearClassifier and LinearRegressor: scores X·Wᵀ + b in f32, then `post_transform`, as ONNX Runtime
//! computes them (scikit-learn's logistic regression, linear SVMs, ridge and the other linear models).

use candle_core::Tensor;

use super::super::super::node::{Node, required};
use super::scores::{PostTransform, Rows, argmax, evaluation, int_labels};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// `outputs` rows of scores: b + X·Wᵀ per row, W [outputs, features] row-major.
pub(super) fn scores(x: &Rows<f32>, weights: &[f32], bias: &[f32], outputs: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.rows * outputs);
    for i in 0..x.rows {
        let row = x.row(i);
        for o in 0..outputs {
            let w = &weights[o * x.features..(o + 1) * x.features];
            let dot: f32 = row.iter().zip(w).map(|(a, b)| a * b).sum();
            out.push(bias.get(o).copied().unwrap_or(0.0) + dot);
        }
    }
    out
}

fn coefficients(node: &Node<'_>, outputs: usize, features: usize) -> Result<Vec<f32>, ModelError> {
    let coefficients = node.floats("coefficients").unwrap_or_default();
    if outputs.checked_mul(features) != Some(coefficients.len()) {
        return Err(evaluation(format!(
            "{} has {} coefficients for {outputs} outputs of {features} features",
            node.op_type(),
            coefficients.len()
        )));
    }
    Ok(coefficients)
}

/// Y: the label of each row; Z: its scores. A model of one class's coefficients (a binary logistic
/// regression) labels a row positive when its raw score is above 0 and, with two labels, scores it
/// [1 - s, s].
pub fn linear_classifier(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = Rows::<f32>::of(required(inputs, 0)?, "LinearClassifier")?;
    let intercepts = node.floats("intercepts").unwrap_or_default();
    let classes = intercepts.len();
    if classes == 0 {
        return Err(evaluation(
            "LinearClassifier has no intercepts: it needs one per class",
        ));
    }
    super::scores::cells(x.rows, classes.max(2), "LinearClassifier")?;
    let weights = coefficients(node, classes, x.features)?;
    let labels = int_labels(node, "classlabels_ints", "classlabels_strings")?;
    if classes > 1 && labels.len() < classes {
        return Err(evaluation(format!(
            "LinearClassifier scores {classes} classes but names {} labels",
            labels.len()
        )));
    }
    let transform = PostTransform::of(node)?;
    let two_labels = classes == 1 && labels.len() == 2;
    if two_labels && transform == PostTransform::Probit {
        return Err(evaluation(
            "LinearClassifier with one class of coefficients, two labels and PROBIT: ONNX Runtime \
             leaves half its scores unwritten, so there is no result to agree with",
        ));
    }
    let raw = scores(&x, &weights, &intercepts, classes);
    let (negative, positive) = if two_labels {
        (labels[0], labels[1])
    } else {
        (0, 1)
    };
    let mut y = Vec::with_capacity(x.rows);
    let mut z = Vec::with_capacity(raw.len() * if two_labels { 2 } else { 1 });
    for row in raw.chunks(classes) {
        if classes == 1 {
            let s = row[0];
            y.push(if s > 0.0 { positive } else { negative });
            if two_labels {
                z.extend([1.0 - s, s]);
            } else {
                z.push(if transform == PostTransform::Probit {
                    super::scores::probit(s)
                } else {
                    s
                });
            }
        } else {
            y.push(labels[argmax(row)]);
            let mut row = row.to_vec();
            transform.apply(&mut row);
            z.extend(row);
        }
    }
    let z_shape = (x.rows, if two_labels { 2 } else { classes });
    Ok(vec![
        Tensor::from_vec(y, x.rows, &x.device)?,
        Tensor::from_vec(z, z_shape, &x.device)?,
    ])
}

/// Y [rows, targets]; `intercepts` count only when there is one per target, as ONNX Runtime reads
/// them. One target's score is transformed only by PROBIT (ONNX Runtime ignores the others there).
pub fn linear_regressor(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = Rows::<f32>::of(required(inputs, 0)?, "LinearRegressor")?;
    let targets = usize::try_from(node.int("targets", 1))
        .ok()
        .filter(|&t| t >= 1)
        .ok_or_else(|| evaluation("LinearRegressor targets must be 1 or more"))?;
    super::scores::cells(x.rows, targets, "LinearRegressor")?;
    let weights = coefficients(node, targets, x.features)?;
    let intercepts = node
        .floats("intercepts")
        .filter(|b| b.len() == targets)
        .unwrap_or_default();
    let transform = PostTransform::of(node)?;
    let mut y = scores(&x, &weights, &intercepts, targets);
    if targets > 1 {
        y.chunks_mut(targets).for_each(|row| transform.apply(row));
    } else if transform == PostTransform::Probit {
        y.iter_mut().for_each(|s| *s = super::scores::probit(*s));
    }
    Ok(vec![Tensor::from_vec(y, (x.rows, targets), &x.device)?])
}

#[cfg(test)]
mod tests {
    use super::super::DOMAIN;
    use crate::eval::ops::testing::{f32s, flat, floats, ints, run_in, string, strings};

    #[test]
    fn three_classes_take_the_largest_score_and_softmax() {
        let out = run_in(
            DOMAIN,
            "LinearClassifier",
            vec![
                floats("coefficients", &[1.0, 0.0, 0.0, 1.0, -1.0, -1.0]),
                floats("intercepts", &[0.0, 0.5, 0.0]),
                ints("classlabels_ints", &[7, 8, 9]),
                string("post_transform", "SOFTMAX"),
            ],
            &[f32s(&[2.0, 1.0, -3.0, -3.0], &[2, 2])],
        );
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![7, 9]);
        let z = flat(&out[1]);
        assert_eq!(out[1].dims(), &[2, 3]);
        assert!((z[0..3].iter().sum::<f32>() - 1.0).abs() < 1e-6 && z[0] > z[1]);
    }

    #[test]
    fn one_class_of_coefficients_scores_both_labels() {
        let out = run_in(
            DOMAIN,
            "LinearClassifier",
            vec![
                floats("coefficients", &[1.0, 1.0]),
                floats("intercepts", &[-1.0]),
                ints("classlabels_ints", &[3, 5]),
                string("post_transform", "LOGISTIC"),
            ],
            &[f32s(&[0.25, 0.25, 2.0, 0.5], &[2, 2])],
        );
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![3, 5]);
        // ONNX Runtime writes [1 - s, s] of the raw score, whatever the transform.
        assert_eq!(flat(&out[1]), vec![1.5, -0.5, -0.5, 1.5]);
    }

    #[test]
    fn string_labels_are_refused_saying_why() {
        let proto = crate::proto::NodeProto {
            op_type: Some("LinearClassifier".to_owned()),
            attribute: vec![
                floats("coefficients", &[1.0, 1.0]),
                floats("intercepts", &[0.0, 0.0]),
                strings("classlabels_strings", &["cat", "dog"]),
            ],
            ..Default::default()
        };
        let node = crate::eval::node::Node::new(&proto, 1);
        let error = super::linear_classifier(&node, &[f32s(&[1.0], &[1, 1])]).unwrap_err();
        assert!(error.to_string().contains("no string tensors"), "{error}");
    }

    #[test]
    fn a_regressor_adds_its_intercepts() {
        let out = run_in(
            DOMAIN,
            "LinearRegressor",
            vec![
                floats("coefficients", &[2.0, 1.0, 0.0, -1.0]),
                floats("intercepts", &[1.0, 0.0]),
                crate::eval::ops::testing::int("targets", 2),
            ],
            &[f32s(&[1.0, 3.0], &[1, 2])],
        );
        assert_eq!(flat(&out[0]), vec![6.0, -3.0]);
    }
}

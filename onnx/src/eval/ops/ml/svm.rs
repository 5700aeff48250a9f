//! SVMClassifier and SVMRegressor (scikit-learn's SVC and SVR as skl2onnx writes them), in f32 as ONNX
//! Runtime computes them: one-vs-one decisions and votes, Platt's probabilities coupled pairwise.

use candle_core::Tensor;

use super::super::super::node::{Node, required};
use super::scores::{PostTransform, Rows, SecondClass, argmax, evaluation, int_labels, logistic};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

#[derive(Clone, Copy)]
enum Kernel {
    Linear,
    Poly { gamma: f32, coef0: f32, degree: f32 },
    Rbf { gamma: f32 },
    Sigmoid { gamma: f32, coef0: f32 },
}

impl Kernel {
    fn of(node: &Node<'_>) -> Result<Self, ModelError> {
        let params = node.floats("kernel_params").unwrap_or_default();
        let p = |i: usize| params.get(i).copied().unwrap_or(0.0);
        let (gamma, coef0, degree) = (p(0), p(1), p(2));
        Ok(match node.string("kernel_type").as_deref() {
            None | Some("LINEAR") => Self::Linear,
            Some("POLY") => Self::Poly {
                gamma,
                coef0,
                degree,
            },
            Some("RBF") => Self::Rbf { gamma },
            Some("SIGMOID") => Self::Sigmoid { gamma, coef0 },
            Some(other) => {
                return Err(evaluation(format!(
                    "{} kernel_type {other:?} is none of LINEAR, POLY, RBF, SIGMOID",
                    node.op_type()
                )));
            }
        })
    }

    fn apply(self, x: &[f32], v: &[f32]) -> f32 {
        let dot = || x.iter().zip(v).map(|(a, b)| a * b).sum::<f32>();
        match self {
            Self::Linear => dot(),
            Self::Poly {
                gamma,
                coef0,
                degree,
            } => {
                let k = gamma * dot() + coef0;
                match degree {
                    2.0 => k * k,
                    3.0 => k * k * k,
                    d => k.powf(d),
                }
            }
            Self::Rbf { gamma } => {
                let s: f32 = x.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum();
                (-gamma * s).exp()
            }
            Self::Sigmoid { gamma, coef0 } => (gamma * dot() + coef0).tanh(),
        }
    }
}

/// The support vectors as rows of X's width.
fn support_vectors<'a>(
    node: &Node<'_>,
    vectors: &'a [f32],
    count: usize,
    features: usize,
) -> Result<std::slice::Chunks<'a, f32>, ModelError> {
    if count.checked_mul(features) != Some(vectors.len()) {
        return Err(evaluation(format!(
            "{} has {} support vector values for {count} vectors of X's {features} features",
            node.op_type(),
            vectors.len()
        )));
    }
    Ok(vectors.chunks(features.max(1)))
}

/// Pairwise probabilities r[i][j] coupled into one per class (LIBSVM's method as ONNX Runtime runs
/// it: 100 iterations at most, in f32).
fn coupled(r: &[Vec<f32>]) -> Vec<f32> {
    let k = r.len();
    let mut q = vec![vec![0f32; k]; k];
    let mut p = vec![1.0 / k as f32; k];
    for t in 0..k {
        for j in 0..t {
            q[t][t] += r[j][t] * r[j][t];
            q[t][j] = q[j][t];
        }
        for j in t + 1..k {
            q[t][t] += r[j][t] * r[j][t];
            q[t][j] = -r[j][t] * r[t][j];
        }
    }
    let eps = 0.005 / k as f32;
    let mut qp = vec![0f32; k];
    for _ in 0..100 {
        let mut pqp = 0f32;
        for t in 0..k {
            qp[t] = (0..k).map(|j| q[t][j] * p[j]).sum();
            pqp += p[t] * qp[t];
        }
        if qp.iter().all(|v| (v - pqp).abs() < eps) {
            break;
        }
        for t in 0..k {
            let diff = (-qp[t] + pqp) / q[t][t];
            p[t] += diff;
            pqp = (pqp + diff * (diff * q[t][t] + 2.0 * qp[t])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[t][j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
    p
}

/// A support-vector classifier's one-vs-one machinery: each pair of classes' decision over the kernel
/// of a row with every support vector, and the pair's vote.
struct OneVsOne<'a> {
    kernel: Kernel,
    /// The support vectors, one row of X's width each.
    vectors: Vec<&'a [f32]>,
    /// Each class's support vectors, as a range of `vectors`.
    ranges: Vec<std::ops::Range<usize>>,
    coefficients: &'a [f32],
    rho: &'a [f32],
}

impl OneVsOne<'_> {
    /// Each pair's decision (class a before class b, a < b) and the class with the most votes (the
    /// first of a tie): sums in f64 of f32 products, plus the pair's rho, as ONNX Runtime adds them.
    fn decide(&self, row: &[f32]) -> (Vec<f32>, usize) {
        let k: Vec<f32> = self
            .vectors
            .iter()
            .map(|v| self.kernel.apply(row, v))
            .collect();
        let (classes, count) = (self.ranges.len(), self.vectors.len());
        let mut votes = vec![0usize; classes];
        let mut decisions = Vec::with_capacity(classes * (classes - 1) / 2);
        for a in 0..classes {
            for b in a + 1..classes {
                let mut sum = 0f64;
                for sv in self.ranges[a].clone() {
                    sum += f64::from(self.coefficients[(b - 1) * count + sv] * k[sv]);
                }
                for sv in self.ranges[b].clone() {
                    sum += f64::from(self.coefficients[a * count + sv] * k[sv]);
                }
                sum += f64::from(self.rho[decisions.len()]);
                decisions.push(sum as f32);
                votes[if sum > 0.0 { a } else { b }] += 1;
            }
        }
        let winner = (0..classes).fold(0, |best, c| if votes[c] > votes[best] { c } else { best });
        (decisions, winner)
    }
}

/// Each class's probability from the pairs' decisions: Platt's sigmoid of each (`prob_a`, `prob_b`),
/// coupled.
fn probabilities(decisions: &[f32], prob_a: &[f32], prob_b: &[f32], classes: usize) -> Vec<f32> {
    let mut r = vec![vec![0f32; classes]; classes];
    let pairs = (0..classes).flat_map(|a| (a + 1..classes).map(move |b| (a, b)));
    for (idx, (a, b)) in pairs.enumerate() {
        // The probability of the pair's first class.
        let p =
            (1.0 - logistic(decisions[idx] * prob_a[idx] + prob_b[idx])).clamp(1e-7, 1.0 - 1e-7);
        r[a][b] = p;
        r[b][a] = 1.0 - p;
    }
    coupled(&r)
}

/// Y [rows]: labels; Z [rows, width]: one-vs-one decisions (two classes: [-d, d]), or each class's
/// probability when `prob_a`/`prob_b` are given, or, without support vectors, each class's linear
/// score.
pub fn svm_classifier(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = Rows::<f32>::of(required(inputs, 0)?, "SVMClassifier")?;
    let labels = int_labels(node, "classlabels_ints", "classlabels_strings")?;
    let classes = labels.len();
    let coefficients = node.floats("coefficients").unwrap_or_default();
    let rho = node.floats("rho").unwrap_or_default();
    let per_class = node.ints("vectors_per_class").unwrap_or_default();
    let (prob_a, prob_b) = (
        node.floats("prob_a").unwrap_or_default(),
        node.floats("prob_b").unwrap_or_default(),
    );
    let transform = PostTransform::of(node)?;
    let all_positive = coefficients.iter().all(|&c| c >= 0.0);
    if classes < 2 || rho.is_empty() {
        return Err(evaluation(format!(
            "SVMClassifier has {classes} class labels and {} rho: it needs two or more and one \
             or more",
            rho.len()
        )));
    }
    super::scores::cells(classes, classes, "SVMClassifier")?;
    let pairs = classes * (classes - 1) / 2;
    super::scores::cells(x.rows, pairs.max(classes), "SVMClassifier")?;
    let ranges = per_class
        .iter()
        .scan(Some(0usize), |at, &n| {
            let start = (*at)?;
            *at = usize::try_from(n).ok().and_then(|n| start.checked_add(n));
            Some(at.map(|end| start..end))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| evaluation("SVMClassifier's vectors_per_class are negative or overflow"))?;
    let vectors = ranges.last().map_or(0, |r| r.end);
    if vectors == 0 {
        return linear_svm(&x, &coefficients, rho[0], &labels, transform, all_positive);
    }
    let sv_values = node.floats("support_vectors").unwrap_or_default();
    let probabilities_given = !prob_a.is_empty();
    if x.features == 0
        || ranges.len() != classes
        || (classes - 1)
            .checked_mul(vectors)
            .is_none_or(|n| coefficients.len() < n)
        || rho.len() < pairs
        || (probabilities_given && (prob_a.len() < pairs || prob_b.len() < pairs))
    {
        return Err(evaluation(
            "SVMClassifier's vectors_per_class, coefficients, rho or prob_a/prob_b do not fit its \
             classes, its support vectors and X's features",
        ));
    }
    let machine = OneVsOne {
        kernel: Kernel::of(node)?,
        vectors: support_vectors(node, &sv_values, vectors, x.features)?.collect(),
        ranges,
        coefficients: &coefficients,
        rho: &rho,
    };
    let width = match (probabilities_given, classes) {
        (true, _) => classes,
        (false, 2) => 2,
        (false, _) => pairs,
    };
    let second = if transform == PostTransform::None {
        SecondClass::Negated
    } else {
        SecondClass::Complement
    };
    let (mut y, mut z) = (
        Vec::with_capacity(x.rows),
        Vec::with_capacity(x.rows * width),
    );
    for i in 0..x.rows {
        let (decisions, winner) = machine.decide(x.row(i));
        y.push(labels[winner]);
        let mut scores = if probabilities_given {
            probabilities(&decisions, &prob_a, &prob_b, classes)
        } else {
            decisions
        };
        transform.write(&mut scores, second);
        if scores.len() != width {
            return Err(evaluation(
                "SVMClassifier of two classes under PROBIT: ONNX Runtime leaves the second score \
                 unwritten",
            ));
        }
        z.extend(scores);
    }
    Ok(vec![
        Tensor::from_vec(y, x.rows, &x.device)?,
        Tensor::from_vec(z, (x.rows, width), &x.device)?,
    ])
}

/// No support vectors: each class's score is X·coefficients[class] + rho[0].
fn linear_svm(
    x: &Rows<f32>,
    coefficients: &[f32],
    rho: f32,
    labels: &[i64],
    transform: PostTransform,
    all_positive: bool,
) -> Out {
    let classes = labels.len();
    if x.features == 0 || classes.checked_mul(x.features) != Some(coefficients.len()) {
        return Err(evaluation(format!(
            "SVMClassifier has {} coefficients for {classes} classes of {} features",
            coefficients.len(),
            x.features
        )));
    }
    let (mut y, mut z) = (
        Vec::with_capacity(x.rows),
        Vec::with_capacity(x.rows * classes),
    );
    let raw = super::linear::scores(x, coefficients, &vec![rho; classes], classes);
    for row in raw.chunks(classes) {
        let mut scores = row.to_vec();
        let best = argmax(&scores);
        let top = scores[best];
        let label = match classes {
            2 if (all_positive && top >= 0.5) || (!all_positive && top > 0.0) => labels[1],
            _ => labels[best],
        };
        y.push(label);
        transform.apply(&mut scores);
        z.extend(scores);
    }
    Ok(vec![
        Tensor::from_vec(y, x.rows, &x.device)?,
        Tensor::from_vec(z, (x.rows, classes), &x.device)?,
    ])
}

/// Y [rows, 1]: Σ coefficients · kernel(X, support vector) + rho[0] (without support vectors,
/// X·coefficients + rho[0]); a one-class model answers 1 above 0, else -1.
pub fn svm_regressor(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = Rows::<f32>::of(required(inputs, 0)?, "SVMRegressor")?;
    let coefficients = node.floats("coefficients").unwrap_or_default();
    let rho = node.floats("rho").unwrap_or_default();
    let vectors = usize::try_from(node.int("n_supports", 0)).unwrap_or(0);
    if coefficients.is_empty() || rho.is_empty() {
        return Err(evaluation("SVMRegressor needs coefficients and rho"));
    }
    let sv_values = node.floats("support_vectors").unwrap_or_default();
    let (kernel, svs): (Kernel, Vec<&[f32]>) = if vectors > 0 {
        if coefficients.len() < vectors || x.features == 0 {
            return Err(evaluation(format!(
                "SVMRegressor has {} coefficients for {vectors} support vectors",
                coefficients.len()
            )));
        }
        (
            Kernel::of(node)?,
            support_vectors(node, &sv_values, vectors, x.features)?.collect(),
        )
    } else if coefficients.len() == x.features {
        (Kernel::Linear, vec![&coefficients[..]])
    } else {
        return Err(evaluation(format!(
            "SVMRegressor has {} coefficients for X's {} features",
            coefficients.len(),
            x.features
        )));
    };
    let one_class = node.int("one_class", 0) != 0;
    let y: Vec<f32> = (0..x.rows)
        .map(|i| {
            let row = x.row(i);
            let value = if vectors > 0 {
                svs.iter()
                    .zip(&coefficients)
                    .map(|(sv, c)| c * kernel.apply(row, sv))
                    .sum::<f32>()
                    + rho[0]
            } else {
                kernel.apply(row, svs[0]) + rho[0]
            };
            match (one_class, value > 0.0) {
                (false, _) => value,
                (true, true) => 1.0,
                (true, false) => -1.0,
            }
        })
        .collect();
    Ok(vec![Tensor::from_vec(y, (x.rows, 1), &x.device)?])
}

#[cfg(test)]
mod tests {
    use super::super::DOMAIN;
    use crate::eval::ops::testing::{f32s, flat, floats, int, ints, run_in, string};

    #[test]
    fn two_classes_vote_by_the_decisions_sign_and_score_it_both_ways() {
        // One support vector a class; decision = 1·k(x, [1, 0]) - 1·k(x, [0, 1]) + 0.5, linear kernel.
        let attributes = vec![
            string("kernel_type", "LINEAR"),
            ints("vectors_per_class", &[1, 1]),
            floats("support_vectors", &[1.0, 0.0, 0.0, 1.0]),
            floats("coefficients", &[1.0, -1.0]),
            floats("rho", &[0.5]),
            ints("classlabels_ints", &[5, 6]),
        ];
        let out = run_in(
            DOMAIN,
            "SVMClassifier",
            attributes,
            &[f32s(&[2.0, 0.0, 0.0, 3.0], &[2, 2])],
        );
        // 2.5 > 0 votes for the first class; -2.5 for the second.
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![5, 6]);
        assert_eq!(flat(&out[1]), vec![-2.5, 2.5, 2.5, -2.5]);
    }

    #[test]
    fn without_support_vectors_each_class_scores_linearly() {
        let out = run_in(
            DOMAIN,
            "SVMClassifier",
            vec![
                floats("coefficients", &[1.0, 0.0, -1.0, 0.0]),
                floats("rho", &[0.5]),
                ints("classlabels_ints", &[3, 4]),
            ],
            &[f32s(&[1.0, 0.0], &[1, 2])],
        );
        // Two classes, mixed signs, the top score above 0: ONNX Runtime's rule names the second label.
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![4]);
        assert_eq!(flat(&out[1]), vec![1.5, -0.5]);
    }

    #[test]
    fn a_regressor_weighs_its_kernels_and_one_class_answers_a_sign() {
        let attributes = |one_class: i64| {
            vec![
                string("kernel_type", "RBF"),
                floats("kernel_params", &[0.5, 0.0, 3.0]),
                int("n_supports", 2),
                floats("support_vectors", &[0.0, 1.0]),
                floats("coefficients", &[2.0, -1.0]),
                floats("rho", &[0.25]),
                int("one_class", one_class),
            ]
        };
        let out = run_in(
            DOMAIN,
            "SVMRegressor",
            attributes(0),
            &[f32s(&[0.0], &[1, 1])],
        );
        let expected = 2.0 - (-0.5f32).exp() + 0.25;
        assert!((flat(&out[0])[0] - expected).abs() < 1e-6);
        let out = run_in(
            DOMAIN,
            "SVMRegressor",
            attributes(1),
            &[f32s(&[0.0], &[1, 1])],
        );
        assert_eq!(flat(&out[0]), vec![1.0]);
    }
}

//! What the classifiers and regressors of `ai.onnx.ml` do to their raw scores (`post_transform`), in f32
//! as ONNX Runtime computes them, and X read as rows of features.

use candle_core::{Device, Tensor};

use super::super::super::node::Node;
use crate::ModelError;

pub fn evaluation(message: impl Into<String>) -> ModelError {
    ModelError::Evaluation(message.into())
}

/// The most values a row of an ONNX-ML operator's output may have (targets, classes, features side by
/// side): far beyond any real model's, and small enough that a row a model's attributes ask for is
/// never an allocation the process cannot make.
pub const MAX_WIDTH: usize = 1 << 24;

/// rows × width values, refused past the evaluator's element limit: a model's attributes could ask for
/// any width.
pub fn cells(rows: usize, width: usize, op: &str) -> Result<usize, ModelError> {
    rows.checked_mul(width)
        .filter(|&c| c as u64 <= crate::model_check::MAX_ELEMENTS && width <= MAX_WIDTH)
        .ok_or_else(|| {
            evaluation(format!(
                "{op}'s output of {rows} rows of {width} is too large"
            ))
        })
}

/// X as `rows` rows of `features` values of `T`: a 1-D X is one row, a 2-D X is [rows, features]. The
/// linear models and SVMs read f32, as ONNX Runtime casts X for them; the trees f64, in which a double
/// X keeps its precision and a float one compares as it would in f32.
pub struct Rows<T> {
    pub rows: usize,
    pub features: usize,
    pub values: Vec<T>,
    /// X's device, where the outputs go.
    pub device: Device,
}

/// X's rows and features: a 1-D X is one row, a 2-D X is [rows, features].
fn shape(x: &Tensor, op: &str) -> Result<(usize, usize), ModelError> {
    match *x.dims() {
        [features] => Ok((1, features)),
        [rows, features] => Ok((rows, features)),
        _ => Err(evaluation(format!(
            "{op} takes X of rank 1 or 2, not {:?}",
            x.dims()
        ))),
    }
}

impl<T: candle_core::WithDType> Rows<T> {
    pub fn of(x: &Tensor, op: &str) -> Result<Self, ModelError> {
        let (rows, features) = shape(x, op)?;
        let values = x.to_dtype(T::DTYPE)?.flatten_all()?.to_vec1::<T>()?;
        Ok(Self {
            rows,
            features,
            values,
            device: x.device().clone(),
        })
    }

    pub fn row(&self, i: usize) -> &[T] {
        &self.values[i * self.features..(i + 1) * self.features]
    }
}

/// The class labels a classifier answers with: int64 (`classlabels_ints` or `classlabels_int64s`). String
/// labels are refused: kiln's evaluator holds no string tensors.
pub fn int_labels(node: &Node<'_>, ints: &str, strings: &str) -> Result<Vec<i64>, ModelError> {
    if node.strings(strings).is_some_and(|s| !s.is_empty()) {
        return Err(evaluation(format!(
            "{} with string class labels ({strings}): kiln's evaluator has no string tensors \
             (serve the model with --engine ort, or convert it with integer labels)",
            node.op_type()
        )));
    }
    Ok(node.ints(ints).unwrap_or_default())
}

/// `post_transform`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    pub fn of(node: &Node<'_>) -> Result<Self, ModelError> {
        Ok(match node.string("post_transform").as_deref() {
            None | Some("NONE") => Self::None,
            Some("LOGISTIC") => Self::Logistic,
            Some("SOFTMAX") => Self::Softmax,
            Some("SOFTMAX_ZERO") => Self::SoftmaxZero,
            Some("PROBIT") => Self::Probit,
            Some(other) => {
                return Err(evaluation(format!(
                    "{} post_transform {other:?} is none of NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO, \
                     PROBIT",
                    node.op_type()
                )));
            }
        })
    }

    /// Transforms one row of two or more scores in place.
    pub fn apply(self, row: &mut [f32]) {
        match self {
            Self::None => {}
            Self::Logistic => row.iter_mut().for_each(|s| *s = logistic(*s)),
            Self::Probit => row.iter_mut().for_each(|s| *s = probit(*s)),
            Self::Softmax => softmax(row),
            Self::SoftmaxZero => softmax_zero(row),
        }
    }

    /// The scores a tree ensemble or an SVM writes for a row (ONNX Runtime's `write_scores`): two or
    /// more transformed; a lone score under PROBIT transformed alone, else made two as `second` says
    /// (or left alone by `SecondClass::Single`).
    pub fn write(self, row: &mut Vec<f32>, second: SecondClass) {
        if row.len() != 1 {
            return self.apply(row);
        }
        let s = row[0];
        *row = match (self, second) {
            (Self::Probit, _) => vec![probit(s)],
            (_, SecondClass::Complement) => vec![1.0 - s, s],
            (Self::Logistic, SecondClass::Negated) => vec![logistic(-s), logistic(s)],
            (_, SecondClass::Negated) => vec![-s, s],
            (_, SecondClass::Single) => vec![s],
        };
    }
}

/// How a binary classifier that scores one class writes the other's score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondClass {
    /// The one score, as it is (ONNX Runtime then leaves the second column unwritten: the callers
    /// refuse that form).
    Single,
    /// 1 - s before s (the score is a probability).
    Complement,
    /// -s before s (logistic(-s) before logistic(s) under LOGISTIC).
    Negated,
}

pub fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 { 1.0 - v } else { v }
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::MIN, f32::max);
    let mut sum = 0.0f32;
    for s in row.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    row.iter_mut().for_each(|s| *s /= sum);
}

/// Softmax where a score of (nearly) zero stays zero and takes no share.
fn softmax_zero(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::MIN, f32::max);
    let mut sum = 0.0f32;
    for s in row.iter_mut() {
        if s.abs() > 1e-7 {
            *s = (*s - max).exp();
            sum += *s;
        } else {
            *s *= (-max).exp();
        }
    }
    row.iter_mut().for_each(|s| *s /= sum);
}

pub fn probit(x: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

/// Winitzki's approximation (a = 0.147), the one ONNX Runtime's `ComputeProbit` uses, so that a
/// PROBIT model's scores are ONNX Runtime's within f32 rounding, not the exact quantile's.
fn erf_inv(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let l = ((1.0 - x) * (1.0 + x)).ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * l;
    let v2 = (1.0 / 0.147) * l;
    sign * (-v + (v * v - v2).sqrt()).sqrt()
}

/// The index of the largest score, the first on ties (a NaN first score wins; later NaNs never do).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &s) in row.iter().enumerate().skip(1) {
        if s > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_are_onnx_runtimes() {
        let mut row = vec![1.0, 2.0, 3.0];
        PostTransform::Softmax.apply(&mut row);
        let expected = [0.090_030_57, 0.244_728_48, 0.665_240_94];
        assert!(row.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6));
        let mut zero = vec![0.0, 1.0, 1.0];
        PostTransform::SoftmaxZero.apply(&mut zero);
        assert_eq!(zero, vec![0.0, 0.5, 0.5]);
        assert!((logistic(-2.0) - 0.119_202_92).abs() < 1e-7);
        // Winitzki's approximation is within 2e-3 of the true quantile (1.959964 at 0.975).
        assert!((probit(0.5)).abs() < 1e-6);
        assert!((probit(0.975) - 1.959_964).abs() < 2e-3);
    }

    #[test]
    fn a_lone_score_becomes_two_as_told() {
        let mut one = vec![0.25];
        PostTransform::None.write(&mut one, SecondClass::Complement);
        assert_eq!(one, vec![0.75, 0.25]);
        let mut one = vec![2.0];
        PostTransform::None.write(&mut one, SecondClass::Negated);
        assert_eq!(one, vec![-2.0, 2.0]);
        let mut one = vec![2.0];
        PostTransform::Logistic.write(&mut one, SecondClass::Negated);
        assert!((one[0] + one[1] - 1.0).abs() < 1e-6 && one[1] > 0.88);
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 3.0]), 0);
    }
}

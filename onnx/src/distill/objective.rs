//! What the student is trained on and judged by: the teacher's soft targets (KL divergence at a
//! temperature on the logits, as Hinton et al. and DistilBERT) plus the cosine distance between the last
//! hidden states (DistilBERT's cosine embedding loss); and, on held-out sequences, how often the two
//! agree on the most likely token and how close their hidden states are.

use candle_core::{D, Tensor};
use serde::{Deserialize, Serialize};

use super::forward::{Outputs, log_softmax_last, softmax_last};
use crate::ModelError;

/// The loss's weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// Softens both distributions; the KL term is scaled by T² so its gradients keep their size.
    pub temperature: f64,
    /// Weight of the KL term on the logits.
    pub logit_weight: f64,
    /// Weight of the cosine distance between the last hidden states.
    pub hidden_weight: f64,
}

impl Default for Objective {
    fn default() -> Self {
        Self {
            temperature: 2.0,
            logit_weight: 1.0,
            hidden_weight: 1.0,
        }
    }
}

/// One step's loss and its two parts (the parts unweighted).
pub struct Loss {
    pub total: Tensor,
    pub kl: f32,
    pub hidden: f32,
}

/// Per-token cosine similarity of two [b, s, h] tensors, [b, s].
fn token_cosine(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let dot = (a * b)?.sum(D::Minus1)?;
    let norms = (a.sqr()?.sum(D::Minus1)?.sqrt()? * b.sqr()?.sum(D::Minus1)?.sqrt()?)?;
    dot.broadcast_div(&(norms + 1e-12)?)
}

impl Objective {
    /// The loss of `student` against `teacher` (whose outputs carry no gradient).
    pub fn loss(&self, student: &Outputs, teacher: &Outputs) -> Result<Loss, ModelError> {
        let t = self.temperature;
        let target = softmax_last(&(teacher.logits.detach() / t)?)?;
        let target_log = log_softmax_last(&(teacher.logits.detach() / t)?)?;
        let predicted_log = log_softmax_last(&(&student.logits / t)?)?;
        // KL(teacher ‖ student), summed over the vocabulary, averaged over tokens.
        let kl = (target * (target_log - predicted_log)?)?
            .sum(D::Minus1)?
            .mean_all()?;
        let hidden = token_cosine(&student.hidden, &teacher.hidden.detach())?
            .affine(-1.0, 1.0)?
            .mean_all()?;
        let total = ((&kl * (self.logit_weight * t * t))? + (&hidden * self.hidden_weight)?)?;
        Ok(Loss {
            total,
            kl: kl.to_scalar()?,
            hidden: hidden.to_scalar()?,
        })
    }
}

/// How closely a student follows its teacher on held-out sequences.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Share of token positions where both put the highest logit on the same token.
    pub top1: f64,
    /// ‖h_student − h_teacher‖ / ‖h_teacher‖ over every held-out token's last hidden state.
    pub hidden_relative_error: f64,
    /// Mean per-token cosine similarity of the last hidden states.
    pub hidden_cosine: f64,
    /// Token positions compared.
    pub tokens: usize,
}

/// Sums over batches, turned into an [`Agreement`] at the end.
#[derive(Default)]
pub struct AgreementTally {
    same: f64,
    tokens: usize,
    diff_sq: f64,
    teacher_sq: f64,
    cosine_sum: f64,
}

impl AgreementTally {
    pub fn add(&mut self, student: &Outputs, teacher: &Outputs) -> Result<(), ModelError> {
        let same = student
            .logits
            .argmax(D::Minus1)?
            .eq(&teacher.logits.argmax(D::Minus1)?)?
            .to_dtype(candle_core::DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?;
        let tokens = student.hidden.dim(0)? * student.hidden.dim(1)?;
        let scalar = |t: Tensor| -> Result<f64, ModelError> {
            Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
        };
        self.same += same;
        self.tokens += tokens;
        self.diff_sq += scalar((&student.hidden - &teacher.hidden)?.sqr()?.sum_all()?)?;
        self.teacher_sq += scalar(teacher.hidden.sqr()?.sum_all()?)?;
        self.cosine_sum += scalar(token_cosine(&student.hidden, &teacher.hidden)?.sum_all()?)?;
        Ok(())
    }

    pub fn finish(&self) -> Agreement {
        let tokens = self.tokens.max(1) as f64;
        Agreement {
            top1: self.same / tokens,
            hidden_relative_error: (self.diff_sq / self.teacher_sq.max(f64::MIN_POSITIVE)).sqrt(),
            hidden_cosine: self.cosine_sum / tokens,
            tokens: self.tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    fn outputs(logits: Tensor, hidden: Tensor) -> Outputs {
        Outputs { hidden, logits }
    }

    #[test]
    fn the_loss_is_zero_for_a_perfect_student_and_has_gradients() {
        let dev = &Device::Cpu;
        let logits = Tensor::randn(0f32, 1.0, (2, 3, 5), dev).unwrap();
        let hidden = Tensor::randn(0f32, 1.0, (2, 3, 4), dev).unwrap();
        let teacher = outputs(logits.clone(), hidden.clone());
        let same = Objective::default()
            .loss(&outputs(logits.clone(), hidden.clone()), &teacher)
            .unwrap();
        assert!(same.total.to_scalar::<f32>().unwrap().abs() < 1e-5);

        let student_logits = Var::from_tensor(&(&logits * 0.5).unwrap()).unwrap();
        let student = outputs(student_logits.as_tensor().clone(), hidden.clone());
        let off = Objective::default().loss(&student, &teacher).unwrap();
        assert!(off.kl > 0.0);
        let grads = off.total.backward().unwrap();
        assert!(grads.get(student_logits.as_tensor()).is_some());
    }

    #[test]
    fn agreement_counts_matching_top_tokens() {
        let dev = &Device::Cpu;
        let teacher_logits = Tensor::new(&[[[1f32, 0.0], [0.0, 1.0]]], dev).unwrap();
        let student_logits = Tensor::new(&[[[2f32, 0.0], [3.0, 1.0]]], dev).unwrap();
        let hidden = Tensor::new(&[[[1f32, 0.0], [0.0, 1.0]]], dev).unwrap();
        let mut tally = AgreementTally::default();
        tally
            .add(
                &outputs(student_logits, hidden.clone()),
                &outputs(teacher_logits, hidden),
            )
            .unwrap();
        let agreement = tally.finish();
        assert_eq!(agreement.top1, 0.5);
        assert_eq!(agreement.hidden_relative_error, 0.0);
        assert!((agreement.hidden_cosine - 1.0).abs() < 1e-9);
    }
}

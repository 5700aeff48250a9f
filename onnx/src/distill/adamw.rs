//! AdamW whose state can be saved and restored. candle-nn's `AdamW` keeps its moments and step count
//! private, so a job resumed from a checkpoint would restart them from zero and take different steps than
//! the run it continues. This one implements candle-nn's `Optimizer` trait with the same update (the
//! test holds it to candle-nn's, step for step) and hands its state out by name.

use std::collections::BTreeMap;

use candle_core::{Tensor, Var};
use candle_nn::optim::{Optimizer, ParamsAdamW};

use crate::ModelError;

struct Slot {
    name: String,
    var: Var,
    first_moment: Var,
    second_moment: Var,
}

pub struct AdamW {
    slots: Vec<Slot>,
    step: usize,
    params: ParamsAdamW,
}

impl AdamW {
    /// Fresh moments for named variables.
    pub fn named(vars: Vec<(String, Var)>, params: ParamsAdamW) -> Result<Self, ModelError> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let zeros = || Var::zeros(var.shape(), var.dtype(), var.device());
                Ok(Slot {
                    first_moment: zeros()?,
                    second_moment: zeros()?,
                    name,
                    var,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(Self {
            slots,
            step: 0,
            params,
        })
    }

    pub fn steps_taken(&self) -> usize {
        self.step
    }

    /// The moments by `m.<name>` and `v.<name>`, to save beside the weights.
    pub fn moments(&self) -> BTreeMap<String, Tensor> {
        self.slots
            .iter()
            .flat_map(|s| {
                [
                    (format!("m.{}", s.name), s.first_moment.as_tensor().clone()),
                    (format!("v.{}", s.name), s.second_moment.as_tensor().clone()),
                ]
            })
            .collect()
    }

    /// Puts back the moments [`Self::moments`] gave and the step count they were taken at.
    pub fn restore(
        &mut self,
        moments: &BTreeMap<String, Tensor>,
        step: usize,
    ) -> Result<(), ModelError> {
        for slot in &self.slots {
            for (key, var) in [("m", &slot.first_moment), ("v", &slot.second_moment)] {
                let name = format!("{key}.{}", slot.name);
                let saved = moments.get(&name).ok_or_else(|| {
                    ModelError::InvalidModel(format!("the training state has no moment {name:?}"))
                })?;
                var.set(&saved.to_device(var.device())?)?;
            }
        }
        self.step = step;
        Ok(())
    }
}

impl Optimizer for AdamW {
    type Config = ParamsAdamW;

    fn new(vars: Vec<Var>, params: ParamsAdamW) -> candle_core::Result<Self> {
        let named = vars
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect();
        Self::named(named, params).map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    fn step(&mut self, grads: &candle_core::backprop::GradStore) -> candle_core::Result<()> {
        self.step += 1;
        let ParamsAdamW {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        let scale_m = 1.0 / (1.0 - beta1.powi(self.step as i32));
        let scale_v = 1.0 / (1.0 - beta2.powi(self.step as i32));
        for slot in &self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let m = ((slot.first_moment.as_tensor() * beta1)? + (g * (1.0 - beta1))?)?;
            let v = ((slot.second_moment.as_tensor() * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let decayed = (slot.var.as_tensor() * (1.0 - lr * weight_decay))?;
            let update = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + eps)?)?;
            slot.var.set(&(decayed - (update * lr)?)?)?;
            slot.first_moment.set(&m)?;
            slot.second_moment.set(&v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    fn quadratic(var: &Var) -> Tensor {
        (var.as_tensor() - 3.0)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
    }

    #[test]
    fn steps_like_candle_nn_and_resumes_exactly() {
        let start = Tensor::new(&[1f32, -2.0, 0.5], &Device::Cpu).unwrap();
        let params = ParamsAdamW {
            lr: 0.1,
            ..ParamsAdamW::default()
        };
        let theirs = Var::from_tensor(&start).unwrap();
        let mut candle = candle_nn::AdamW::new(vec![theirs.clone()], params.clone()).unwrap();
        let ours = Var::from_tensor(&start).unwrap();
        let mut kiln = AdamW::named(vec![("w".into(), ours.clone())], params.clone()).unwrap();
        for _ in 0..5 {
            candle.backward_step(&quadratic(&theirs)).unwrap();
            kiln.backward_step(&quadratic(&ours)).unwrap();
        }
        assert_eq!(
            ours.as_tensor().to_vec1::<f32>().unwrap(),
            theirs.as_tensor().to_vec1::<f32>().unwrap()
        );

        // A second optimizer restored from the first's state takes the same next steps.
        let resumed = Var::from_tensor(ours.as_tensor()).unwrap();
        let mut again = AdamW::named(vec![("w".into(), resumed.clone())], params).unwrap();
        again.restore(&kiln.moments(), kiln.steps_taken()).unwrap();
        for _ in 0..3 {
            candle.backward_step(&quadratic(&theirs)).unwrap();
            again.backward_step(&quadratic(&resumed)).unwrap();
        }
        assert_eq!(
            resumed.as_tensor().to_vec1::<f32>().unwrap(),
            theirs.as_tensor().to_vec1::<f32>().unwrap()
        );
    }
}

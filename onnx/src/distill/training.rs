//! The training loop: batches in an order fixed by the seed and the step (so a resumed job sees the
//! batches the lost one would have), one AdamW step per batch, the state written every
//! `checkpoint_every` so that a runner that dies loses at most that much work, progress after every
//! step, and a stop at the next step once cancelled.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor, Var};
use candle_nn::optim::{Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::adamw::AdamW;
use super::architecture::Architecture;
use super::forward::{Parameters, forward};
use super::objective::{Agreement, AgreementTally, Objective};
use crate::ModelError;

/// One point of the loss curve: the mean over the steps since the previous point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    pub step: usize,
    pub loss: f64,
    pub kl: f64,
    pub hidden: f64,
}

/// What the loop reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub step: usize,
    pub steps: usize,
    /// The latest step's loss.
    pub loss: f64,
    /// Steps a second since this run (not the job) started.
    pub steps_per_second: f64,
    pub eta_seconds: f64,
}

/// The loop's view of whoever runs it (the runner: lease, store, cancellation).
pub trait Observer {
    fn progress(&mut self, progress: &Progress);
    /// A state file was written at `path` after `step` steps; keep it where the next runner finds it.
    fn checkpointed(&mut self, path: &Path, step: usize) -> Result<(), ModelError>;
    fn cancelled(&self) -> bool;
}

/// The knobs of the loop itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopSettings {
    pub steps: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub objective: Objective,
    pub seed: u64,
    /// Seconds between state files.
    pub checkpoint_every_seconds: u64,
}

/// The student's trainable copy, its optimizer, and what the job has recorded so far.
pub struct TrainingState {
    pub vars: Vec<(String, Var)>,
    pub params: Parameters,
    pub optimizer: AdamW,
    pub step: usize,
    pub loss_curve: Vec<LossPoint>,
    /// Steps at which a run resumed from a state file.
    pub resumed_at: Vec<usize>,
    /// Seconds spent training by earlier runs of the job.
    pub earlier_seconds: f64,
}

/// Marks a state file and says which version of its layout it has.
const STATE_FORMAT: &str = "kiln-distill-state/1";

#[derive(Serialize, Deserialize)]
struct StateMetadata {
    format: String,
    step: usize,
    loss_curve: Vec<LossPoint>,
    resumed_at: Vec<usize>,
    seconds: f64,
    /// The settings the state was made with; resuming under others is refused.
    settings: LoopSettings,
}

impl TrainingState {
    /// A fresh start from the student's initial tensors.
    pub fn new(
        initial: BTreeMap<String, Tensor>,
        settings: &LoopSettings,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let mut vars = Vec::with_capacity(initial.len());
        for (name, tensor) in initial {
            let tensor = tensor
                .to_dtype(candle_core::DType::F32)?
                .to_device(device)?;
            vars.push((name, Var::from_tensor(&tensor)?));
        }
        let params = vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        let optimizer = AdamW::named(
            vars.clone(),
            ParamsAdamW {
                lr: settings.learning_rate,
                weight_decay: settings.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(Self {
            vars,
            params,
            optimizer,
            step: 0,
            loss_curve: Vec::new(),
            resumed_at: Vec::new(),
            earlier_seconds: 0.0,
        })
    }

    /// Writes the state (weights `w.*`, moments `m.*` and `v.*`, and the metadata) to `path`, atomically.
    pub fn save(
        &self,
        path: &Path,
        settings: &LoopSettings,
        seconds: f64,
    ) -> Result<(), ModelError> {
        let mut tensors: BTreeMap<String, Tensor> = self
            .vars
            .iter()
            .map(|(n, v)| (format!("w.{n}"), v.as_tensor().to_device(&Device::Cpu)))
            .map(|(n, t)| t.map(|t| (n, t)))
            .collect::<candle_core::Result<_>>()?;
        for (name, moment) in self.optimizer.moments() {
            tensors.insert(name, moment.to_device(&Device::Cpu)?);
        }
        let metadata = StateMetadata {
            format: STATE_FORMAT.to_owned(),
            step: self.step,
            loss_curve: self.loss_curve.clone(),
            resumed_at: self.resumed_at.clone(),
            seconds,
            settings: settings.clone(),
        };
        let metadata = std::collections::HashMap::from([(
            "kiln".to_owned(),
            serde_json::to_string(&metadata).expect("metadata serializes"),
        )]);
        let partial = path.with_extension("partial");
        safetensors::serialize_to_file(&tensors, Some(metadata), &partial)
            .map_err(|e| ModelError::Io(format!("{}: {e}", partial.display())))?;
        std::fs::rename(&partial, path)?;
        Ok(())
    }

    /// Continues from a state file [`Self::save`] wrote, for the same student and settings.
    pub fn resume(&mut self, path: &Path, settings: &LoopSettings) -> Result<(), ModelError> {
        let bad = |why: String| ModelError::InvalidModel(format!("training state: {why}"));
        let bytes = std::fs::read(path)?;
        let (_, header) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let metadata: StateMetadata = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("kiln"))
            .ok_or_else(|| bad("no kiln metadata".to_owned()))
            .and_then(|m| serde_json::from_str(m).map_err(|e| bad(e.to_string())))?;
        if metadata.format != STATE_FORMAT {
            return Err(bad(format!(
                "format {:?}, not {STATE_FORMAT}",
                metadata.format
            )));
        }
        if &metadata.settings != settings {
            return Err(bad("it was made with other settings".to_owned()));
        }
        let device = self
            .vars
            .first()
            .map(|(_, v)| v.device().clone())
            .unwrap_or(Device::Cpu);
        let saved = candle_core::safetensors::load_buffer(&bytes, &device)?;
        for (name, var) in &self.vars {
            let tensor = saved
                .get(&format!("w.{name}"))
                .ok_or_else(|| bad(format!("no weight {name:?}")))?;
            if tensor.shape() != var.shape() {
                return Err(bad(format!("weight {name:?} has another shape")));
            }
            var.set(tensor)?;
        }
        let moments: BTreeMap<String, Tensor> = saved.into_iter().collect();
        self.optimizer.restore(&moments, metadata.step)?;
        self.step = metadata.step;
        self.loss_curve = metadata.loss_curve;
        self.resumed_at = metadata.resumed_at;
        self.resumed_at.push(metadata.step);
        self.earlier_seconds = metadata.seconds;
        Ok(())
    }
}

/// The training sequences of `step`: a fresh shuffle of the whole set every epoch, seeded by the seed
/// and the epoch, so any step's batch can be computed without the steps before it.
pub fn batch_of(train: &[Vec<u32>], step: usize, batch_size: usize, seed: u64) -> Vec<&[u32]> {
    let n = train.len();
    let mut epoch_order: Option<(usize, Vec<usize>)> = None;
    (0..batch_size)
        .map(|j| {
            let global = step * batch_size + j;
            let (epoch, position) = (global / n, global % n);
            if epoch_order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut StdRng::seed_from_u64(
                    seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ));
                epoch_order = Some((epoch, order));
            }
            let order = &epoch_order.as_ref().expect("set above").1;
            train[order[position]].as_slice()
        })
        .collect()
}

pub fn ids_tensor(rows: &[&[u32]], device: &Device) -> Result<Tensor, ModelError> {
    let length = rows.first().map_or(0, |r| r.len());
    let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Ok(Tensor::from_vec(flat, (rows.len(), length), device)?)
}

/// How closely `student` follows `teacher` on `sequences`, a batch at a time.
pub fn agreement(
    architecture: (&Architecture, &Architecture),
    student: &Parameters,
    teacher: &Parameters,
    sequences: &[Vec<u32>],
    device: &Device,
) -> Result<Agreement, ModelError> {
    let mut tally = AgreementTally::default();
    for chunk in sequences.chunks(8) {
        let rows: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        let ids = ids_tensor(&rows, device)?;
        let s = forward(architecture.0, student, &ids)?;
        let t = forward(architecture.1, teacher, &ids)?;
        tally.add(&s, &t)?;
    }
    Ok(tally.finish())
}

/// What [`train`] needs besides the state.
pub struct Run<'a> {
    pub student: &'a Architecture,
    pub teacher: &'a Architecture,
    pub teacher_params: &'a Parameters,
    pub train: &'a [Vec<u32>],
    pub settings: &'a LoopSettings,
    pub device: &'a Device,
    /// Where state files are written before the observer keeps them.
    pub state_path: &'a Path,
}

/// Trains until `settings.steps` or cancellation; true when it ran to the end.
pub fn train(
    run: &Run<'_>,
    state: &mut TrainingState,
    observer: &mut dyn Observer,
) -> Result<bool, ModelError> {
    let settings = run.settings;
    let started = Instant::now();
    let mut last_checkpoint = Instant::now();
    let start_step = state.step;
    let point_every = (settings.steps / 200).max(1);
    let mut pending = (0.0f64, 0.0f64, 0.0f64, 0usize);
    while state.step < settings.steps {
        if observer.cancelled() {
            return Ok(false);
        }
        let rows = batch_of(run.train, state.step, settings.batch_size, settings.seed);
        let ids = ids_tensor(&rows, run.device)?;
        let teacher = forward(run.teacher, run.teacher_params, &ids)?;
        let student = forward(run.student, &state.params, &ids)?;
        let loss = settings.objective.loss(&student, &teacher)?;
        let total: f32 = loss.total.to_scalar()?;
        if !total.is_finite() {
            return Err(ModelError::Evaluation(format!(
                "the loss became {total} at step {}; lower the learning rate",
                state.step + 1
            )));
        }
        state.optimizer.backward_step(&loss.total)?;
        state.step += 1;
        pending = (
            pending.0 + total as f64,
            pending.1 + loss.kl as f64,
            pending.2 + loss.hidden as f64,
            pending.3 + 1,
        );
        if state.step.is_multiple_of(point_every) || state.step == settings.steps {
            let n = pending.3 as f64;
            state.loss_curve.push(LossPoint {
                step: state.step,
                loss: pending.0 / n,
                kl: pending.1 / n,
                hidden: pending.2 / n,
            });
            pending = (0.0, 0.0, 0.0, 0);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let rate = (state.step - start_step) as f64 / elapsed.max(1e-9);
        observer.progress(&Progress {
            step: state.step,
            steps: settings.steps,
            loss: total as f64,
            steps_per_second: rate,
            eta_seconds: (settings.steps - state.step) as f64 / rate.max(1e-9),
        });
        let due =
            last_checkpoint.elapsed() >= Duration::from_secs(settings.checkpoint_every_seconds);
        if due && state.step < settings.steps {
            state.save(run.state_path, settings, state.earlier_seconds + elapsed)?;
            observer.checkpointed(run.state_path, state.step)?;
            last_checkpoint = Instant::now();
        }
    }
    state.earlier_seconds += started.elapsed().as_secs_f64();
    Ok(true)
}

//! Knowledge distillation: a student with fewer layers, initialized from its teacher's, trained with
//! candle's autograd to reproduce the teacher's soft targets and last hidden state (docs/distillation.md).
//!
//! - [`architecture`]: the family, tensor names, which layers the student keeps.
//! - [`forward`]: the families' forward passes in differentiable candle operations.
//! - [`objective`]: the loss, and the agreement measured on held-out sequences.
//! - [`adamw`]: AdamW with a state that survives a checkpoint.
//! - [`dataset`]: the token sequences, from a dataset version or made up, split.
//! - [`training`]: the loop, its state files and progress.

pub mod adamw;
pub mod architecture;
pub mod dataset;
pub mod forward;
pub mod objective;
pub mod training;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::convert::{self, Plan, SourceFile};
use architecture::{Architecture, StudentShape};
use dataset::{DataDescription, DataRequest};
use forward::Parameters;
use objective::{Agreement, Objective};
use training::{LoopSettings, LossPoint, Observer, Run, TrainingState};

/// Everything a distillation job is asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub student: StudentShape,
    /// Tokens per training sequence.
    pub sequence_length: usize,
    /// Share of the sequences held out to measure agreement (at least one, at most 512).
    pub held_out_fraction: f64,
    /// Sequences made up when no dataset is given.
    pub fallback_sequences: usize,
    pub training: LoopSettings,
}

impl Settings {
    /// The defaults `kiln distill` documents, for a student of `student`.
    pub fn new(student: StudentShape) -> Self {
        Self {
            student,
            sequence_length: 64,
            held_out_fraction: 0.1,
            fallback_sequences: 256,
            training: LoopSettings {
                steps: 500,
                batch_size: 8,
                learning_rate: 5e-4,
                weight_decay: 0.01,
                objective: Objective::default(),
                seed: 0,
                checkpoint_every_seconds: 180,
            },
        }
    }
}

/// What a finished job attaches to the student's version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub family: String,
    pub teacher_layers: usize,
    /// The teacher layers the student was initialized from, in order.
    pub kept_layers: Vec<usize>,
    pub data: DataDescription,
    pub settings: Settings,
    pub loss_curve: Vec<LossPoint>,
    /// The student as initialized, before any training: what training has to beat.
    pub untrained: Agreement,
    pub trained: Agreement,
    pub teacher_parameters: usize,
    pub student_parameters: usize,
    pub teacher_bytes: u64,
    pub student_bytes: u64,
    pub steps: usize,
    /// Steps at which the job continued from a checkpoint after its runner was lost.
    pub resumed_at: Vec<usize>,
    pub training_seconds: f64,
}

pub enum Outcome {
    /// The student is in `folder` (config.json, model.safetensors, the teacher's tokenizer files).
    Finished {
        report: Box<Report>,
        folder: PathBuf,
    },
    Cancelled,
}

/// Where a job's inputs are and where its outputs go.
pub struct Request<'a> {
    /// The teacher version's files (a Hugging Face checkpoint).
    pub teacher: &'a Path,
    /// The dataset version's files, when one was given.
    pub dataset: Option<&'a Path>,
    pub settings: &'a Settings,
    pub device: &'a Device,
    /// A state file from an earlier run of the same job.
    pub resume_from: Option<&'a Path>,
    /// Scratch space: the state file and the student's folder.
    pub work: &'a Path,
}

/// Tokenizer and generation files a student shares with its teacher.
const SHARED_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
];

fn load_teacher(folder: &Path) -> Result<(serde_json::Value, Checkpoint), ModelError> {
    match convert::plan(&SourceFile::list(folder)?)? {
        Plan::HuggingFace(hf) => Ok((hf.config, Checkpoint::open(&hf.weights)?)),
        Plan::Onnx { .. } => Err(ModelError::Unsupported(
            "the teacher is an ONNX model; distillation trains from a Hugging Face checkpoint (config.json and weights) of the BERT, GPT-2 or Llama family"
                .to_owned(),
        )),
    }
}

fn on_device(
    tensors: impl IntoIterator<Item = (String, Tensor)>,
    device: &Device,
) -> Result<Parameters, ModelError> {
    tensors
        .into_iter()
        .map(|(n, t)| Ok((n, t.to_dtype(DType::F32)?.to_device(device)?)))
        .collect()
}

/// Runs a distillation job from the start or from `resume_from`.
pub fn distill(request: &Request<'_>, observer: &mut dyn Observer) -> Result<Outcome, ModelError> {
    let settings = request.settings;
    std::fs::create_dir_all(request.work)?;
    let (config, checkpoint) = load_teacher(request.teacher)?;
    let teacher_arch = Architecture::read(&config, &checkpoint)?;
    let kept = settings.student.kept(teacher_arch.layers)?;
    let (student_config, initial) =
        architecture::student_of(&config, &teacher_arch, &checkpoint, &kept)?;
    let student_arch = Architecture {
        layers: kept.len(),
        ..teacher_arch.clone()
    };
    let teacher = on_device(
        checkpoint
            .describe()
            .into_iter()
            .map(|(name, _, _)| checkpoint.get(&name).map(|t| (name, t)))
            .collect::<Result<Vec<_>, _>>()?,
        request.device,
    )?;
    let tokenizer = request.teacher.join("tokenizer.json");
    let data = dataset::prepare(
        &DataRequest {
            dataset: request.dataset,
            teacher_tokenizer: tokenizer.is_file().then_some(tokenizer.as_path()),
            sequence_length: settings.sequence_length,
            fallback_sequences: settings.fallback_sequences,
            held_out_fraction: settings.held_out_fraction,
            seed: settings.training.seed,
        },
        &teacher_arch,
        &teacher,
    )?;
    let mut state = TrainingState::new(initial, &settings.training, request.device)?;
    let pair = (&student_arch, &teacher_arch);
    let untrained = training::agreement(
        pair,
        &state.params,
        &teacher,
        &data.held_out,
        request.device,
    )?;
    if let Some(path) = request.resume_from {
        state.resume(path, &settings.training)?;
    }
    let run = Run {
        student: &student_arch,
        teacher: &teacher_arch,
        teacher_params: &teacher,
        train: &data.train,
        settings: &settings.training,
        device: request.device,
        state_path: &request.work.join("state.safetensors"),
    };
    if !training::train(&run, &mut state, observer)? {
        return Ok(Outcome::Cancelled);
    }
    let trained = training::agreement(
        pair,
        &state.params,
        &teacher,
        &data.held_out,
        request.device,
    )?;
    let folder = request.work.join("student");
    let student_bytes = write_student(
        &folder,
        request.teacher,
        &student_config,
        &state,
        checkpoint.precision(),
    )?;
    let report = Report {
        family: teacher_arch.family.as_str().to_owned(),
        teacher_layers: teacher_arch.layers,
        kept_layers: kept,
        data: data.description,
        settings: settings.clone(),
        loss_curve: state.loss_curve.clone(),
        untrained,
        trained,
        teacher_parameters: checkpoint.parameter_count(),
        student_parameters: state.params.values().map(|t| t.elem_count()).sum(),
        teacher_bytes: checkpoint.stored_bytes(),
        student_bytes,
        steps: state.step,
        resumed_at: state.resumed_at.clone(),
        training_seconds: state.earlier_seconds,
    };
    Ok(Outcome::Finished {
        report: Box::new(report),
        folder,
    })
}

/// The student as a user would push it: config.json, model.safetensors in the teacher's precision, and
/// the teacher's tokenizer files. Returns the weights' bytes.
fn write_student(
    folder: &Path,
    teacher: &Path,
    config: &serde_json::Value,
    state: &TrainingState,
    precision: DType,
) -> Result<u64, ModelError> {
    std::fs::create_dir_all(folder)?;
    std::fs::write(
        folder.join("config.json"),
        serde_json::to_vec_pretty(config).expect("config serializes"),
    )?;
    let tensors: std::collections::HashMap<String, Tensor> = state
        .params
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.to_dtype(precision)?.to_device(&Device::Cpu)?)))
        .collect::<Result<_, ModelError>>()?;
    let bytes = tensors
        .values()
        .map(|t| (t.elem_count() * t.dtype().size_in_bytes()) as u64)
        .sum();
    candle_core::safetensors::save(&tensors, folder.join("model.safetensors"))?;
    for name in SHARED_FILES {
        let from = teacher.join(name);
        if from.is_file() {
            std::fs::copy(&from, folder.join(name))?;
        }
    }
    Ok(bytes)
}

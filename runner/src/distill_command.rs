//! `kiln-runner distill TEACHER_DIR --out DIR …`: distillation on this machine, without a server
//! (docs/distillation.md). The state file is kept in DIR, so the same command run again after a crash
//! or a kill continues from the last checkpoint instead of starting over.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::Device;
use kiln_onnx::ModelError;
use kiln_onnx::distill::architecture::StudentShape;
use kiln_onnx::distill::training::{Observer, Progress};
use kiln_onnx::distill::{Outcome, Request, Settings, distill};

/// The knobs of `kiln-runner distill`, each defaulting to [`Settings::new`]'s.
#[derive(clap::Args, Debug, Clone)]
pub struct DistillArgs {
    /// The teacher: a folder with config.json and its weights (BERT, GPT-2 or Llama)
    pub teacher: PathBuf,
    /// Where the student (DIR/student), its report (DIR/report.json) and the training state go
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A folder of token ids (.safetensors, .npy) or text (.txt, .jsonl); none: made-up data
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// `layers=N` (every k-th teacher layer from the first) or `keep=I,J,...`
    #[arg(long, default_value = "layers=2", value_parser = StudentShape::parse)]
    pub student: StudentShape,
    /// Optimizer steps (default 500)
    #[arg(long)]
    pub steps: Option<usize>,
    /// Sequences per step (default 8)
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Tokens per sequence (default 64)
    #[arg(long)]
    pub sequence_length: Option<usize>,
    /// AdamW's learning rate (default 5e-4)
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Softens both distributions in the KL term (default 2)
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Seeds the split, the batches and made-up data (default 0)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds between training-state checkpoints (default 180)
    #[arg(long, value_name = "SECONDS")]
    pub checkpoint_every: Option<u64>,
    /// Start over even when DIR holds the state of an earlier run
    #[arg(long)]
    pub fresh: bool,
    /// `cpu`, or `cuda:N` with a CUDA build
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl DistillArgs {
    pub fn settings(&self) -> Result<Settings, String> {
        let mut s = Settings::new(self.student.clone());
        let t = &mut s.training;
        t.steps = self.steps.unwrap_or(t.steps);
        t.batch_size = self.batch_size.unwrap_or(t.batch_size);
        t.learning_rate = self.learning_rate.unwrap_or(t.learning_rate);
        t.objective.temperature = self.temperature.unwrap_or(t.objective.temperature);
        t.seed = self.seed.unwrap_or(t.seed);
        t.checkpoint_every_seconds = self.checkpoint_every.unwrap_or(t.checkpoint_every_seconds);
        s.sequence_length = self.sequence_length.unwrap_or(s.sequence_length);
        if t.steps == 0 || t.batch_size == 0 {
            return Err("--steps and --batch-size must be at least 1".to_owned());
        }
        if !(t.learning_rate > 0.0 && t.learning_rate.is_finite()) {
            return Err("--learning-rate must be a positive number, e.g. 5e-4".to_owned());
        }
        if !(t.objective.temperature > 0.0 && t.objective.temperature.is_finite()) {
            return Err("--temperature must be a positive number, e.g. 2".to_owned());
        }
        Ok(s)
    }
}

/// Progress on stderr at most every few seconds; checkpoints noted.
struct Console {
    last: Option<Instant>,
}

impl Observer for Console {
    fn progress(&mut self, p: &Progress) {
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
        if due || p.step == p.steps {
            eprintln!(
                "step {}/{}  loss {:.4}  {:.1} steps/s  ETA {:.0} s",
                p.step, p.steps, p.loss, p.steps_per_second, p.eta_seconds
            );
            self.last = Some(Instant::now());
        }
    }

    fn checkpointed(&mut self, path: &Path, step: usize) -> Result<(), ModelError> {
        eprintln!("checkpoint at step {step}: {}", path.display());
        Ok(())
    }

    fn cancelled(&self) -> bool {
        false
    }
}

/// Runs the command; the message on failure says what to do.
pub fn run(args: &DistillArgs, device: &Device) -> Result<(), String> {
    let settings = args.settings()?;
    let state = args.out.join("state.safetensors");
    let resume = (state.is_file() && !args.fresh).then_some(state.as_path());
    if resume.is_some() {
        eprintln!("continuing from {} (--fresh starts over)", state.display());
    }
    let request = Request {
        teacher: &args.teacher,
        dataset: args.data.as_deref(),
        settings: &settings,
        device,
        resume_from: resume,
        work: &args.out,
    };
    let outcome =
        distill(&request, &mut Console { last: None }).map_err(|e| match (&e, resume) {
            (ModelError::InvalidModel(m), Some(_)) if m.starts_with("training state") => format!(
                "{e}\n  the state in {} is from another run: pass --fresh to start over",
                args.out.display()
            ),
            _ => e.to_string(),
        })?;
    let Outcome::Finished { report, folder } = outcome else {
        return Err("cancelled".to_owned());
    };
    let report_path = args.out.join("report.json");
    let json = serde_json::to_vec_pretty(&report).expect("the report serializes");
    std::fs::write(&report_path, json).map_err(|e| format!("{}: {e}", report_path.display()))?;
    // The run is complete: a later run of the command starts a new student.
    let _ = std::fs::remove_file(&state);
    let (u, t) = (&report.untrained, &report.trained);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "student: {} ({} of {} layers, {} → {} parameters)\nheld-out top-1 agreement {:.3} → {:.3}, hidden cosine {:.3} → {:.3}\nreport: {}",
        folder.display(),
        report.kept_layers.len(),
        report.teacher_layers,
        report.teacher_parameters,
        report.student_parameters,
        u.top1,
        t.top1,
        u.hidden_cosine,
        t.hidden_cosine,
        report_path.display()
    );
    Ok(())
}

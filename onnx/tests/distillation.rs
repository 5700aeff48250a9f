//! Distillation as a runner runs it: 4-layer teachers made by kiln's sample-checkpoint code, 2-layer
//! students, and a job stopped part-way then continued from its state file.

use std::path::Path;

use candle_core::Device;
use kiln_onnx::ModelError;
use kiln_onnx::distill::architecture::StudentShape;
use kiln_onnx::distill::training::{Observer, Progress};
use kiln_onnx::distill::{Outcome, Report, Request, Settings, distill};
use kiln_onnx::sample_models;

/// Keeps the last state file, and cancels after `stop_after` steps when set.
#[derive(Default)]
struct Recorder {
    stop_after: Option<usize>,
    step: usize,
    checkpoints: Vec<usize>,
}

impl Observer for Recorder {
    fn progress(&mut self, progress: &Progress) {
        assert!(progress.loss.is_finite());
        self.step = progress.step;
    }

    fn checkpointed(&mut self, path: &Path, step: usize) -> Result<(), ModelError> {
        assert!(path.is_file());
        self.checkpoints.push(step);
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.stop_after.is_some_and(|n| self.step >= n)
    }
}

fn settings(steps: usize) -> Settings {
    let mut settings = Settings::new(StudentShape::Layers(2));
    settings.sequence_length = 16;
    settings.fallback_sequences = 96;
    settings.training.steps = steps;
    settings.training.learning_rate = 2e-3;
    settings
}

fn run(
    teacher: &Path,
    work: &Path,
    settings: &Settings,
    observer: &mut Recorder,
    resume: Option<&Path>,
) -> Option<(Box<Report>, std::path::PathBuf)> {
    let request = Request {
        teacher,
        dataset: None,
        settings,
        device: &Device::Cpu,
        resume_from: resume,
        work,
    };
    match distill(&request, observer).unwrap() {
        Outcome::Finished { report, folder } => Some((report, folder)),
        Outcome::Cancelled => None,
    }
}

fn print(name: &str, report: &Report) {
    let (u, t) = (&report.untrained, &report.trained);
    eprintln!(
        "{name}: {} → {} parameters; top-1 agreement {:.3} → {:.3}; hidden cosine {:.3} → {:.3}; hidden relative error {:.3} → {:.3}; loss {:.4} → {:.4}",
        report.teacher_parameters,
        report.student_parameters,
        u.top1,
        t.top1,
        u.hidden_cosine,
        t.hidden_cosine,
        u.hidden_relative_error,
        t.hidden_relative_error,
        report.loss_curve.first().unwrap().loss,
        report.loss_curve.last().unwrap().loss,
    );
}

fn assert_training_helped(report: &Report) {
    let (u, t) = (&report.untrained, &report.trained);
    assert!(
        t.top1 > u.top1,
        "top-1 agreement did not improve: {u:?} → {t:?}"
    );
    assert!(t.hidden_cosine > u.hidden_cosine, "{u:?} → {t:?}");
    assert!(
        t.hidden_relative_error < u.hidden_relative_error,
        "{u:?} → {t:?}"
    );
    assert!(report.student_parameters < report.teacher_parameters);
    assert_eq!(report.kept_layers, [0, 2]);
}

#[test]
fn a_two_layer_gpt2_student_learns_its_four_layer_teacher() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher");
    sample_models::gpt2(64, 32, 4, 4)
        .unwrap()
        .write_safetensors(&teacher)
        .unwrap();
    let (report, folder) = run(
        &teacher,
        dir.path(),
        &settings(120),
        &mut Recorder::default(),
        None,
    )
    .unwrap();
    print("gpt2", &report);
    assert_training_helped(&report);
    assert_eq!(
        report.data.source,
        kiln_onnx::distill::dataset::DataSource::SampledFromTeacher
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["n_layer"], 2);
    assert!(folder.join("model.safetensors").is_file());
}

#[test]
fn a_two_layer_bert_student_learns_its_four_layer_teacher() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher");
    sample_models::bert(64, 32, 4, 4)
        .unwrap()
        .write_safetensors(&teacher)
        .unwrap();
    let (report, _) = run(
        &teacher,
        dir.path(),
        &settings(120),
        &mut Recorder::default(),
        None,
    )
    .unwrap();
    print("bert", &report);
    assert_training_helped(&report);
}

#[test]
fn a_job_continued_from_its_state_file_ends_where_an_uninterrupted_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher");
    sample_models::llama(64, 32, 4, 4, 2)
        .unwrap()
        .write_safetensors(&teacher)
        .unwrap();
    let mut settings = settings(12);
    settings.training.checkpoint_every_seconds = 0;

    let whole = dir.path().join("whole");
    let (expected, _) = run(&teacher, &whole, &settings, &mut Recorder::default(), None).unwrap();

    let interrupted = dir.path().join("interrupted");
    let mut first = Recorder {
        stop_after: Some(5),
        ..Recorder::default()
    };
    assert!(run(&teacher, &interrupted, &settings, &mut first, None).is_none());
    assert_eq!(first.checkpoints, [1, 2, 3, 4, 5]);
    let state = interrupted.join("state.safetensors");
    let (resumed, _) = run(
        &teacher,
        &interrupted,
        &settings,
        &mut Recorder::default(),
        Some(&state),
    )
    .unwrap();

    assert_eq!(resumed.resumed_at, [5]);
    assert_eq!(resumed.loss_curve, expected.loss_curve);
    assert_eq!(resumed.trained, expected.trained);

    // Other settings than the state was made with are refused, not mixed.
    let mut other = settings.clone();
    other.training.learning_rate *= 2.0;
    let request = Request {
        teacher: &teacher,
        dataset: None,
        settings: &other,
        device: &Device::Cpu,
        resume_from: Some(&state),
        work: &interrupted,
    };
    let refused = distill(&request, &mut Recorder::default()).err().unwrap();
    assert!(refused.to_string().contains("other settings"), "{refused}");
}

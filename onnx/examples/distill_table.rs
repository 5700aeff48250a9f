//! Teacher next to student for each family kiln distills: parameters, bytes, latency of the converted
//! ONNX model on kiln's evaluator, and held-out agreement before and after training. The table in
//! docs/distillation.md comes from it:
//!
//!     cargo run --release -p kiln-onnx --example distill_table -- [--steps 300] [--layers 8] [--student 4]
//!
//! The teachers are kiln's random sample checkpoints (no model is downloaded), 8 layers 128 wide with a
//! 512-token vocabulary; with no dataset the students learn on the documented fallback data.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use kiln_onnx::convert::{self, Plan, SourceFile};
use kiln_onnx::distill::architecture::StudentShape;
use kiln_onnx::distill::training::{Observer, Progress};
use kiln_onnx::distill::{Outcome, Report, Request, Settings, distill};
use kiln_onnx::eval::Session;
use kiln_onnx::{ModelError, sample_models};

struct Quiet;

impl Observer for Quiet {
    fn progress(&mut self, _: &Progress) {}
    fn checkpointed(&mut self, _: &Path, _: usize) -> Result<(), ModelError> {
        Ok(())
    }
    fn cancelled(&self) -> bool {
        false
    }
}

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Median milliseconds of the converted model on kiln's evaluator, batch 8 of 32 tokens.
fn latency_ms(checkpoint: &Path, out: &Path) -> Result<f64, Box<dyn std::error::Error>> {
    let Plan::HuggingFace(hf) = convert::plan(&SourceFile::list(checkpoint)?)? else {
        return Err("not a checkpoint".into());
    };
    std::fs::create_dir_all(out)?;
    let converted = convert::convert_hf(&hf, out)?;
    let model = kiln_onnx::model_check::decode(std::fs::read(&converted.files[0].1)?.into())?;
    let session = Session::new(&model, Some(out), &Device::Cpu)?;
    let inputs: HashMap<String, Tensor> =
        kiln_onnx::variants::inputs::generate_shaped(&model, 8, 32)?.0;
    for _ in 0..3 {
        session.run(&inputs)?;
    }
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let started = Instant::now();
            session
                .run(&inputs)
                .map(|_| started.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (steps, layers, student) = (
        flag(&args, "--steps", 300),
        flag(&args, "--layers", 8),
        flag(&args, "--student", 4),
    );
    let work = tempfile::tempdir()?;
    println!(
        "| family | layers | parameters | fp32 bytes | latency b8×32 (ms) | top-1 agreement untrained → trained | hidden cosine untrained → trained | training |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for family in ["bert", "gpt2", "llama"] {
        let sample = match family {
            "bert" => sample_models::bert(512, 128, layers, 4),
            "gpt2" => sample_models::gpt2(512, 128, layers, 4),
            _ => sample_models::llama(512, 128, layers, 4, 2),
        }?;
        let teacher = work.path().join(family).join("teacher");
        sample.write_safetensors(&teacher)?;
        let mut settings = Settings::new(StudentShape::Layers(student));
        settings.sequence_length = 32;
        settings.training.steps = steps;
        settings.training.learning_rate = 1e-3;
        let request = Request {
            teacher: &teacher,
            dataset: None,
            settings: &settings,
            device: &Device::Cpu,
            resume_from: None,
            work: &work.path().join(family).join("job"),
        };
        let Outcome::Finished { report, folder } = distill(&request, &mut Quiet)? else {
            return Err("cancelled".into());
        };
        let teacher_ms = latency_ms(&teacher, &work.path().join(family).join("teacher-onnx"))?;
        let student_ms = latency_ms(&folder, &work.path().join(family).join("student-onnx"))?;
        print_rows(family, &report, (teacher_ms, student_ms));
    }
    Ok(())
}

fn print_rows(family: &str, r: &Report, (teacher_ms, student_ms): (f64, f64)) {
    println!(
        "| {family} teacher | {} | {} | {} | {teacher_ms:.2} | | | |",
        r.teacher_layers, r.teacher_parameters, r.teacher_bytes
    );
    println!(
        "| {family} student (keeps {:?}) | {} | {} | {} | {student_ms:.2} | {:.3} → {:.3} | {:.3} → {:.3} | {} steps, {:.0} s, {} |",
        r.kept_layers,
        r.kept_layers.len(),
        r.student_parameters,
        r.student_bytes,
        r.untrained.top1,
        r.trained.top1,
        r.untrained.hidden_cosine,
        r.trained.hidden_cosine,
        r.steps,
        r.training_seconds,
        serde_json::to_value(&r.data.source).unwrap_or_default(),
    );
}

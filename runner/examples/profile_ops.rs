//! Where kiln's evaluator spends a run, by operator: the profile that engine work starts from.
//!
//!     cargo run --release -p kiln-runner --example profile_ops -- MODEL.onnx [--batch 1] [--sequence 16]
//!         [--runs 200] [--inputs INPUTS.safetensors] [--json]
//!
//! Runs as `kiln-runner --measure --threads 1` does: one CPU thread, the runner's allocator settings, inputs
//! made from the model's signature (or read from a safetensors file, as the ONNX corpus stores them). Prints
//! each operator's calls and milliseconds per run and its share of the nodes' time, and the whole run's
//! p50; `--json` prints the same as one JSON object (scripts/bench-corpus-engines.sh reads it).

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use clap::Parser;
use kiln_onnx::eval::Session;
use kiln_onnx::eval::profile::OpProfile;

#[derive(Parser)]
struct Args {
    model: PathBuf,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, default_value_t = 16)]
    sequence: usize,
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// The inputs, by name, instead of ones made from the signature.
    #[arg(long)]
    inputs: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    kiln_runner::process::keep_freed_memory_for_reuse();
    // SAFETY: the process has one thread so far.
    unsafe { kiln_runner::process::size_compute_pools(1) };
    let args = Args::parse();
    let runs = args.runs.max(1);
    let model = kiln_onnx::model_check::decode(std::fs::read(&args.model)?.into())?;
    let session = Session::new(&model, args.model.parent(), &Device::Cpu)?;
    let inputs = match &args.inputs {
        Some(path) => candle_core::safetensors::load(path, &Device::Cpu)?,
        None => kiln_onnx::variants::inputs::generate_shaped(&model, args.batch, args.sequence)?.0,
    };
    for _ in 0..5 {
        session.run(&inputs)?;
    }
    let profile = RefCell::new(OpProfile::default());
    let mut whole = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        session.run_profiled(&inputs, &profile)?;
        whole.push(started.elapsed().as_secs_f64() * 1e3);
    }
    whole.sort_by(f64::total_cmp);
    let p50 = whole[whole.len().div_ceil(2) - 1];
    let profile = profile.into_inner();
    let nodes: f64 = profile.by_op.values().map(|t| t.total.as_secs_f64()).sum();
    let per_run = |seconds: f64| seconds * 1e3 / runs as f64;
    let share = |seconds: f64| 100.0 * seconds / nodes.max(f64::MIN_POSITIVE);
    // Written with `?`, not println!: piped into `head`, the example stops quietly.
    let mut out = std::io::stdout().lock();
    if args.json {
        let ops: Vec<serde_json::Value> = profile
            .ranked()
            .into_iter()
            .map(|(op, time)| {
                serde_json::json!({
                    "op": op,
                    "calls_per_run": time.calls / runs as u64,
                    "ms_per_run": per_run(time.total.as_secs_f64()),
                    "share": share(time.total.as_secs_f64()),
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({ "p50_ms": p50, "runs": runs, "ops": ops })
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{}: p50 {p50:.3} ms per run over {runs} runs",
        args.model.display()
    )?;
    writeln!(out, "| operator | calls per run | ms per run | share |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    for (op, time) in profile.ranked() {
        let seconds = time.total.as_secs_f64();
        writeln!(
            out,
            "| {op} | {} | {:.3} | {:.1} % |",
            time.calls / runs as u64,
            per_run(seconds),
            share(seconds)
        )?;
    }
    Ok(())
}

//! `kiln distill TEACHER --into NS/MODEL:VERSION ...`: queue a distillation (docs/distillation.md), and
//! with `--wait` follow it to its end; `kiln distill --cancel ID`. `kiln show TEACHER` lists a version's
//! distillations with their progress ([`print_for_version`]).

use comfy_table::Cell;
use kiln_core::ModelRef;
use kiln_core::api::{Distillation, DistillationRequest, DistillationState};

use super::browse::{print_json, table};
use crate::client::ApiClient;
use crate::error::CliError;

fn parse_ref(value: &str) -> Result<ModelRef, String> {
    value
        .parse()
        .map_err(|e: kiln_core::CoreError| e.to_string())
}

#[derive(clap::Args)]
#[command(
    after_help = "Follow it with `kiln show TEACHER` (its distillations and progress) or --wait."
)]
pub struct DistillArgs {
    /// The teacher, NAMESPACE/MODEL:VERSION (BERT, GPT-2 or Llama safetensors + config.json)
    #[arg(value_parser = parse_ref, required_unless_present = "cancel")]
    teacher: Option<ModelRef>,
    /// Where the student goes: a new NAMESPACE/MODEL:VERSION you can write to
    #[arg(long, required_unless_present = "cancel")]
    into: Option<String>,
    /// layers=N (every k-th teacher layer kept, from the first) or keep=I,J,... (default layers=2)
    #[arg(long)]
    student: Option<String>,
    /// A version holding the dataset: token ids (.safetensors, .npy) or text (.txt, .jsonl)
    #[arg(long, value_name = "DATASET_REF")]
    data: Option<String>,
    /// Optimizer steps (default 500)
    #[arg(long)]
    steps: Option<u32>,
    /// Sequences per step (default 8)
    #[arg(long)]
    batch_size: Option<u32>,
    /// Tokens per sequence (default 64)
    #[arg(long)]
    sequence_length: Option<u32>,
    /// AdamW's learning rate (default 5e-4)
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Seconds between checkpoints of the training state (default 180)
    #[arg(long, value_name = "SECONDS")]
    checkpoint_every: Option<u32>,
    /// Which runners take it: cpu (default) or cuda[:N]
    #[arg(long)]
    device: Option<String>,
    /// Follow the job until it ends, printing its progress; fail if it fails
    #[arg(long)]
    wait: bool,
    /// Cancel a distillation by its id instead
    #[arg(long, value_name = "ID", conflicts_with_all = ["teacher", "into", "wait"])]
    cancel: Option<String>,
}

/// `kiln distill`: queue (and maybe follow) a distillation, or cancel one.
pub async fn command(client: &ApiClient, args: DistillArgs, json: bool) -> Result<(), CliError> {
    if let Some(id) = &args.cancel {
        return cancel(client, id, json).await;
    }
    let (Some(teacher), Some(into)) = (args.teacher, args.into) else {
        return Err(CliError::Usage(
            "give TEACHER and --into NAMESPACE/MODEL:VERSION, or --cancel ID".to_owned(),
        ));
    };
    let request = DistillationRequest {
        into,
        student: args.student,
        data: args.data,
        steps: args.steps,
        batch_size: args.batch_size,
        sequence_length: args.sequence_length,
        learning_rate: args.learning_rate,
        checkpoint_every_seconds: args.checkpoint_every,
        device: args.device,
        ..Default::default()
    };
    run(client, teacher, request, args.wait, json).await
}

async fn run(
    client: &ApiClient,
    teacher: ModelRef,
    request: DistillationRequest,
    wait_for_it: bool,
    json: bool,
) -> Result<(), CliError> {
    let Some((ns, model, version)) = teacher.require_version() else {
        return Err(CliError::Usage(format!(
            "distill needs the teacher as NAMESPACE/MODEL:VERSION, not {teacher}"
        )));
    };
    let queued: Distillation = client
        .post_json(
            &format!("/models/{ns}/{model}/versions/{version}/distillations"),
            &request,
        )
        .await?;
    if !json {
        eprintln!(
            "distillation {} queued: {} -> {} (follow it with `kiln show {}`, stop it with `kiln distill --cancel {}`)",
            queued.id, queued.teacher, queued.into, queued.teacher, queued.id
        );
    }
    if !wait_for_it {
        if json {
            print_json(&queued);
        } else {
            println!("{}", queued.id);
        }
        return Ok(());
    }
    let finished = wait(client, &queued.id, json).await?;
    if json {
        print_json(&finished);
    }
    match finished.state {
        DistillationState::Succeeded => {
            if !json {
                println!("{}", finished.into);
            }
            Ok(())
        }
        _ => Err(CliError::JobFailed(format!(
            "distillation {} {}: {}",
            finished.id,
            state_name(finished.state),
            finished.message.unwrap_or_default()
        ))),
    }
}

/// Polls until the distillation finishes, printing its progress when it changes.
async fn wait(client: &ApiClient, id: &str, quiet: bool) -> Result<Distillation, CliError> {
    let mut last = String::new();
    loop {
        let now: Distillation = client.get_json(&format!("/distillations/{id}")).await?;
        let line = progress_line(&now);
        if !quiet && line != last {
            eprintln!("{line}");
            last = line;
        }
        if !matches!(
            now.state,
            DistillationState::Queued | DistillationState::Running
        ) {
            return Ok(now);
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

async fn cancel(client: &ApiClient, id: &str, json: bool) -> Result<(), CliError> {
    let cancelled: Distillation = client
        .post_json(
            &format!("/distillations/{id}/cancel"),
            &serde_json::json!({}),
        )
        .await?;
    if json {
        print_json(&cancelled);
    } else {
        println!("distillation {id} cancelled");
    }
    Ok(())
}

fn state_name(state: DistillationState) -> &'static str {
    match state {
        DistillationState::Queued => "queued",
        DistillationState::Running => "running",
        DistillationState::Succeeded => "succeeded",
        DistillationState::Failed => "failed",
        DistillationState::Cancelled => "cancelled",
    }
}

fn progress_line(d: &Distillation) -> String {
    match (&d.progress, d.state) {
        (Some(p), DistillationState::Running) => format!(
            "step {}/{}  loss {:.4}  {:.2} steps/s  ETA {} s{}",
            p.step,
            p.steps,
            p.loss,
            p.steps_per_second,
            p.eta_seconds,
            p.checkpoint_step
                .map(|s| format!("  checkpoint at step {s}"))
                .unwrap_or_default()
        ),
        (_, state) => state_name(state).to_owned(),
    }
}

/// The "distillations" section of `kiln show` for a teacher version (nothing when it has none).
pub async fn print_for_version(client: &ApiClient, reference: &str) -> Result<(), CliError> {
    let (ns_model, version) = reference.rsplit_once(':').unwrap_or((reference, ""));
    let listed: Vec<Distillation> = client
        .get_json(&format!(
            "/models/{ns_model}/versions/{version}/distillations"
        ))
        .await?;
    if listed.is_empty() {
        return Ok(());
    }
    let mut out = table(&["DISTILLATION", "INTO", "STATE", "PROGRESS", "TRY"]);
    for d in &listed {
        out.add_row(vec![
            Cell::new(&d.id),
            Cell::new(&d.into),
            Cell::new(state_name(d.state)),
            Cell::new(match d.state {
                DistillationState::Running => progress_line(d),
                _ => d.message.clone().unwrap_or_default(),
            }),
            Cell::new(d.attempt),
        ]);
    }
    println!("\n{out}");
    for d in &listed {
        if let Some(c) = &d.comparison {
            print_comparison(&d.teacher, c);
        }
    }
    Ok(())
}

fn print_comparison(teacher: &str, c: &kiln_core::api::DistillationComparison) {
    println!(
        "\n{} from {teacher}: {} -> {} parameters, {} -> {} weight bytes, held-out top-1 agreement {:.3}",
        c.student,
        c.teacher_parameters,
        c.student_parameters,
        c.teacher_bytes,
        c.student_bytes,
        c.top1_agreement
    );
    if c.latency.is_empty() {
        println!("latency: not measured for both yet");
        return;
    }
    let mut out = table(&[
        "VARIANT",
        "DEVICE",
        "ENGINE",
        "BATCH",
        "TEACHER P50 MS",
        "STUDENT P50 MS",
    ]);
    for p in &c.latency {
        out.add_row(vec![
            Cell::new(&p.variant),
            Cell::new(&p.device),
            Cell::new(&p.engine),
            Cell::new(p.batch_size),
            Cell::new(format!("{:.3}", p.teacher_p50_ms)),
            Cell::new(format!("{:.3}", p.student_p50_ms)),
        ]);
    }
    println!("{out}");
}

//! `kiln-runner --server URL --token TOKEN [--device cpu|cuda:0] [--engine kiln,ort] [--cache DIR]`, or
//! `kiln-runner --measure MODEL.onnx [--device ...] [--engine ...]` to measure one file without a server,
//! `kiln-runner distill TEACHER_DIR --out DIR [...]` to distill a student on this machine,
//! `kiln-runner serve NS/MODEL@ALIAS --server URL [...]` to serve a model over the Open Inference Protocol.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use kiln_runner::engine::{Requested, Settings};
use kiln_runner::http::HttpCoordinator;
use kiln_runner::{Runner, device};
use tokio_util::sync::CancellationToken;

/// Measures variants for a kiln server: claims benchmark jobs for its device, reports latency, throughput,
/// memory and a numerical check against the CPU.
#[derive(Parser)]
#[command(
    version,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The kiln server, e.g. http://127.0.0.1:8080
    #[arg(long, env = "KILN_SERVER", required_unless_present = "measure")]
    server: Option<String>,
    /// An API token with the `runner` scope (kiln token create runner --scope runner)
    #[arg(
        long,
        env = "KILN_RUNNER_TOKEN",
        hide_env_values = true,
        required_unless_present = "measure"
    )]
    token: Option<String>,
    /// Measure this ONNX file once, print the results as JSON and exit (no server)
    #[arg(long, value_name = "MODEL.onnx")]
    measure: Option<PathBuf>,
    /// `cpu`, or `cuda:N` with a CUDA build
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Where fetched files are kept, by digest
    #[arg(long, default_value = "kiln-runner-cache")]
    cache: PathBuf,
    /// The name shown in `GET /api/v1/runners` and in results (default: the host name)
    #[arg(long)]
    name: Option<String>,
    /// CPU threads benchmarks are pinned to (default: all cores)
    #[arg(long)]
    threads: Option<usize>,
    /// Timed iterations per batch size: at least...
    #[arg(long, default_value_t = 10)]
    min_iterations: u32,
    /// ...and at most, stopping after --time-budget-ms
    #[arg(long, default_value_t = 200)]
    max_iterations: u32,
    #[arg(long, default_value_t = 3000)]
    time_budget_ms: u64,
    /// Untimed runs first
    #[arg(long, default_value_t = 5)]
    warmup: u32,
    /// Batch sizes for models with a symbolic batch dim
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    batch_sizes: Vec<usize>,
    /// Sequence lengths for models with token inputs (capped at what a model kiln converted declares)
    #[arg(long, value_delimiter = ',', default_value = "128")]
    sequence_lengths: Vec<usize>,
    /// The size of other symbolic dims (image sides; models without token inputs)
    #[arg(long, default_value_t = 16)]
    symbolic_size: usize,
    /// Engines to measure with: `kiln` (kiln's evaluator, needs nothing installed) and `ort` (ONNX
    /// Runtime, from --onnxruntime-lib); several with commas
    #[arg(long, value_delimiter = ',', default_value = "kiln")]
    engine: Vec<String>,
    /// ONNX Runtime's shared library (libonnxruntime.so.VERSION) for `--engine ort`: the path
    /// scripts/fetch-onnxruntime.sh prints
    #[arg(long, env = "KILN_ONNXRUNTIME_LIB", value_name = "PATH")]
    onnxruntime_lib: Option<PathBuf>,
    /// Take benchmark jobs only, never distillation jobs
    #[arg(long)]
    no_distill: bool,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Distill a teacher checkpoint into a student with fewer layers, on this machine (no server);
    /// run again after an interruption to continue from the last checkpoint (docs/distillation.md)
    Distill(Box<kiln_runner::distill_command::DistillArgs>),
    /// Serve NAMESPACE/MODEL@ALIAS (or :VERSION) over the Open Inference Protocol, REST and gRPC: the
    /// signed manifest verified, the variant pulled by digest, the alias followed as it moves
    /// (docs/serving.md)
    Serve(Box<kiln_runner::serve::ServeArgs>),
}

fn main() -> ExitCode {
    kiln_runner::process::keep_freed_memory_for_reuse();
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // SAFETY: the process has one thread here: the async runtime starts below.
    unsafe { kiln_runner::process::size_compute_pools(threads) };
    if let Some(Command::Distill(distill)) = &args.command {
        return distill_here(distill, threads);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match args.command {
        Some(Command::Serve(serve)) => {
            match runtime.block_on(kiln_runner::serve::run(*serve, threads)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::from(1)
                }
            }
        }
        _ => runtime.block_on(run(args, threads)),
    }
}

fn distill_here(args: &kiln_runner::distill_command::DistillArgs, threads: usize) -> ExitCode {
    let device = match device::open(&args.device, threads) {
        Ok((device, _)) => device,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match kiln_runner::distill_command::run(args, &device) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args, threads: usize) -> ExitCode {
    let (device, info) = match device::open(&args.device, threads) {
        Ok(opened) => opened,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    if args.batch_sizes.is_empty() || args.batch_sizes.contains(&0) {
        eprintln!("error: --batch-sizes must list sizes of at least 1, e.g. 1,8");
        return ExitCode::from(2);
    }
    if args.sequence_lengths.is_empty() || args.sequence_lengths.contains(&0) {
        eprintln!("error: --sequence-lengths must list lengths of at least 1, e.g. 128");
        return ExitCode::from(2);
    }
    let engines = match kiln_runner::engine::open(
        &args.engine,
        args.onnxruntime_lib.as_deref(),
        &info.device,
    ) {
        Ok(engines) => engines,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let settings = Settings {
        warmup: args.warmup.max(1),
        min_iterations: args.min_iterations.max(1),
        max_iterations: args.max_iterations.max(args.min_iterations.max(1)),
        time_budget: Duration::from_millis(args.time_budget_ms),
        batch_sizes: args.batch_sizes,
        sequence_lengths: args.sequence_lengths,
        symbolic_size: args.symbolic_size.max(1),
        threads,
        intra_op_spinning: true,
        process_memory: true,
    };
    let name = args.name.unwrap_or_else(kiln_runner::process::host_name);
    if let Some(model) = args.measure {
        let never = std::sync::atomic::AtomicBool::new(false);
        let mut all = Vec::new();
        for engine in &engines {
            match kiln_runner::engine::benchmark(
                engine,
                &model,
                &device,
                &info,
                &name,
                (&settings, &Requested::default()),
                &never,
            ) {
                Ok(results) => all.extend(results),
                Err(e) => {
                    eprintln!("error: {} on {}: {e}", model.display(), engine.name());
                    return ExitCode::from(1);
                }
            }
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&all).expect("results serialise")
        );
        return ExitCode::SUCCESS;
    }
    let (Some(server), Some(token)) = (args.server, args.token) else {
        eprintln!("error: give --server URL and --token TOKEN (or --measure MODEL.onnx)");
        return ExitCode::from(2);
    };
    let coordinator = match HttpCoordinator::new(&server, &token) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runner = Arc::new(Runner {
        coordinator: Arc::new(coordinator),
        name,
        device,
        info,
        engines,
        settings,
        cache: args.cache,
        keep_cache: true,
        distill: !args.no_distill,
        idle_poll: Duration::from_secs(1),
    });
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
    }
    match runner.run(stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: the server refused this runner: {e}\n  check --server and that --token has the runner scope"
            );
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}

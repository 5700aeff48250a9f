//! The embedded default's CPU runner: kiln-runner's loop in a child process of this server
//! (`kiln-server embedded-runner`), so that the models it measures never load into the API process. It
//! speaks the runner protocol over HTTP to a plain listener on 127.0.0.1 that only it is told about,
//! authenticated by a secret made at each start (it never touches the disk or the database). It registers
//! and shows in `GET /api/v1/runners` as `embedded`, like any other runner; KILN_EMBEDDED_RUNNER=false
//! turns it off (then benchmarks wait for a `kiln-runner`).

use std::io::Read;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kiln_runner::engine::{Engine, Settings, onnxruntime};
use kiln_runner::http::HttpCoordinator;
use kiln_runner::{Runner, device};
use tokio_util::sync::CancellationToken;

/// The name the embedded runner registers with.
const EMBEDDED_RUNNER: &str = "embedded";

const URL: &str = "KILN_EMBEDDED_RUNNER_URL";
const SECRET: &str = "KILN_EMBEDDED_RUNNER_SECRET";
const CACHE: &str = "KILN_EMBEDDED_RUNNER_CACHE";
const THREADS: &str = "KILN_EMBEDDED_RUNNER_THREADS";
const ONNXRUNTIME_LIB: &str = "KILN_EMBEDDED_RUNNER_ONNXRUNTIME_LIB";

/// How the parent starts its runner child.
pub struct EmbeddedRunner {
    pub executable: PathBuf,
    /// The loopback listener the child talks to, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    pub secret: String,
    pub cache: PathBuf,
    pub threads: u32,
    /// ONNX Runtime's library (KILN_ONNXRUNTIME_LIB): the runner measures with it instead of kiln's
    /// evaluator.
    pub onnxruntime_lib: Option<PathBuf>,
    /// The server's log format, which the child follows.
    pub log_json: bool,
}

/// Keeps the runner child running until `stop`: a child that exits is logged and started again.
pub fn supervise(runner: EmbeddedRunner, stop: CancellationToken) {
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            let mut command = tokio::process::Command::new(&runner.executable);
            command
                .arg("embedded-runner")
                .env_clear()
                .envs(crate::pipeline::inherited_env())
                .env(URL, &runner.url)
                .env(SECRET, &runner.secret)
                .env(CACHE, &runner.cache)
                .env(THREADS, runner.threads.to_string())
                .envs(runner.onnxruntime_lib.iter().map(|l| (ONNXRUNTIME_LIB, l)))
                .env(
                    "KILN_LOG_FORMAT",
                    if runner.log_json { "json" } else { "text" },
                )
                // The child stops when this pipe closes: when the server stops or dies.
                .stdin(Stdio::piped())
                .kill_on_drop(true);
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(e) => {
                    tracing::error!(error = %e, executable = %runner.executable.display(), "cannot start the embedded runner; trying again in 30 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                        _ = stop.cancelled() => {}
                    }
                    continue;
                }
            };
            // Held here: `wait` would close the child's stdin, which tells it to stop.
            let _stdin = child.stdin.take();
            tokio::select! {
                status = child.wait() => {
                    tracing::warn!(?status, "the embedded runner exited; starting it again in 5 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = stop.cancelled() => {}
                    }
                }
                _ = stop.cancelled() => {
                    let _ = child.kill().await;
                }
            }
        }
    });
}

/// The child's side: the runner loop over HTTP, until its stdin closes.
pub fn run_child() -> ExitCode {
    kiln_runner::process::keep_freed_memory_for_reuse();
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let (url, secret, cache) = match (var(URL), var(SECRET), var(CACHE)) {
        (Ok(url), Ok(secret), Ok(cache)) => (url, secret, PathBuf::from(cache)),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
            eprintln!("kiln-server embedded-runner is started by kiln-server itself: {e}");
            return ExitCode::from(2);
        }
    };
    let threads: usize = var(THREADS).ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    // SAFETY: the child has one thread so far: telemetry and the async runtime start below.
    unsafe { kiln_runner::process::size_compute_pools(threads) };
    // Logs only: the runner's spans are not exported (it reads no settings of its own).
    let _logs = crate::telemetry::init(crate::telemetry::json_for_child(), None);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kiln-server embedded-runner: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let coordinator = match HttpCoordinator::new(&url, &secret) {
            Ok(coordinator) => coordinator,
            Err(e) => {
                eprintln!("kiln-server embedded-runner: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (device, info) = match device::open("cpu", threads) {
            Ok(opened) => opened,
            Err(e) => {
                eprintln!("kiln-server embedded-runner: {e}");
                return ExitCode::FAILURE;
            }
        };
        // ONNX Runtime when the server was told where its library is; kiln's evaluator otherwise.
        let engines = match std::env::var_os(ONNXRUNTIME_LIB) {
            Some(library) => match onnxruntime::Runtime::load(std::path::Path::new(&library)) {
                Ok(runtime) => vec![Engine::OnnxRuntime(Arc::new(runtime))],
                Err(e) => {
                    eprintln!("kiln-server embedded-runner: {e}");
                    return ExitCode::FAILURE;
                }
            },
            None => vec![Engine::Kiln],
        };
        let runner = Arc::new(Runner {
            coordinator: Arc::new(coordinator),
            name: EMBEDDED_RUNNER.to_owned(),
            device,
            info,
            engines,
            // Lighter than a dedicated runner's defaults: it shares the machine with the server.
            settings: Settings {
                threads,
                warmup: 2,
                min_iterations: 3,
                max_iterations: 100,
                time_budget: Duration::from_secs(1),
                process_memory: true,
                ..Settings::default()
            },
            cache,
            keep_cache: false,
            idle_poll: Duration::from_secs(1),
            // A new user on the embedded default can distill without starting a runner.
            distill: true,
        });
        let stop = CancellationToken::new();
        let parent_gone = stop.clone();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            parent_gone.cancel();
        });
        match runner.run(stop).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "the embedded runner stopped");
                ExitCode::FAILURE
            }
        }
    })
}

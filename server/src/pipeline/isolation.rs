//! Runs a job's [`StepRequest`] in a child process (`kiln-server pipeline-step`) with an address-space
//! limit and a deadline. Whatever the child does (allocates exabytes, aborts, loops forever) costs that
//! one step: the API process never parses, converts or evaluates a pushed model itself, and holds none of
//! its memory afterwards.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::JobError;
use super::step::{StepAnswer, StepOutput, StepRequest, StepResult};

/// Where the child program is and what it may use.
#[derive(Debug, Clone)]
pub struct StepLimits {
    /// The `kiln-server` binary (the running one unless told otherwise, e.g. by tests that embed the
    /// server in another program).
    pub executable: PathBuf,
    /// Address space the child may map (RLIMIT_AS), bytes.
    pub memory_bytes: u64,
    /// Wall-clock time one step may take.
    pub time: Duration,
    /// Models whose weights take more than this are optimized streamed (bytes).
    pub streamed_above_bytes: u64,
}

impl StepLimits {
    fn describe_memory(&self) -> String {
        format!("{} MiB", self.memory_bytes / (1024 * 1024))
    }
}

/// Runs `request` in a fresh child process and returns its output, or the step's failure: the child's own
/// (skipped, refused, transient), or the limit it ran into.
pub async fn run_isolated(
    limits: &StepLimits,
    what: &str,
    request: &StepRequest,
) -> Result<StepOutput, JobError> {
    let body = serde_json::to_vec(request).map_err(crate::error::Error::from)?;
    let mut command = tokio::process::Command::new(&limits.executable);
    command
        .arg("pipeline-step")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // The child parses hostile files: it gets none of the server's secrets (database URL, store keys).
        .env_clear()
        .envs(inherited_env())
        // glibc reserves 64 MiB of address space per thread arena; the limit is for the model's data.
        .env("MALLOC_ARENA_MAX", "2")
        .kill_on_drop(true);
    let memory = limits.memory_bytes;
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit, which is
    // async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let cap = libc::rlimit {
                rlim_cur: memory,
                rlim_max: memory,
            };
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0
                || libc::setrlimit(libc::RLIMIT_CORE, &no_core) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| {
        crate::error::Error::Io(std::io::Error::other(format!(
            "cannot start the {what} step's process {}: {e}",
            limits.executable.display()
        )))
    })?;
    let stdin = child.stdin.take();
    // The request is written inside the deadline too: a child that never reads cannot hold the worker.
    let finished = tokio::time::timeout(limits.time, async move {
        if let Some(mut stdin) = stdin {
            // A child that died at once closes the pipe; its exit status tells why below.
            let _ = stdin.write_all(&body).await;
        }
        child.wait_with_output().await
    })
    .await;
    let output = match finished {
        Err(_) => {
            return Err(JobError::Refused(format!(
                "the {what} step ran past its time limit of {} s and was stopped",
                limits.time.as_secs()
            )));
        }
        Ok(waited) => waited.map_err(crate::error::Error::from)?,
    };
    if !output.status.success() {
        return Err(JobError::Refused(died(what, &output.status, limits)));
    }
    let answer = serde_json::from_slice::<StepAnswer>(&output.stdout);
    if let Ok(StepAnswer {
        peak_rss_bytes: Some(peak),
        ..
    }) = &answer
    {
        tracing::info!(
            step = what,
            peak_rss_mib = peak / (1024 * 1024),
            "pipeline step finished"
        );
    }
    match answer {
        Ok(StepAnswer {
            result: StepResult::Ok(result),
            ..
        }) => Ok(result),
        Ok(StepAnswer {
            result: StepResult::Err(failure),
            ..
        }) => Err(failure.into()),
        Err(e) => Err(JobError::Transient(crate::error::Error::Io(
            std::io::Error::other(format!("the {what} step answered nonsense: {e}")),
        ))),
    }
}

/// What a child process may see of the server's environment: where programs are, and how to log.
pub fn inherited_env() -> impl Iterator<Item = (String, String)> {
    const PASSED: &[&str] = &[
        "PATH",
        "HOME",
        "TMPDIR",
        "RUST_LOG",
        "RUST_BACKTRACE",
        "KILN_LOG_FORMAT",
    ];
    std::env::vars().filter(|(name, _)| PASSED.contains(&name.as_str()))
}

/// Why the child died, in words a user can act on.
fn died(what: &str, status: &std::process::ExitStatus, limits: &StepLimits) -> String {
    use std::os::unix::process::ExitStatusExt;
    let memory = limits.describe_memory();
    match status.signal() {
        // Rust aborts when an allocation fails; the address-space limit is the usual reason.
        Some(libc::SIGABRT) | Some(libc::SIGSEGV) | Some(libc::SIGBUS) => format!(
            "the {what} step's process crashed (signal {}), most likely by running out of its memory \
             limit of {memory} (KILN_STEP_MEMORY_MB); the model needs more memory than that, or is hostile",
            status.signal().unwrap_or_default()
        ),
        Some(libc::SIGKILL) => format!(
            "the {what} step's process was killed (SIGKILL), e.g. by the system's out-of-memory killer; \
             its memory limit was {memory}"
        ),
        Some(signal) => format!("the {what} step's process was stopped by signal {signal}"),
        None => format!(
            "the {what} step's process failed ({status}) with a limit of {memory} of memory"
        ),
    }
}

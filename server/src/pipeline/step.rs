//! The part of a pipeline job that opens untrusted files (parsing, converting, evaluating, optimizing), as
//! a request and a result that cross a process boundary. The server runs it in a child process
//! (`kiln-server pipeline-step`, see [`super::isolation`]) under memory and time limits, so a hostile
//! model can fail its own job but never the API. The job modules keep the database and store work; the
//! child gets only a folder of files and writes its outputs into another.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use kiln_onnx::model_check::CheckedModel;
use serde::{Deserialize, Serialize};

use super::JobError;

/// What the child is asked to do; every path is in the job's scratch folder.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum StepRequest {
    /// Recognise and check every file: (version path, local file). With `store_unsafe_pickles` a pickle
    /// the scan refuses is flagged (stored only, never loaded) instead of refusing the version.
    Scan {
        files: Vec<(String, PathBuf)>,
        store_unsafe_pickles: bool,
    },
    /// Find the model among the files and, for a checkpoint, convert it into `out_dir`.
    Convert {
        files: Vec<(String, PathBuf)>,
        out_dir: PathBuf,
    },
    /// Optimize the model and make the variants (name, tolerance), each in `out_dir/<name>`.
    Optimize {
        model_file: PathBuf,
        sample_inputs: Option<PathBuf>,
        out_dir: PathBuf,
        /// None: the defaults for the model.
        variants: Option<Vec<String>>,
        /// Tolerances replacing the defaults, by variant name.
        tolerances: std::collections::BTreeMap<String, f64>,
        /// Models whose weights take more than this are optimized streamed.
        streamed_above_bytes: u64,
    },
}

/// What the child found or made.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StepOutput {
    Scanned {
        reports: Vec<serde_json::Value>,
    },
    /// The version holds an ONNX model: it is its own `onnx` variant.
    OnnxAsPushed {
        model: String,
        external: Vec<String>,
        checked: CheckedModel,
    },
    /// A checkpoint converted to ONNX and proven against its reference.
    Converted {
        files: Vec<(String, PathBuf)>,
        checked: CheckedModel,
        validation: serde_json::Value,
        report: serde_json::Value,
    },
    Optimized {
        made: Vec<MadeVariant>,
        passes: serde_json::Value,
        not_made: serde_json::Value,
    },
}

/// One variant made and judged, with its files on local disk.
#[derive(Debug, Serialize, Deserialize)]
pub struct MadeVariant {
    pub name: String,
    /// Deployable, or rejected: outside its tolerance.
    pub status: kiln_core::api::VariantStatus,
    pub checked: CheckedModel,
    pub validation: serde_json::Value,
    pub files: Vec<(String, PathBuf)>,
}

/// A [`JobError`] as it crosses the process boundary.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "message", rename_all = "snake_case")]
pub enum StepFailure {
    Skipped(String),
    Refused(String),
    Transient(String),
}

impl From<JobError> for StepFailure {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Skipped(message) => StepFailure::Skipped(message),
            JobError::Refused(message) => StepFailure::Refused(message),
            transient @ JobError::Transient(_) => StepFailure::Transient(transient.message()),
        }
    }
}

impl From<StepFailure> for JobError {
    fn from(e: StepFailure) -> Self {
        match e {
            StepFailure::Skipped(message) => JobError::Skipped(message),
            StepFailure::Refused(message) => JobError::Refused(message),
            StepFailure::Transient(message) => {
                JobError::Transient(std::io::Error::other(message).into())
            }
        }
    }
}

/// Does the work of one request, in this process.
pub fn run_step(request: StepRequest) -> Result<StepOutput, StepFailure> {
    let output = match request {
        StepRequest::Scan {
            files,
            store_unsafe_pickles,
        } => super::scan::inspect_all(&files, store_unsafe_pickles),
        StepRequest::Convert { files, out_dir } => {
            super::convert::find_or_convert(&files, &out_dir)
        }
        StepRequest::Optimize {
            model_file,
            sample_inputs,
            out_dir,
            variants,
            tolerances,
            streamed_above_bytes,
        } => super::optimize::make_variants(
            &model_file,
            sample_inputs.as_deref(),
            &out_dir,
            (variants.as_deref(), &tolerances),
            streamed_above_bytes,
        ),
    };
    Ok(output?)
}

/// The child's side (`kiln-server pipeline-step`): one JSON request on stdin, one JSON answer on stdout
/// (`{"ok": output}` or `{"err": failure}`). A panic is answered as a refusal naming it, so that a bug
/// shows as one clear failed step.
pub fn serve_stdio() -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("kiln-server pipeline-step: cannot read the request: {e}");
        return ExitCode::FAILURE;
    }
    let answer = match serde_json::from_slice::<StepRequest>(&input) {
        Ok(request) => std::panic::catch_unwind(|| run_step(request)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(StepFailure::Refused(format!(
                "kiln hit a bug on this model ({what}); please report it"
            )))
        }),
        Err(e) => Err(StepFailure::Transient(format!(
            "unreadable step request: {e}"
        ))),
    };
    let mut line = match &answer {
        Ok(output) => serde_json::json!({ "ok": output }),
        Err(failure) => serde_json::json!({ "err": failure }),
    };
    line["peak_rss_bytes"] = serde_json::json!(peak_rss_bytes());
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// This process's peak resident memory (Linux `VmHWM`), for the parent's log: what a step really needed.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The child's answer, as the parent reads it.
#[derive(Debug, Deserialize)]
pub struct StepAnswer {
    #[serde(flatten)]
    pub result: StepResult,
    /// The child's peak resident memory, when the system says.
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    Ok(StepOutput),
    Err(StepFailure),
}

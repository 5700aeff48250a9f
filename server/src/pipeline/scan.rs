//! The `scan` job: every file of the version recognised by content and checked by its format's scanner.
//! One refused file refuses the version.

use kiln_core::api::PipelineOptions;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::workspace::Workspace;
use super::{HeldJob, Job, JobContext, JobError};

/// The first step on push; its payload is the push's options, passed on to the steps after it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scan {
    pub options: PipelineOptions,
}

impl Job for Scan {
    const KIND: &'static str = "scan";

    async fn run(
        self,
        context: &JobContext,
        held: &HeldJob,
    ) -> Result<serde_json::Value, JobError> {
        let (_, workspace) = Workspace::of_version(context, held.version_id()).await?;
        let reports = tokio::task::spawn_blocking(move || {
            let mut reports = Vec::new();
            for (path, local) in &workspace.files {
                match kiln_onnx::inspect::inspect_file(local) {
                    Ok(report) => reports.push(json!({
                        "path": path,
                        "format": report.format.as_str(),
                        "notes": report.notes,
                    })),
                    Err(e @ kiln_onnx::ModelError::Io(_)) => {
                        let e = std::io::Error::other(format!("{path}: {e}"));
                        return Err(JobError::Transient(e.into()));
                    }
                    Err(refusal) => return Err(JobError::Refused(format!("{path}: {refusal}"))),
                }
            }
            Ok(reports)
        })
        .await??;
        Ok(json!({ "files": reports }))
    }
}

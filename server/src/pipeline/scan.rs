//! The `scan` job: every file of the version recognised by content and checked by its format's scanner.
//! One refused file refuses the version.

use kiln_core::api::PipelineOptions;
use serde::{Deserialize, Serialize};
use serde_json::json;

use std::path::PathBuf;

use super::isolation::run_isolated;
use super::step::{StepOutput, StepRequest};
use super::workspace::Workspace;
use super::{HeldJob, Job, JobContext, JobError, unexpected};
use crate::db::repos::{namespaces, versions};

/// The first step on push; its payload is the push's options, passed on to the steps after it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scan {
    pub options: PipelineOptions,
}

impl Job for Scan {
    const KIND: &'static str = crate::db::views::SCAN_KIND;

    async fn run(
        self,
        context: &JobContext,
        held: &HeldJob,
    ) -> Result<serde_json::Value, JobError> {
        let (_, workspace) = Workspace::of_version(context, held.version_id()).await?;
        let version_id = held.version_id().to_owned();
        let store_unsafe_pickles = context
            .db
            .run(move |conn| {
                let (ns, _, _) = versions::context(conn, &version_id)?;
                Ok(namespaces::find(conn, &ns)?.is_some_and(|n| n.store_unsafe_pickles))
            })
            .await?;
        let request = StepRequest::Scan {
            files: workspace.files.clone(),
            store_unsafe_pickles,
        };
        let StepOutput::Scanned { reports } =
            run_isolated(&context.step_limits, Self::KIND, &request).await?
        else {
            return Err(unexpected(Self::KIND));
        };
        Ok(json!({ "files": reports }))
    }
}

/// Recognises and checks every file (in the step's child process).
pub(super) fn inspect_all(
    files: &[(String, PathBuf)],
    store_unsafe_pickles: bool,
) -> Result<StepOutput, JobError> {
    let mut reports = Vec::new();
    for (path, local) in files {
        match kiln_onnx::inspect::inspect_file(local) {
            Ok(report) => reports.push(json!({
                "path": path,
                "format": report.format.as_str(),
                "notes": report.notes,
            })),
            Err(kiln_onnx::ModelError::UnsafePickle(reason)) if store_unsafe_pickles => {
                let format =
                    kiln_onnx::format::detect_file(local).map_err(crate::error::Error::from)?;
                reports.push(json!({
                    "path": path,
                    "format": format.as_str(),
                    "notes": ["stored only: the namespace allows pickles the scan refuses"],
                    "flagged": format!("the pickle is refused: {reason}"),
                }));
            }
            Err(e @ kiln_onnx::ModelError::Io(_)) => {
                let e = std::io::Error::other(format!("{path}: {e}"));
                return Err(JobError::Transient(e.into()));
            }
            Err(refusal) => return Err(JobError::Refused(format!("{path}: {refusal}"))),
        }
    }
    Ok(StepOutput::Scanned { reports })
}

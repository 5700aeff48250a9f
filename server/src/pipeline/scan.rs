//! The `scan` job: every file of the version recognised by content and checked by its format's scanner.
//! One refused file refuses the version.

use serde_json::json;

use super::workspace::Workspace;
use super::{JobContext, JobError};
use crate::db::records::PipelineJobRow;
use crate::db::repos::versions;

pub async fn run(
    context: &JobContext,
    job: &PipelineJobRow,
) -> Result<serde_json::Value, JobError> {
    let version_id = job.version_id.clone();
    let files = context
        .db
        .run(move |conn| Ok(versions::files(conn, &version_id)?))
        .await?;
    let workspace = Workspace::materialize(
        &context.store,
        files
            .iter()
            .map(|f| (f.path.clone(), f.digest.clone()))
            .collect(),
    )
    .await?;
    let reports = tokio::task::spawn_blocking(move || {
        let mut reports = Vec::new();
        for (path, local) in &workspace.files {
            match kiln_onnx::inspect::inspect_file(local) {
                Ok(report) => reports.push(json!({
                    "path": path,
                    "format": report.format.as_str(),
                    "notes": report.notes,
                })),
                Err(kiln_onnx::ModelError::Io(e)) => {
                    return Err(JobError::Transient(format!("{path}: {e}")));
                }
                Err(refusal) => return Err(JobError::Refused(format!("{path}: {refusal}"))),
            }
        }
        Ok(reports)
    })
    .await
    .map_err(|e| JobError::Transient(format!("scan task failed: {e}")))??;
    Ok(json!({ "files": reports }))
}

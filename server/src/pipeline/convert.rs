//! The `convert` job: the version's `onnx` variant. An ONNX upload is checked and becomes the variant as
//! pushed (same blobs, nothing rewritten); a Hugging Face checkpoint is converted, validated against a
//! reference forward pass, and stored as a new blob.

use kiln_core::api::{PipelineOptions, VariantStatus};
use kiln_onnx::convert::{self, Plan, SourceFile};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::workspace::Workspace;
use super::{HeldJob, Job, JobContext, JobError, variant_store};
use crate::db::records::{VariantFileRow, VariantRow, VersionFileRow};

const VARIANT: &str = "onnx";

/// The step after the scan; its payload is the push's options, passed on.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Convert {
    pub options: PipelineOptions,
}

impl Job for Convert {
    const KIND: &'static str = "convert";

    async fn run(
        self,
        context: &JobContext,
        held: &HeldJob,
    ) -> Result<serde_json::Value, JobError> {
        run(context, held).await
    }
}

/// What the job will store.
struct Outcome {
    variant: VariantRow,
    files: Vec<VariantFileRow>,
    report: serde_json::Value,
}

async fn run(context: &JobContext, held: &HeldJob) -> Result<serde_json::Value, JobError> {
    let job = &held.row;
    let (files, workspace) = Workspace::of_version(context, held.version_id()).await?;
    let scratch = workspace.scratch.path().to_owned();
    let sources = workspace
        .files
        .iter()
        .map(|(path, local)| {
            Ok(SourceFile {
                path: path.clone(),
                local: local.clone(),
                format: kiln_onnx::format::detect_file(local).map_err(crate::error::Error::from)?,
            })
        })
        .collect::<Result<Vec<_>, JobError>>()?;
    let plan = tokio::task::spawn_blocking(move || convert::plan(&sources))
        .await?
        .map_err(|e| match e {
            // A folder kiln has no converter for (a tokenizer, a dataset card) is stored and served as
            // pushed; conversion just does not apply to it.
            kiln_onnx::ModelError::Unsupported(_) => {
                JobError::Skipped(format!("not converted: {e}"))
            }
            other => JobError::from_model(other),
        })?;
    let outcome = match plan {
        Plan::Onnx {
            model,
            external,
            checked,
        } => onnx_upload(&job.version_id, &files, &model, &external, &checked)?,
        Plan::HuggingFace(checkpoint) => {
            let task_checkpoint = checkpoint.clone();
            let converted = tokio::task::spawn_blocking(move || {
                convert::convert_hf(&task_checkpoint, &scratch)
            })
            .await?
            .map_err(JobError::from_model)?;
            let files =
                variant_store::upload_files(context, &job.version_id, VARIANT, &converted.files)
                    .await?;
            let validation =
                serde_json::to_value(&converted.validation).map_err(crate::error::Error::from)?;
            Outcome {
                variant: variant_store::variant_row(
                    &job.version_id,
                    VARIANT,
                    VariantStatus::Deployable,
                    "model.onnx",
                    &converted.checked,
                    Some(&validation),
                    None,
                ),
                files,
                report: json!({
                    "source": "huggingface",
                    "family": checkpoint.family.as_str(),
                    "read": checkpoint.sources,
                    "opset": converted.checked.opset,
                    "nodes": converted.checked.nodes,
                    "validation": validation,
                }),
            }
        }
    };
    variant_store::store(context, held, vec![(outcome.variant, outcome.files)]).await?;
    Ok(outcome.report)
}

fn onnx_upload(
    version_id: &str,
    files: &[VersionFileRow],
    model: &str,
    external: &[String],
    checked: &kiln_onnx::model_check::CheckedModel,
) -> Result<Outcome, JobError> {
    let mut variant_files = Vec::new();
    for path in std::iter::once(model).chain(external.iter().map(String::as_str)) {
        let file = files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| JobError::Refused(format!("{path} is missing from the version")))?;
        variant_files.push(VariantFileRow {
            version_id: version_id.to_owned(),
            variant: VARIANT.to_owned(),
            path: path.to_owned(),
            digest: file.digest.clone(),
            size: file.size,
        });
    }
    Ok(Outcome {
        variant: variant_store::variant_row(
            version_id,
            VARIANT,
            VariantStatus::Deployable,
            model,
            checked,
            None,
            None,
        ),
        files: variant_files,
        report: json!({
            "source": "onnx",
            "model": model,
            "external_data": external,
            "ir_version": checked.ir_version,
            "opset": checked.opset,
            "nodes": checked.nodes,
            "producer": checked.producer,
        }),
    })
}
